"""The backlog when its disk fails it, and the agent when the gateway is too slow: collection and export of
live data go on, losses are counted and logged once, memory and the backlog stay bounded.

During an outage the gateway's port is held by an endpoint answering 503 (busy), which keeps every request
it refuses: each is one failed export cycle, carrying the agent's self-metrics of that moment."""
from pathlib import Path

from collector.backlog import Backlog
from collector.sources.agent import AgentSource
from collector.telemetry import AgentTelemetry
from pipeline.testing import exporting, running, wait_for
from tests.reliability.agent_process import BACKLOG_SUFFIX, AgentProcess
from tests.reliability.backends import last_value
from tests.reliability.endpoint import Endpoint
from tests.reliability.namespaces import with_tmpfs
from tests.reliability.otlp import latest, points

FAILURES = 'hostagent_export_requests_total{hostagent_outcome="failure"}'
DROPPED = "hostagent_backlog_dropped_total"
REPLAYED = "hostagent_backlog_replayed_total"


def test_replayed_and_dropped_stay_cumulative_once_the_backlog_is_empty(tmp_path):
    backlog = Backlog(tmp_path, max_bytes=4, max_age=3600)
    backlog.push(b"dropped: over max_bytes")
    backlog.push(b"kept")
    backlog.delivered(backlog.oldest()[0])
    reported = {p.metric: p.value for p in AgentSource(None, None, AgentTelemetry(), backlog).collect()}
    assert len(backlog) == 0
    assert (reported["hostagent.backlog.replayed"], reported["hostagent.backlog.dropped"]) == (1, 1)


def test_a_request_cut_short_by_a_crash_is_removed_on_start(tmp_path):
    Backlog(tmp_path, max_bytes=10_000, max_age=3600).push(b"complete")
    (tmp_path / f".00000000000000000001-000000{BACKLOG_SUFFIX}.tmp").write_bytes(b"half a req")
    restarted = Backlog(tmp_path, max_bytes=10_000, max_age=3600)
    assert (len(restarted), restarted.size_bytes) == (1, len(b"complete"))
    assert [p.suffix for p in tmp_path.iterdir()] == [BACKLOG_SUFFIX]


def busy_gateway(pipeline, until) -> Endpoint:
    """Replace the gateway by a 503 endpoint on its port until `until(endpoint)`, then bring it back."""
    pipeline.gateway.stop()
    with Endpoint(status=503, port=pipeline.gateway.port) as busy:
        wait_for(lambda: until(busy), timeout=60, what="failed export cycles during the outage")
    pipeline.gateway.start()
    return busy


def final_counts(pipeline, agent: AgentProcess, condition) -> dict[str, float]:
    """The agent's last failure, replayed and dropped counters once `condition(counts)` holds in both backends."""
    agent.stop()  # a final export: its counters include every cycle before it

    def counts(backend):
        found = {name: last_value(backend, expr) for name, expr in
                 (("failures", FAILURES), ("replayed", REPLAYED), ("dropped", DROPPED))}
        return found if None not in found.values() and condition(found) else None
    settled = [wait_for(lambda: counts(backend), timeout=60, what=f"the agent's last counters in {backend.name}")
               for backend in pipeline.backends]
    assert settled[0] == settled[1]
    return settled[0]


def test_an_unwritable_backlog_directory_never_stops_live_data(gateway_pipeline, tmp_path):
    backlog = tmp_path / "agent" / "backlog"
    agent = AgentProcess(tmp_path / "agent", gateway_pipeline.gateway.otlp_url,
                         wrapper=with_tmpfs(backlog, "ro"))  # unwritable even for root, who ignores permissions
    with exporting(agent, gateway_pipeline):
        busy = busy_gateway(gateway_pipeline, lambda busy: len(busy.received()) >= 5)
        assert latest(busy.received(), "hostagent.backlog.dropped") >= 4, "refused requests not counted as dropped"
        # Back to normal: the counters of the outage arrive with live data, in both backends.
        counts = final_counts(gateway_pipeline, agent, lambda c: c["failures"] >= 5 and c["dropped"] == c["failures"])
        assert counts["replayed"] == 0
        log = agent.log()
    assert log.count(f"cannot write to {backlog} (Read-only file system)") == 1, log
    # Once for the outage's five refused cycles; a cycle refused while the gateway restarts has a line of its own.
    assert log.count("HTTP 503 from") == 1, log


def test_a_full_backlog_disk_keeps_what_fits_drops_the_rest_and_cleans_up(gateway_pipeline, tmp_path):
    backlog = tmp_path / "agent" / "backlog"
    agent = AgentProcess(tmp_path / "agent", gateway_pipeline.gateway.otlp_url,
                         wrapper=with_tmpfs(backlog, "size=64k"))  # room for about four requests
    with exporting(agent, gateway_pipeline):
        on_tmpfs = Path(f"/proc/{agent.process.pid}/root") / backlog.relative_to("/")

        def disk_full_for_two_cycles(busy):
            return "No space left on device" in agent.log() and len(busy.received()) >= 8
        busy_gateway(gateway_pipeline, disk_full_for_two_cycles)
        wait_for(lambda: not list(on_tmpfs.glob(f"*{BACKLOG_SUFFIX}")), timeout=30, what="the backlog replayed")
        leftovers = list(on_tmpfs.iterdir())
        counts = final_counts(gateway_pipeline, agent,
                              lambda c: c["failures"] >= 8 and c["replayed"] + c["dropped"] == c["failures"])
        log = agent.log()
    assert leftovers == [], "half-written requests left on the full disk"
    assert counts["replayed"] >= 2 and counts["dropped"] >= 1
    assert log.count("No space left on device") == 1, log


def test_a_gateway_slower_than_the_timeout_leaves_memory_and_the_backlog_bounded(tmp_path):
    max_bytes = 64 * 1024  # about four requests: the size bound is hit within a few cycles
    with Endpoint(delay=3) as slow:  # answers 3 s late, after the agent's 1 s timeout
        options = {"exporter": {"timeout": "1s"}, "backlog": {"directory": None, "max_bytes": max_bytes}}
        with running(AgentProcess(tmp_path / "agent", slow.url(), options)) as agent:
            wait_for(lambda: len(slow.received()) >= 3, what="the first requests")
            start = agent.rss_kib()
            wait_for(lambda: len(slow.received()) >= 15, timeout=120, what="15 late answers")
            end = agent.rss_kib()
            assert agent.running()
        received = slow.received()
    assert end - start < 20 * 1024, f"RSS grew from {start} KiB to {end} KiB"
    sizes = [value for _, _, value in points(received, "hostagent.backlog.size")]
    assert 0 < max(sizes) <= max_bytes
    assert latest(received, "hostagent.backlog.dropped") > 0, "the size bound was never reached"
    sent = [time for time, _, _ in points(received, "system.uptime")]
    assert len(sent) == len(set(sent)), "a request was sent again while its first copy was in flight"
