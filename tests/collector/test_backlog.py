"""The backlog: undelivered requests kept, bounded, replayed oldest first, surviving a restart."""

import logging
import time

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from collector.backlog import Backlog
from collector.config import ExporterConfig
from collector.exporter import Sender
from collector.faults import Faults
from collector.telemetry import AgentTelemetry
from collector.transport import HttpTransport
from pipeline.otlp_receiver import OtlpReceiver


class Clock:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def bodies(backlog):
    found = []
    while oldest := backlog.oldest():
        found.append(oldest[1])
        backlog.delivered(oldest[0])
    return found


@pytest.mark.parametrize("on_disk", [True, False])
def test_requests_come_back_oldest_first(tmp_path, on_disk):
    clock = Clock()
    backlog = Backlog(tmp_path / "backlog" if on_disk else None, max_bytes=10_000, max_age=3600, clock=clock)
    for n in range(5):
        clock.now += 10
        backlog.push(f"request-{n}".encode())
    assert (len(backlog), backlog.size_bytes, backlog.age()) == (5, 45, 40)
    assert bodies(backlog) == [f"request-{n}".encode() for n in range(5)]
    assert (backlog.replayed, backlog.dropped, backlog.size_bytes) == (5, 0, 0)


def test_beyond_the_size_bound_the_oldest_are_dropped_and_counted(tmp_path):
    backlog = Backlog(tmp_path, max_bytes=25, max_age=3600)
    for n in range(5):
        backlog.push(f"request-{n}".encode())  # 9 bytes each: only two fit in 25
    assert bodies(backlog) == [b"request-3", b"request-4"]
    assert backlog.dropped == 3
    assert not list(tmp_path.glob("*.otlp"))


def test_drops_at_the_size_bound_are_logged_once_and_their_end_when_the_backlog_is_drained(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="collector.backlog")
    backlog = Backlog(tmp_path, max_bytes=25, max_age=3600)
    for n in range(5):
        backlog.push(f"request-{n}".encode())
    bodies(backlog)
    backlog.push(b"after")
    bodies(backlog)
    assert backlog.dropped == 3
    assert [r.getMessage() for r in caplog.records] == [
        "backlog.max_bytes: full at 25 bytes: the oldest requests are dropped and counted",
        "backlog.max_bytes: recovered"]


def test_a_request_kept_late_goes_before_those_collected_after_it(tmp_path):
    # The request in flight when the gateway stopped answering is kept after newer ones were: by collection time.
    backlog = Backlog(tmp_path, max_bytes=10_000, max_age=3600)
    backlog.push(b"second", created=2.0)
    backlog.push(b"third", created=3.0)
    backlog.push(b"first", created=1.0)
    assert bodies(Backlog(tmp_path, max_bytes=10_000, max_age=1e12)) == [b"first", b"second", b"third"]


def test_the_size_bound_spares_the_request_in_flight(tmp_path):
    backlog = Backlog(tmp_path, max_bytes=25, max_age=3600)
    backlog.push(b"request-0")
    backlog.sending = backlog.oldest()[0]
    for n in range(1, 4):
        backlog.push(f"request-{n}".encode())
    backlog.delivered(backlog.sending)
    assert (backlog.replayed, backlog.dropped) == (1, 2)
    assert bodies(backlog) == [b"request-3"]


def test_expired_requests_are_dropped_and_counted(tmp_path):
    clock = Clock()
    backlog = Backlog(tmp_path, max_bytes=10_000, max_age=60, clock=clock)
    backlog.push(b"old")
    clock.now += 50
    backlog.push(b"recent")
    clock.now += 30
    assert bodies(backlog) == [b"recent"] and backlog.dropped == 1


def test_drops_at_the_age_bound_are_logged_once_and_their_end_when_the_backlog_is_drained(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="collector.backlog")
    clock = Clock()
    backlog = Backlog(tmp_path, max_bytes=10_000, max_age=10, clock=clock)
    for _ in range(8):  # an outage: each cycle keeps its request and tries the oldest, which may have expired
        backlog.push(b"data")
        backlog.oldest()
        clock.now += 5
    assert backlog.dropped == 5 and len(caplog.records) == 1
    bodies(backlog)
    assert [r.getMessage() for r in caplog.records] == [
        "backlog.max_age: requests older than 10s are dropped and counted", "backlog.max_age: recovered"]


def test_a_request_that_cannot_be_read_back_is_dropped_counted_and_logged(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="collector.backlog")
    backlog = Backlog(tmp_path, max_bytes=10_000, max_age=3600)
    for body in (b"one", b"two", b"three"):
        backlog.push(body)
    [first, *_] = sorted(tmp_path.glob("*.otlp"))
    first.unlink()
    first.mkdir()  # in its place something that is not a file: reading it fails
    assert bodies(backlog) == [b"two", b"three"] and backlog.dropped == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"backlog replay: cannot read {first.name} (Is a directory): it is dropped and counted",
        "backlog replay: recovered"]


def test_the_backlog_survives_a_restart(tmp_path):
    first = Backlog(tmp_path, max_bytes=10_000, max_age=3600)
    first.push(b"one")
    first.push(b"two")
    del first  # as after SIGKILL: nothing was flushed or closed
    assert bodies(Backlog(tmp_path, max_bytes=10_000, max_age=3600)) == [b"one", b"two"]


def test_after_a_restart_requests_come_back_in_creation_order_with_their_age(tmp_path):
    clock = Clock()
    first = Backlog(tmp_path, max_bytes=10_000, max_age=3600, clock=clock)
    order = [5, 2, 7, 0, 3, 6, 1, 4]  # files written in an order that is neither by name nor its reverse
    for n in order:
        clock.now = 1_700_000_000.0 + 10 * n
        first.push(f"request-{n}".encode())
    del first
    clock.now = 1_700_000_000.0 + 100
    second = Backlog(tmp_path, max_bytes=10_000, max_age=3600, clock=clock)
    assert (len(second), second.size_bytes, second.age()) == (8, 72, 100)
    assert bodies(second) == [f"request-{n}".encode() for n in range(8)]


def test_a_restart_does_not_make_expired_requests_young_again(tmp_path):
    clock = Clock()
    first = Backlog(tmp_path, max_bytes=10_000, max_age=60, clock=clock)
    first.push(b"old")
    clock.now += 50
    first.push(b"recent")
    del first
    clock.now += 30
    second = Backlog(tmp_path, max_bytes=10_000, max_age=60, clock=clock)
    assert bodies(second) == [b"recent"] and second.dropped == 1


@pytest.mark.parametrize("on_disk", [True, False])
def test_the_size_bound_is_inclusive_and_a_request_larger_than_it_is_not_kept(tmp_path, on_disk):
    backlog = Backlog(tmp_path if on_disk else None, max_bytes=18, max_age=3600)
    backlog.push(b"request-1")
    backlog.push(b"request-2")  # exactly 18 bytes: both fit
    assert (len(backlog), backlog.size_bytes, backlog.dropped) == (2, 18, 0)
    backlog.push(b"x" * 19)  # larger than the whole bound: everything goes, the big one too
    assert (len(backlog), backlog.size_bytes, backlog.dropped) == (0, 0, 3)
    assert not list(tmp_path.glob("*.otlp"))


def test_an_unwritable_directory_drops_counts_and_logs_once(tmp_path, caplog):
    # A regular file where the directory should be: unwritable even for root, who ignores permissions.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    caplog.set_level(logging.WARNING, logger="collector.backlog")
    backlog = Backlog(blocker / "backlog", max_bytes=10_000, max_age=3600)
    for _ in range(3):
        backlog.push(b"data")
    assert (len(backlog), backlog.dropped) == (0, 3)
    assert [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()] == [
        f"backlog: cannot write to {blocker / 'backlog'} (Not a directory): undelivered data is dropped and counted"]


def collect_one(value_holder):
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    from opentelemetry.metrics import Observation
    provider.get_meter("t").create_observable_counter(
        "test.sequence", callbacks=[lambda _: [Observation(value_holder[0])]])
    return reader, provider


def sequence_values(receiver):
    return [m.sum.data_points[0].as_int or m.sum.data_points[0].as_double
            for r in receiver.requests for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]


def test_an_outage_loses_nothing_and_the_backlog_goes_out_before_newer_data(tmp_path):
    receiver = OtlpReceiver(status=503)
    telemetry = AgentTelemetry()
    backlog = Backlog(tmp_path, max_bytes=1_000_000, max_age=3600)
    sender = Sender(HttpTransport(ExporterConfig(endpoint=receiver.url, timeout=5)), backlog, telemetry,
                    Faults(telemetry, limit=3, on_fatal=lambda: None), patience=60)
    value = [0]
    reader, provider = collect_one(value)
    try:
        for n in range(1, 7):
            if n == 4:
                receiver.status = 200  # the gateway comes back
            value[0] = n
            sender.deliver(encode_metrics(reader.get_metrics_data()).SerializeToString(), 1, time.time())
        assert sequence_values(receiver) == [1, 2, 3, 4, 5, 6]
        assert telemetry.export_requests == {"failure": 3, "success": 3}
        assert (backlog.replayed, backlog.dropped, len(backlog)) == (3, 0, 0)
    finally:
        provider.shutdown()
        receiver.stop()


def test_a_directory_that_appears_after_start_up_is_used(tmp_path):
    blocker = tmp_path / "volume"
    blocker.write_text("")  # not mounted yet: a file stands where the directory will be
    backlog = Backlog(blocker / "backlog", max_bytes=10_000, max_age=3600)
    backlog.push(b"lost")
    blocker.unlink()  # the volume arrives
    backlog.push(b"kept")
    assert bodies(backlog) == [b"kept"] and backlog.dropped == 1


def test_the_directory_is_made_at_start_and_a_previous_run_is_announced(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="collector.backlog")
    Backlog(tmp_path / "a" / "b", max_bytes=10_000, max_age=3600)
    assert (tmp_path / "a" / "b").is_dir(), "made before the first request needs it"
    first = Backlog(tmp_path / "a" / "b", max_bytes=10_000, max_age=3600)
    first.push(b"one")
    first.push(b"two")
    # a request file that vanished (a dangling link) is skipped, the ones after it are kept
    (tmp_path / "a" / "b" / f"{1:020d}-000000.otlp").symlink_to(tmp_path / "gone")
    caplog.clear()
    assert Backlog(tmp_path / "a" / "b", max_bytes=10_000, max_age=3600 * 24 * 365 * 100).size_bytes == 6
    assert [r.getMessage() for r in caplog.records] == [
        "backlog: 2 requests (6 bytes) waiting from a previous run"]


def test_a_file_the_agent_did_not_write_is_left_alone_and_named(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="collector.backlog")
    Backlog(tmp_path, max_bytes=10_000, max_age=3600).push(b"one")
    for stray in ("notes.otlp", "1-2.otlp", f"{1:020d}-000000.otlp.bak"):
        (tmp_path / stray).write_bytes(b"not a request")
    assert bodies(Backlog(tmp_path, max_bytes=10_000, max_age=3600)) == [b"one"]
    assert sorted(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == [
        f"backlog: {tmp_path / name} is not a request this agent wrote: left alone"
        for name in ("1-2.otlp", "notes.otlp")]
    assert (tmp_path / "notes.otlp").read_bytes() == b"not a request"


def test_an_unusable_directory_at_start_is_logged_once_and_recovery_too(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="collector.backlog")
    blocker = tmp_path / "volume"
    blocker.write_text("")
    backlog = Backlog(blocker / "backlog", max_bytes=10_000, max_age=3600)
    assert (len(backlog), backlog.age()) == (0, 0.0)
    blocker.unlink()
    backlog.push(b"kept")
    assert [r.getMessage() for r in caplog.records] == [
        f"backlog: cannot use {blocker / 'backlog'}: Not a directory", "backlog: recovered"]


def test_a_request_exactly_max_age_old_is_still_sent_and_a_missing_file_is_dropped(tmp_path):
    clock = Clock()
    backlog = Backlog(tmp_path, max_bytes=10_000, max_age=60, clock=clock)
    for body in (b"one", b"two", b"three"):
        backlog.push(body)
    clock.now += 60
    (tmp_path / backlog.entries[0].name).unlink()  # removed behind the agent's back
    entry, body = backlog.oldest()
    assert body == b"two" and backlog.dropped == 1 and len(backlog) == 2
    backlog.rejected(entry)  # the gateway refused it for good
    assert (backlog.dropped, len(backlog), backlog.size_bytes) == (2, 1, 5)
    assert [p.name for p in tmp_path.glob("*.otlp")] == [backlog.entries[0].name]
    backlog.count_dropped()
    backlog.count_dropped()
    assert backlog.dropped == 4
