"""The agent's wiring (collector/agent.py): the readiness window and the backlog it gives its parts, and the
collecting reader's schedule, fault counting and final collection."""

import logging
import time

import pytest
from opentelemetry.sdk.resources import Resource

from collector.agent import Agent, CollectingReader, build_collection, build_provider
from collector.collection import Collection
from collector.config import Config, ExporterConfig, HealthConfig
from collector.host import Host
from collector.sources import SOURCES
from collector.sources.load import LoadSource
from collector.spec import Point
from collector.telemetry import AgentTelemetry
from collector.units import Duration
from tests.collector.conftest import FIXTURE_ROOT
from tests.collector.test_cli import http_status
from tests.collector.test_collection import Scripted
from tests.collector.test_faults import faults_with


@pytest.fixture
def agent():
    """An agent over the fixture host exporting every 10 s, ready while it exported within the last 3 intervals;
    built, not run."""
    config = Config(exporter=ExporterConfig(interval=Duration(10)),
                    health=HealthConfig(listen="127.0.0.1:0", ready_intervals=3), host_root=str(FIXTURE_ROOT))
    agent = Agent(config, environ={})
    yield agent
    agent.health.stop()


def test_readyz_fails_only_when_no_export_succeeded_for_ready_intervals_export_intervals(agent):
    agent.health.start()
    readyz = f"http://127.0.0.1:{agent.health.port}/readyz"
    agent.telemetry.last_export_success = time.monotonic() - 20  # two intervals ago: within 3 × 10 s
    assert http_status(readyz) == 200
    agent.telemetry.last_export_success = time.monotonic() - 40
    assert http_status(readyz) == 503


def test_the_self_metrics_report_the_senders_backlog(agent):
    agent.sender.backlog.push(b"x" * 100, created=time.time() - 60)
    agent.collection.refresh()
    backlog = {p.metric: p.value for p in agent.collection.points() if p.metric.startswith("hostagent.backlog.")}
    assert backlog["hostagent.backlog.size"] == 100
    assert 60 <= backlog["hostagent.backlog.age"] < 70


def metrics_of(collection) -> set[str]:
    return {point.metric for point in collection.points()}


def test_a_source_whose_first_read_fails_costs_its_own_metrics_only_and_is_counted(host_tree, caplog):
    """The cpu source reads /proc/stat for its baseline when it is built: a host without it (or with garbage in
    it) must not stop the agent, only the cpu source, counted and logged like any failed collection."""
    stat = host_tree / "proc" / "stat"
    good = stat.read_text()
    stat.unlink()
    telemetry = AgentTelemetry()
    collection = build_collection(Config(host_root=str(host_tree)), Host(host_tree), telemetry)
    with caplog.at_level(logging.WARNING, logger="collector.collection"):
        collection.refresh()
        stat.write_text("garbage\n")
        collection.refresh()
    assert telemetry.sources["cpu"].outcomes == {"error": 2}
    assert telemetry.sources["memory"].outcomes == {"success": 2}
    assert "system.memory.usage" in metrics_of(collection) and "system.cpu.time" not in metrics_of(collection)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("source cpu:")] == [
        f"source cpu: FileNotFoundError: [Errno 2] No such file or directory: '{stat}'",
        "source cpu: ValueError: /proc/stat has no cpu line"]
    stat.write_text(good)
    collection.refresh()
    assert telemetry.sources["cpu"].outcomes == {"error": 2, "success": 1}
    assert "system.cpu.time" in metrics_of(collection)


class BuiltOnThirdTry(LoadSource):
    tries = 0

    def __init__(self, host, options):
        type(self).tries += 1
        if self.tries < 3:
            raise OSError(5, "Input/output error", "/proc/loadavg")
        super().__init__(host, options)


def test_a_source_that_cannot_be_built_is_counted_as_failing_and_built_again_at_each_collection(
        monkeypatch, fixture_host):
    monkeypatch.setitem(SOURCES, "load", BuiltOnThirdTry)
    telemetry = AgentTelemetry()
    collection = build_collection(Config(host_root=str(fixture_host.root)), fixture_host, telemetry)
    collection.refresh()
    assert telemetry.sources["load"].outcomes == {"error": 1}
    assert "system.cpu.load_average.1m" not in metrics_of(collection)
    assert telemetry.sources["cpu"].outcomes == {"success": 1}
    collection.refresh()
    assert telemetry.sources["load"].outcomes == {"error": 1, "success": 1}
    assert "system.cpu.load_average.1m" in metrics_of(collection)


def reader_with(deliver, faults, interval=10.0, clock=time.monotonic) -> CollectingReader:
    """A reader of one source's one point, registered with a MeterProvider as the agent does."""
    collection = Collection([Scripted("test", [[Point("test.value", 1.0)]])], AgentTelemetry())
    reader = CollectingReader(collection, interval, deliver, faults, clock)
    build_provider(Resource.create({}), reader, collection, shutdown_on_exit=False)
    return reader


def test_a_good_collection_clears_the_faults_so_that_only_faults_in_a_row_are_fatal():
    faults, telemetry, stop = faults_with(limit=3)
    script = [RuntimeError("encoder"), RuntimeError("encoder"), None, RuntimeError("encoder"),
              RuntimeError("encoder"), None, RuntimeError("encoder"), RuntimeError("encoder")]

    def deliver(body, points):
        if error := script.pop(0):
            raise error
    reader = reader_with(deliver, faults)
    while script:
        reader.cycle()
    assert telemetry.faults == {"collect": 6}
    assert not stop.is_set() and telemetry.fatal is None
    script.append(RuntimeError("encoder"))  # the third in a row
    reader.cycle()
    assert stop.is_set() and telemetry.fatal == "collect failed 3 times in a row"


class PausingClock:
    """The reader's monotonic clock and its stop event in one, without real waiting: a wait moves the clock on by
    the time asked, plus the pause given for the wait after that many collections (the VM suspended); the
    event is set once `collections` were made."""

    def __init__(self, collections: int, pauses: dict[int, float]):
        self.now, self.collections, self.pauses, self.collected = 1000.0, collections, pauses, []

    def __call__(self) -> float:
        return self.now

    def wait(self, timeout: float) -> bool:
        self.now += timeout + self.pauses.get(len(self.collected), 0.0)
        return len(self.collected) >= self.collections


def test_after_a_stall_one_collection_runs_late_and_the_next_ones_keep_to_the_interval_grid():
    clock = PausingClock(collections=4, pauses={1: 35.0})  # the VM is paused for 35 s after the first collection
    reader = reader_with(lambda body, points: clock.collected.append(clock.now), faults_with()[0], clock=clock)
    reader.stopped = clock
    reader.start()
    reader.thread.join(timeout=5)
    # 1030, 1040 and 1050 were missed: not made up for back to back
    assert clock.collected == [1010.0, 1055.0, 1060.0, 1070.0]


@pytest.mark.parametrize("started", [True, False], ids=["running", "not running"])
def test_shutdown_stops_the_clock_and_collects_and_delivers_once_more(started):
    """Also when the collecting thread is not running (it died of a fault): the final collection is the
    shutdown's own."""
    delivered = []
    reader = reader_with(lambda body, points: delivered.append(points), faults_with()[0], interval=3600)
    if started:
        reader.start()
    reader.shutdown()
    assert delivered == [1]
    assert not reader.thread.is_alive()
