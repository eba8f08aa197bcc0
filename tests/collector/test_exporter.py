"""The sender's decisions, with a transport that answers as told: what is sent, kept, dropped and counted."""

import logging

from collector.backlog import Backlog
from collector.exporter import Sender
from collector.faults import Faults
from collector.telemetry import AgentTelemetry
from collector.transport import Outcome
from tests.collector.test_backlog import Clock

BODY, POINTS = b"new", 7


class ScriptedTransport:
    """Answers each send with the next outcome of its script and keeps what it was given."""

    def __init__(self, *outcomes):
        self.outcomes, self.sent = list(outcomes), []

    def send(self, body):
        self.sent.append(body)
        outcome = self.outcomes.pop(0)
        return outcome, "" if outcome is Outcome.SENT else f"told to answer {outcome.value}"

    def abandon(self):
        pass

    def close(self):
        self.outcomes = None


def sender_with(transport, backlog=None, clock=None):
    clock = clock or Clock(100.0)
    telemetry = AgentTelemetry()
    backlog = backlog if backlog is not None else Backlog(None, max_bytes=10_000, max_age=3600, clock=clock)
    faults = Faults(telemetry, limit=3, on_fatal=lambda: None)
    return Sender(transport, backlog, telemetry, faults, patience=60, clock=clock), telemetry, backlog


def backlog_with(*bodies):
    clock = Clock(100.0)
    backlog = Backlog(None, max_bytes=10_000, max_age=3600, clock=clock)
    for body in bodies:
        backlog.push(body)
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


def test_a_request_refused_on_replay_is_dropped_and_the_next_goes_out():
    backlog, clock = backlog_with(b"old")
    transport = ScriptedTransport(Outcome.REJECTED, Outcome.SENT)
    sender, telemetry, _ = sender_with(transport, backlog, clock)
    sender.deliver(BODY, POINTS, 1.0)
    assert (transport.sent, len(backlog), backlog.dropped, backlog.replayed) == ([b"old", BODY], 0, 1, 0)
    assert telemetry.export_requests == {"success": 1}


def test_the_backlog_goes_out_oldest_first_before_newer_data():
    backlog, clock = backlog_with(b"old-1", b"old-2")
    transport = ScriptedTransport(Outcome.SENT, Outcome.SENT, Outcome.SENT)
    sender, telemetry, _ = sender_with(transport, backlog, clock)
    sender.deliver(BODY, POINTS, 1.0)
    assert transport.sent == [b"old-1", b"old-2", BODY]
    assert (len(backlog), backlog.replayed, telemetry.export_requests["success"]) == (0, 2, 1)


def test_while_the_replay_fails_newer_data_waits_behind_and_is_not_sent():
    backlog, clock = backlog_with(b"old")
    transport = ScriptedTransport(Outcome.RETRY)
    sender, telemetry, _ = sender_with(transport, backlog, clock)
    sender.deliver(BODY, POINTS, 1.0)
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
