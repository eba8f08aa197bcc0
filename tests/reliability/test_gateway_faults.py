"""Whatever the gateway does — frozen, slower than the timeout, flapping — the agent takes a sample every
interval, and every sample is in both backends exactly once. Real processes: the agent (1 s interval, 2 s
timeout) → each gateway (vmagent, the OpenTelemetry Collector) → Prometheus and VictoriaMetrics.

Counting: `system_uptime_seconds` has one sample per collection cycle; the request of a cycle also carries
how many cycles the agent ran (`hostagent_source_collections_total` of the source that reads the uptime),
so the last sample says how many samples there must be. A duplicate makes the count larger, a loss smaller.
"""
import os
import signal
import time
import urllib.request

import pytest
import yaml

from pipeline.services import REPO_ROOT, VICTORIAMETRICS_DEDUP
from pipeline.soak import CYCLES, UPTIME
from pipeline.testing import Pipeline, exporting, wait_for
from tests.reliability.agent_process import AgentProcess
from tests.reliability.backends import last_value, sample_times
from tests.reliability.slow_proxy import SlowProxy

FAILURES = 'hostagent_export_requests_total{hostagent_outcome="failure"}'
FAULT_CYCLES = int(os.environ.get("RELIABILITY_FAULT_CYCLES", 15))  # 1 s cycles each fault lasts
EXPORTER = {"exporter": {"timeout": "2s"}}
COMPOSE = REPO_ROOT / "deploy" / "compose" / "compose.yaml"


@pytest.fixture
def pipeline(gateway_pipeline):
    """Through each gateway (the fixture is parametrised over both)."""
    return gateway_pipeline


def assert_every_cycle_once(pipeline: Pipeline, agent: AgentProcess, fault: tuple[float, float]) -> None:
    """Drain the backlog, stop the agent (a final export), then count in both backends."""
    wait_for(lambda: not agent.backlog_files(), timeout=60, what="the backlog delivered")
    agent.stop()

    def counted(backend):
        samples, cycles = sample_times(backend, UPTIME), last_value(backend, CYCLES)
        return (samples, cycles) if cycles and len(set(samples)) >= cycles else None
    stored = []
    for backend in pipeline.backends:
        wait_for(lambda: counted(backend), timeout=60, what=f"every cycle's sample in {backend.name}")
        time.sleep(3)  # anything still queued in the gateway arrives too
        samples, cycles = counted(backend)
        assert len(set(samples)) == cycles, f"{backend.name}: {cycles} cycles, {len(set(samples))} timestamps"
        assert len(samples) == cycles, f"{backend.name}: {len(samples) - cycles} duplicate samples"
        stored.append(samples)
        assert last_value(backend, FAILURES) > 0, "the fault never reached the agent"
    assert stored[0] == stored[1]
    # The rhythm held through the fault: no cycle skipped (a skip leaves a gap of two intervals).
    during = [t for t in stored[0] if fault[0] <= t <= fault[1] + 1000]
    gaps = [later - earlier for earlier, later in zip(during, during[1:])]
    assert len(during) >= FAULT_CYCLES - 1 and max(gaps) < 2000, f"gaps during the fault (ms): {gaps}"


def now_ms() -> float:
    return time.time() * 1000


def test_a_frozen_gateway_loses_nothing_and_stores_nothing_twice(pipeline, tmp_path):
    with exporting(AgentProcess(tmp_path / "agent", pipeline.gateway.otlp_url, EXPORTER), pipeline) as agent:
        frozen = now_ms()
        pipeline.gateway.process.send_signal(signal.SIGSTOP)
        time.sleep(FAULT_CYCLES)
        pipeline.gateway.process.send_signal(signal.SIGCONT)
        assert_every_cycle_once(pipeline, agent, (frozen, now_ms()))
        assert "waiting for it rather than sending the request twice" in agent.log()


def test_a_gateway_slower_than_the_timeout_loses_nothing_and_memory_stays_bounded(pipeline, tmp_path):
    with SlowProxy(pipeline.gateway.port) as proxy:
        endpoint = pipeline.gateway.otlp_url.replace(f":{pipeline.gateway.port}/", f":{proxy.port}/")
        with exporting(AgentProcess(tmp_path / "agent", endpoint, EXPORTER), pipeline) as agent:
            rss_before, slow = agent.rss_kib(), now_ms()
            proxy.delay = 3.0  # each answer 3 s late, after the 2 s timeout
            time.sleep(FAULT_CYCLES)
            rss_during, proxy.delay = agent.rss_kib(), 0.0
            assert_every_cycle_once(pipeline, agent, (slow, now_ms()))
    assert rss_during - rss_before < 10 * 1024, f"RSS grew from {rss_before} KiB to {rss_during} KiB"


def test_a_flapping_gateway_loses_nothing_and_stores_nothing_twice(pipeline, tmp_path):
    with exporting(AgentProcess(tmp_path / "agent", pipeline.gateway.otlp_url, EXPORTER), pipeline) as agent:
        flapping = now_ms()
        while now_ms() - flapping < FAULT_CYCLES * 1000:
            pipeline.gateway.stop()
            time.sleep(2)
            pipeline.gateway.start()
            time.sleep(2)
        assert_every_cycle_once(pipeline, agent, (flapping, now_ms()))


def test_victoriametrics_stores_a_sample_delivered_twice_once_wherever_the_project_starts_it(victoriametrics):
    # At least once: a request whose answer was lost is sent again. Prometheus ignores an identical sample;
    # VictoriaMetrics keeps one per series and millisecond with the dedup flag of make run, the tests and compose.
    stamp = int(time.time() * 1000) - 60_000
    for _ in range(2):
        body = f"delivered_twice 1 {stamp}\ndelivered_twice 1 {stamp + 1000}\n".encode()
        urllib.request.urlopen(urllib.request.Request(victoriametrics.url + "/api/v1/import/prometheus", body)).close()
    assert sample_times(victoriametrics, "delivered_twice") == [stamp, stamp + 1000]
    compose = yaml.safe_load(COMPOSE.read_text())
    assert VICTORIAMETRICS_DEDUP in compose["services"]["victoriametrics"]["command"]
