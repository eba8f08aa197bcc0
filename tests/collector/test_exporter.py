"""The sender's decisions, with a transport that answers as told: what is sent, kept, dropped and counted; and how
often it sends to a real local gateway that asks it to wait."""

import logging
import threading
import time

import pytest

from collector.agent import build_backlog, build_sender
from collector.backlog import Backlog
from collector.config import BacklogConfig, Config, ExporterConfig
from collector.exporter import Sender
from collector.faults import Faults
from collector.telemetry import AgentTelemetry
from collector.transport import Answer, HttpTransport, Outcome
from collector.units import Duration
from tests.collector.test_backlog import Clock, bodies
from tests.collector.test_http11 import ScriptedServer
from tests.collector.test_transports import RecordingServer

BODY, POINTS = b"new", 7


class ScriptedTransport:
    """Answers each send with the next outcome (or whole answer) of its script and keeps what it was given."""

    def __init__(self, *outcomes):
        self.outcomes, self.sent = list(outcomes), []

    def send(self, body):
        self.sent.append(body)
        step = self.outcomes.pop(0)
        if isinstance(step, Answer):
            return step
        return Answer(step, "" if step is Outcome.SENT else f"told to answer {step.value}")

    def abandon(self):
        pass

    def close(self):
        self.outcomes = None


def sender_with(transport, backlog=None, clock=None):
    clock = clock or Clock(100.0)
    telemetry = AgentTelemetry()
    backlog = backlog if backlog is not None else Backlog(None, max_bytes=10_000, max_age=3600, clock=clock)
    faults = Faults(telemetry, limit=3, on_fatal=lambda: None)
    return Sender(transport, backlog, telemetry, faults, patience=60, clock=clock, wall_clock=clock), telemetry, backlog


def backlog_with(*bodies):
    """What an outage left behind: `bodies` collected a second apart from 40 s, the clock now at 100 s."""
    clock = Clock(40.0)
    backlog = Backlog(None, max_bytes=10_000, max_age=3600, clock=clock)
    for body in bodies:
        backlog.push(body)
        clock.now += 1
    clock.now = 100.0
    return backlog, clock


def test_a_sent_request_succeeds_and_is_counted():
    sender, telemetry, backlog = sender_with(ScriptedTransport(Outcome.SENT, Outcome.SENT))
    sender.deliver(BODY, POINTS, 1.0)
    sender.deliver(BODY, POINTS, 2.0)
    assert (telemetry.export_requests, telemetry.exported_points) == ({"success": 2}, {"success": 2 * POINTS})
    assert telemetry.last_export_success == 100.0 and len(backlog) == 0


def test_a_retry_keeps_the_request_and_a_refusal_drops_it(caplog):
    caplog.set_level(logging.INFO, logger="collector.exporter")
    sender, telemetry, backlog = sender_with(ScriptedTransport(Outcome.RETRY))
    sender.deliver(BODY, POINTS, 1.0)
    assert (len(backlog), backlog.dropped, telemetry.last_export_success) == (1, 0, None)
    assert (telemetry.export_requests, telemetry.exported_points) == ({"failure": 1}, {"failure": POINTS})
    sender, telemetry, backlog = sender_with(ScriptedTransport(Outcome.REJECTED))
    sender.deliver(BODY, POINTS, 1.0)
    assert (len(backlog), backlog.dropped, telemetry.export_requests) == (0, 1, {"failure": 1})
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "export: told to answer retry; keeping data in the backlog"),
        ("ERROR", "export: rejected by the gateway, dropping the request: told to answer rejected")]


class Refusing(ScriptedTransport):
    """Refuses each request with the next HTTP status of its script."""

    def __init__(self, *statuses):
        super().__init__(*[Answer(Outcome.REJECTED, f"HTTP {status} from gw") for status in statuses])


def test_a_refusal_with_another_status_is_logged_again(caplog):
    caplog.set_level(logging.INFO, logger="collector.exporter")
    sender, _, backlog = sender_with(Refusing(400, 400, 413, 413))
    for collected in (1.0, 2.0, 3.0, 4.0):
        sender.deliver(BODY, POINTS, collected)
    assert backlog.dropped == 4
    assert [r.getMessage() for r in caplog.records] == [
        "export: rejected by the gateway, dropping the request: HTTP 400 from gw",
        "export: rejected by the gateway, dropping the request: HTTP 413 from gw"]


def test_a_request_refused_on_replay_is_dropped_and_the_next_goes_out():
    backlog, clock = backlog_with(b"old")
    transport = ScriptedTransport(Outcome.REJECTED, Outcome.SENT)
    sender, telemetry, _ = sender_with(transport, backlog, clock)
    sender.deliver(BODY, POINTS, clock.now)
    assert (transport.sent, len(backlog), backlog.dropped, backlog.replayed) == ([b"old", BODY], 0, 1, 0)
    assert telemetry.export_requests == {"success": 1}


def test_the_backlog_goes_out_oldest_first_before_newer_data():
    backlog, clock = backlog_with(b"old-1", b"old-2")
    transport = ScriptedTransport(Outcome.SENT, Outcome.SENT, Outcome.SENT)
    sender, telemetry, _ = sender_with(transport, backlog, clock)
    sender.deliver(BODY, POINTS, clock.now)
    assert transport.sent == [b"old-1", b"old-2", BODY]
    assert (len(backlog), backlog.replayed, telemetry.export_requests["success"]) == (0, 2, 1)


def test_while_the_replay_fails_newer_data_waits_behind_and_is_not_sent():
    backlog, clock = backlog_with(b"old")
    transport = ScriptedTransport(Outcome.RETRY)
    sender, telemetry, _ = sender_with(transport, backlog, clock)
    sender.deliver(BODY, POINTS, clock.now)
    assert transport.sent == [b"old"] and len(backlog) == 2 and backlog.dropped == 0
    assert telemetry.export_requests == {"failure": 1}


def test_recovery_is_logged_once(caplog):
    caplog.set_level(logging.INFO, logger="collector.exporter")
    transport = ScriptedTransport(Outcome.RETRY, Outcome.RETRY, Outcome.SENT, Outcome.SENT, Outcome.SENT)
    sender, telemetry, backlog = sender_with(transport)
    for collected in (1.0, 2.0, 3.0):
        sender.deliver(BODY, POINTS, collected)
    assert telemetry.export_requests == {"failure": 2, "success": 1}
    assert [r.getMessage() for r in caplog.records] == [
        "export: told to answer retry; keeping data in the backlog", "export: recovered"]
    assert len(backlog) == 0 and backlog.replayed == 2


def test_a_kept_request_keeps_its_collection_time_and_every_failure_adds_its_points():
    sender, telemetry, backlog = sender_with(ScriptedTransport(Outcome.RETRY), clock=Clock(100.0))
    sender.deliver(BODY, POINTS, 40.0)
    sender.deliver(BODY, POINTS, 70.0)  # kept behind the first without an attempt
    assert backlog.age() == 60.0 and len(backlog) == 2
    assert (telemetry.export_requests, telemetry.exported_points) == ({"failure": 2}, {"failure": 2 * POINTS})


PARTIAL = Answer(Outcome.SENT, "3 data points rejected: out of order", rejected_points=3)


def test_a_partial_success_is_delivered_its_rejected_points_failed_and_logged_once(caplog):
    caplog.set_level(logging.INFO, logger="collector.exporter")
    sender, telemetry, backlog = sender_with(ScriptedTransport(PARTIAL, PARTIAL, Outcome.SENT))
    for collected in (1.0, 2.0, 3.0):
        sender.deliver(BODY, POINTS, collected)
    assert (telemetry.export_requests, telemetry.exported_points) == (
        {"success": 3}, {"success": 3 * POINTS - 2 * 3, "failure": 2 * 3})
    assert (len(backlog), backlog.dropped, telemetry.last_export_success) == (0, 0, 100.0)  # not sent again
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "partial success: the gateway took the request but refused 3 data points for good: "
                    "3 data points rejected: out of order"),
        ("INFO", "partial success: recovered")]


def test_a_partial_success_is_one_problem_whatever_the_counts(caplog):
    caplog.set_level(logging.INFO, logger="collector.exporter")
    fewer = Answer(Outcome.SENT, "4 data points rejected: out of order", rejected_points=4)
    sender, _, _ = sender_with(ScriptedTransport(PARTIAL, fewer, PARTIAL))
    for collected in (1.0, 2.0, 3.0):
        sender.deliver(BODY, POINTS, collected)
    assert [r.getMessage() for r in caplog.records] == [
        "partial success: the gateway took the request but refused 3 data points for good: "
        "3 data points rejected: out of order"]


def test_a_wait_the_gateway_asks_for_is_logged_once_whatever_its_length(caplog):
    clock = Clock(100.0)
    sender, _, _ = sender_with(ScriptedTransport(throttled(29.6), throttled(28.4)), clock=clock)
    for clock.now in (100.0, 130.0):
        sender.deliver(BODY, POINTS, clock.now)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "export: HTTP 429 from the gateway; the gateway asked to wait 30s, nothing is sent before then; keeping data "
        "in the backlog"]


def test_a_partial_success_counts_no_more_points_than_the_request_had_and_a_replay_none_again(caplog):
    backlog, clock = backlog_with(b"old")
    transport = ScriptedTransport(PARTIAL, Answer(Outcome.SENT, "", rejected_points=POINTS + 5))
    sender, telemetry, _ = sender_with(transport, backlog, clock)
    sender.deliver(BODY, POINTS, clock.now)  # the replay's points were counted as failed when it was kept
    assert (transport.sent, backlog.replayed, len(backlog)) == ([b"old", BODY], 1, 0)
    points = telemetry.exported_points
    assert (telemetry.export_requests, points["success"], points["failure"]) == ({"success": 1}, 0, POINTS)
    assert [r.getMessage() for r in caplog.records] == [
        "partial success: the gateway took the request but refused 3 data points for good: "
        "3 data points rejected: out of order",
        "partial success: the gateway took the request but refused 12 data points for good"]


def throttled(seconds):
    return Answer(Outcome.RETRY, "HTTP 429 from the gateway", retry_after=seconds)


@pytest.mark.parametrize("asked, waited, capped", [(30, 30, ""), (3600, 300, " (300s at most)"),
                                                    (float("inf"), 300, " (300s at most)")])  # Retry-After: 9999…
def test_nothing_is_sent_for_as_long_as_the_gateway_asks_at_most_five_minutes(caplog, asked, waited, capped):
    clock = Clock(100.0)
    transport = ScriptedTransport(throttled(asked), *[Outcome.SENT] * (waited + 1))
    sender, telemetry, backlog = sender_with(transport, clock=clock)
    for second in range(waited + 1):  # a collection every second
        clock.now = 100.0 + second
        sender.deliver(f"at-{second}".encode(), POINTS, clock.now)
        assert len(transport.sent) == (1 if second < waited else waited + 2), f"at {second} s"
    assert transport.sent[-2:] == [f"at-{waited - 1}".encode(), f"at-{waited}".encode()]
    assert (len(backlog), backlog.replayed, backlog.dropped, telemetry.export_requests) == (
        0, waited, 0, {"failure": waited, "success": 1})
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"export: HTTP 429 from the gateway; the gateway asked to wait {asked}s{capped}, nothing is sent before "
        f"then; keeping data in the backlog"]


def test_a_real_gateway_answering_429_with_retry_after_gets_one_attempt_until_the_time_is_up():
    server = RecordingServer(status=429)
    server.answer_headers = {"Retry-After": "30"}
    clock = Clock(100.0)
    try:
        transport = HttpTransport(ExporterConfig(endpoint=server.url(), compression="none"))
        sender, telemetry, backlog = sender_with(transport, clock=clock)
        for second in range(30):
            clock.now = 100.0 + second
            sender.deliver(f"at-{second}".encode(), POINTS, clock.now)
        assert [body for _, _, body in server.requests] == [b"at-0"] and len(backlog) == 30
        server.status, clock.now = 200, 130.0
        sender.deliver(b"at-30", POINTS, clock.now)
        assert [body for _, _, body in server.requests] == [f"at-{n}".encode() for n in (0, *range(31))]
        assert (len(backlog), backlog.replayed, telemetry.export_requests) == (0, 30, {"failure": 30, "success": 1})
    finally:
        server.stop()


class PendingTransport(ScriptedTransport):
    """Answers the send with PENDING, then each wait with the next outcome of its script, a wait taking 30 s."""

    def __init__(self, clock, *outcomes):
        super().__init__(*outcomes)
        self.clock, self.waits, self.abandoned = clock, 0, 0

    def send(self, body):
        self.sent.append(body)
        return Answer(Outcome.PENDING, "no answer within 5s")

    def wait(self):
        self.waits += 1
        self.clock.now += 30
        outcome = self.outcomes.pop(0)
        return Answer(outcome, "no answer within 5s" if outcome is Outcome.PENDING else "")

    def abandon(self):
        self.abandoned += 1


def test_a_request_in_flight_is_waited_for_until_patience_then_given_up_and_kept(caplog):
    caplog.set_level(logging.INFO, logger="collector.exporter")
    clock = Clock(100.0)
    transport = PendingTransport(clock, Outcome.PENDING, Outcome.PENDING, Outcome.PENDING)
    sender, telemetry, backlog = sender_with(transport, clock=clock)  # patience: 60 s
    sender.deliver(BODY, POINTS, 1.0)
    # waited at 0 s and 30 s; at 60 s, the patience, given up
    assert (transport.sent, transport.waits, transport.abandoned) == ([BODY], 2, 1)
    assert (len(backlog), telemetry.export_requests, telemetry.faults) == (1, {"failure": 1}, {})
    assert [r.getMessage() for r in caplog.records] == [
        "export: no answer within 5s; waiting for it rather than sending the request twice",
        "export: gave up waiting for an answer; keeping data in the backlog"]


def test_a_request_given_up_after_waiting_is_sent_again_before_the_backlog_expires_it():
    server = ScriptedServer(ScriptedServer.HOLD, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    config = Config(exporter=ExporterConfig(endpoint=f"http://127.0.0.1:{server.port}/v1/metrics",
                                            timeout=Duration(0.2), compression="none"),
                    backlog=BacklogConfig(max_age=Duration(2)))
    telemetry = AgentTelemetry()
    backlog = build_backlog(config)
    sender = build_sender(config, backlog, telemetry, Faults(telemetry, limit=3, on_fatal=lambda: None))
    sender.deliver(BODY, POINTS, time.time())  # the gateway holds the connection without a word: given up, kept
    assert (len(backlog), backlog.dropped) == (1, 0)
    sender.start()
    sender.close(timeout=5)
    assert [(number, body) for number, _, body in server.requests] == [(1, BODY), (2, BODY)]
    assert (backlog.replayed, backlog.dropped, len(backlog)) == (1, 0, 0)


def test_a_late_answer_within_patience_is_a_success():
    clock = Clock(100.0)
    transport = PendingTransport(clock, Outcome.PENDING, Outcome.SENT)
    sender, telemetry, backlog = sender_with(transport, clock=clock)
    sender.deliver(BODY, POINTS, 1.0)
    assert (transport.waits, transport.abandoned, len(backlog)) == (2, 0, 0)
    assert (telemetry.export_requests, telemetry.last_export_success) == ({"success": 1}, 160.0)


class FailingTransport(ScriptedTransport):
    """A script of outcomes and exceptions: an exception is raised by send, as a transport's bug would."""

    def __init__(self, *outcomes):
        super().__init__(*outcomes)
        self.abandoned = 0

    def send(self, body):
        self.sent.append(body)
        step = self.outcomes.pop(0)
        if isinstance(step, BaseException):
            raise step
        return Answer(step)

    def abandon(self):
        self.abandoned += 1


def test_a_transport_exception_keeps_the_request_and_is_a_fault_that_a_success_clears(caplog):
    boom = RuntimeError("boom")
    transport = FailingTransport(boom, boom, Outcome.SENT, Outcome.SENT, Outcome.SENT, boom, boom, boom)
    sender, telemetry, backlog = sender_with(transport)  # fatal after 3 faults in a row
    for n in range(5):
        sender.deliver(f"body-{n}".encode(), POINTS, float(n))
    assert transport.sent == [b"body-0", b"body-0", b"body-0", b"body-1", b"body-2", b"body-3", b"body-3"]
    assert (telemetry.faults, telemetry.fatal, transport.abandoned, len(backlog)) == ({"send": 4}, None, 4, 2)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["send: unexpected RuntimeError: boom"]
    sender.deliver(b"body-5", POINTS, 5.0)
    assert telemetry.fatal == "send failed 3 times in a row"


def test_the_deadline_passing_during_a_replay_keeps_newer_data():
    backlog, clock = backlog_with(b"old")

    class SlowTransport(ScriptedTransport):
        def send(self, body):
            clock.now += 20  # the replay outlasts the shutdown's 10 s
            return super().send(body)

        def close(self):
            self.closed = True

    transport = SlowTransport(Outcome.SENT, Outcome.SENT)
    sender, telemetry, _ = sender_with(transport, backlog, clock)
    sender.close(10)  # not started: sets the deadline only
    sender.deliver(BODY, POINTS, clock.now)
    assert transport.sent == [b"old"] and transport.closed
    assert bodies(backlog) == [BODY] and telemetry.export_requests == {"failure": 1}


class BlockingTransport(ScriptedTransport):
    """Answers SENT; the send of `hold` waits until released, as a slow gateway's."""

    def __init__(self, hold=None):
        super().__init__()
        self.hold, self.in_flight, self.release = hold, threading.Event(), threading.Event()
        self.closed = False

    def send(self, body):
        self.sent.append(body)
        if body == self.hold:
            self.in_flight.set()
            self.release.wait(10)
        return Answer(Outcome.SENT)

    def close(self):
        self.closed = True


def wait_until(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the send thread did not get there"
        time.sleep(0.01)


def test_the_send_thread_delivers_what_is_submitted_and_keeps_what_comes_while_busy():
    transport = BlockingTransport(hold=b"first")
    sender, telemetry, backlog = sender_with(transport)
    sender.start()
    sender.submit(b"first", POINTS)
    assert transport.in_flight.wait(5)
    sender.submit(b"second", POINTS)  # while the first is in flight: to the backlog
    assert (len(backlog), telemetry.export_requests) == (1, {"failure": 1})
    transport.release.set()
    wait_until(lambda: telemetry.export_requests["success"] == 1)
    wait_until(lambda: not sender.busy)
    sender.submit(b"third", POINTS)  # idle again: handed over, sent behind the backlog
    wait_until(lambda: transport.sent[-1:] == [b"third"])
    sender.close(5)
    assert transport.sent == [b"first", b"second", b"third"] and transport.closed
    assert (telemetry.export_requests, backlog.replayed, len(backlog)) == ({"success": 2, "failure": 1}, 1, 0)
    assert not sender.thread.is_alive()


def test_a_request_handed_over_as_the_replay_starts_goes_before_newer_data_kept_meanwhile():
    backlog, clock = backlog_with(b"collected-at-40", b"collected-at-41")
    transport = BlockingTransport(hold=b"collected-at-40")
    sender, telemetry, _ = sender_with(transport, backlog, clock)
    sender.start()
    sender.submit(b"collected-at-100", POINTS)  # the gateway is back: handed over, the replay starts
    assert transport.in_flight.wait(5)
    clock.now = 110.0
    sender.submit(b"collected-at-110", POINTS)  # while the replay runs: kept in the backlog
    transport.release.set()
    sender.close(5)
    assert transport.sent == [b"collected-at-40", b"collected-at-41", b"collected-at-100", b"collected-at-110"]
    assert (telemetry.export_requests, backlog.replayed, len(backlog)) == ({"success": 1, "failure": 1}, 3, 0)


def test_close_flushes_the_backlog_within_its_timeout_and_nothing_at_the_deadline():
    backlog, clock = backlog_with(b"old-1", b"old-2")
    transport = BlockingTransport()
    sender, _, _ = sender_with(transport, backlog, clock)
    sender.start()
    sender.close(5)  # the clock stands still: well within the timeout
    assert transport.sent == [b"old-1", b"old-2"] and len(backlog) == 0
    backlog, clock = backlog_with(b"old")
    transport = BlockingTransport()
    sender, _, _ = sender_with(transport, backlog, clock)
    sender.start()
    sender.close(0)  # the deadline is now: nothing more goes out
    assert transport.sent == [] and len(backlog) == 1 and not sender.thread.is_alive()


def test_close_gives_a_stuck_request_three_times_the_timeout_and_a_second():
    """An attempt begun just before the deadline may wait a timeout for the answer's first byte and one more for
    the rest of it (collector/transport.py)."""
    transport = BlockingTransport(hold=BODY)
    sender, _, _ = sender_with(transport, clock=time.monotonic)
    sender.start()
    sender.submit(BODY, POINTS)
    assert transport.in_flight.wait(5)
    releaser = threading.Timer(8, transport.release.set)  # a close that waited for ever would end here
    releaser.start()
    started = time.monotonic()
    sender.close(1)
    waited = time.monotonic() - started
    releaser.cancel()
    transport.release.set()
    assert 3.9 <= waited < 7.5 and transport.closed  # 4 s, and well before the release at 8 s on a busy machine


class BrokenBacklog(Backlog):
    def push(self, body, created=None, points=None):
        raise RuntimeError("disk on fire")


def test_a_bug_outside_the_transport_is_a_fault_and_the_thread_goes_on(caplog):
    transport = ScriptedTransport(Outcome.RETRY, Outcome.SENT)
    sender, telemetry, _ = sender_with(transport, BrokenBacklog(None, max_bytes=10_000, max_age=3600))
    sender.start()
    sender.submit(b"lost", POINTS)  # retried: pushed to the backlog, which raises
    wait_until(lambda: telemetry.faults["send"] == 1)
    sender.submit(BODY, POINTS)
    wait_until(lambda: telemetry.export_requests["success"] == 1)
    sender.close(5)
    assert transport.sent == [b"lost", BODY] and telemetry.faults == {"send": 1} and telemetry.fatal is None
    assert "send: unexpected RuntimeError: disk on fire" in [r.getMessage() for r in caplog.records]


def test_a_send_thread_that_dies_is_fatal():
    transport = FailingTransport(SystemExit("boom"))
    fatal = []
    telemetry = AgentTelemetry()
    faults = Faults(telemetry, limit=3, on_fatal=lambda: fatal.append(True))
    sender = Sender(transport, Backlog(None, max_bytes=10_000, max_age=3600), telemetry, faults, patience=60)
    sender.start()
    sender.submit(BODY, POINTS)
    sender.thread.join(5)
    assert telemetry.fatal == "the send thread died: SystemExit: boom" and fatal == [True]


def test_the_request_being_replayed_is_spared_when_newer_data_overflows_the_backlog():
    clock = Clock(100.0)
    backlog = Backlog(None, max_bytes=10, max_age=3600, clock=clock)
    backlog.push(b"old-12345")  # 9 of the 10 bytes

    class CollectingMeanwhile(ScriptedTransport):
        def send(self, body):
            if body == b"old-12345":
                backlog.push(b"new-1")  # kept by the collection while the old one is in flight: over the bound
            return super().send(body)

    transport = CollectingMeanwhile(Outcome.SENT, Outcome.SENT)
    sender, telemetry, _ = sender_with(transport, backlog, clock)
    sender.deliver(BODY, POINTS, clock.now)
    assert transport.sent == [b"old-12345", BODY]
    assert (backlog.replayed, backlog.dropped, len(backlog), telemetry.faults) == (1, 1, 0, {})


def test_what_a_memory_backlog_holds_at_shutdown_is_logged_as_lost_with_the_setting_that_keeps_it(caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="collector.exporter")
    sender, _, backlog = sender_with(ScriptedTransport(Outcome.RETRY, Outcome.RETRY))
    sender.deliver(b"a" * 100, 7, 1.0)
    sender.deliver(b"b" * 50, 5, 2.0)  # the first is sent again, fails again: the second waits behind it
    sender.close(1)
    assert len(backlog) == 2
    assert [(r.levelname, r.getMessage()) for r in caplog.records][-1:] == [
        ("WARNING", "stopping: 2 requests (12 data points, 150 bytes) could not be delivered and are lost: the "
                    "backlog is in memory only; set backlog.directory to keep undelivered data across restarts")]
    caplog.clear()
    on_disk = Backlog(tmp_path, max_bytes=10_000, max_age=3600, clock=Clock(100.0))
    sender, _, _ = sender_with(ScriptedTransport(Outcome.RETRY), backlog=on_disk)
    sender.deliver(b"a" * 100, 7, 1.0)
    sender.close(1)  # kept on disk for the next start: nothing lost, nothing more said
    empty, _, _ = sender_with(ScriptedTransport())
    empty.close(1)
    assert len(on_disk) == 1 and [r.getMessage() for r in caplog.records if "stopping" in r.getMessage()] == []


class HangingTransport:
    """A send that does not end (a name lookup that hangs: getaddrinfo takes no timeout) until released."""

    def __init__(self):
        self.release = threading.Event()

    def send(self, body):
        self.release.wait(10)
        return Answer(Outcome.SENT)

    def abandon(self):
        pass

    def close(self):
        pass


def test_a_request_still_in_flight_when_close_gives_up_waiting_is_kept_or_said_lost_never_lost_silently(caplog):
    caplog.set_level(logging.WARNING, logger="collector.exporter")
    telemetry, transport = AgentTelemetry(), HangingTransport()
    backlog = Backlog(None, max_bytes=10_000, max_age=3600)
    sender = Sender(transport, backlog, telemetry, Faults(telemetry, limit=3, on_fatal=lambda: None), patience=60)
    sender.start()
    sender.submit(b"final", 7)
    started = time.monotonic()
    sender.close(0.1)
    assert time.monotonic() - started < 4 * 0.1 + 1 + 0.5
    assert [r.getMessage() for r in caplog.records] == [
        "stopping: 1 requests (7 data points, 5 bytes) could not be delivered and are lost: the backlog is in memory "
        "only; set backlog.directory to keep undelivered data across restarts"]
    transport.release.set()
    sender.thread.join(5)
    assert len(backlog) == 1 and telemetry.export_requests == {"failure": 1}, "kept once, counted once"
