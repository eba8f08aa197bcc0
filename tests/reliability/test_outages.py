"""Outages with the real pipeline (agent → vmagent gateway → Prometheus + VictoriaMetrics): nothing is lost.

Every test counts raw samples of the agent's `system_uptime_seconds` (one per collection cycle). Each cycle's
request also carries the number of cycles so far, so the last sample tells how many samples there must be.
"""
import os
import time

import pytest

from collector.config import BacklogConfig
from pipeline.soak import CYCLES, UPTIME
from pipeline.testing import exporting, wait_for
from tests.reliability.agent_process import AgentProcess
from tests.reliability.backends import last_value, prometheus_out_of_order_window, sample_times
from tests.reliability.otlp import read_backlog_file, times_ms

# Export cycles (1 s each) the gateway stays away; RELIABILITY_OUTAGE_CYCLES=600 is a 10-minute outage.
OUTAGE_CYCLES = int(os.environ.get("RELIABILITY_OUTAGE_CYCLES", 4))
PATIENCE = 30 + 2 * OUTAGE_CYCLES  # seconds to wait for the outage to build up, or to drain


@pytest.fixture
def agent(gateway_pipeline, tmp_path):
    with exporting(AgentProcess(tmp_path / "agent", gateway_pipeline.gateway.otlp_url), gateway_pipeline) as process:
        yield process


def outage_samples(agent: AgentProcess) -> set[int]:
    """Timestamps of the samples the agent is holding in its backlog right now."""
    return times_ms((read_backlog_file(path) for path in agent.backlog_files()), "system.uptime")


def wait_for_backlog(agent: AgentProcess, count: int) -> set[int]:
    wait_for(lambda: len(agent.backlog_files()) >= count, timeout=PATIENCE, what=f"{count} requests in the backlog")
    return outage_samples(agent)


def every_cycle_stored(backend, expected: set[int], after: float) -> tuple[list[int] | None, str]:
    """(the samples, or None until they settle; what the backend holds, for a failure's message). They settle
    once those of the outage are in, the latest is newer than `after` (ms) and has seen the replay, and their
    number equals the cycles the agent counted: a gap anywhere would make it smaller, a duplicate larger."""
    samples = sample_times(backend, UPTIME)
    cycles = last_value(backend, CYCLES)
    failures = last_value(backend, 'hostagent_export_requests_total{hostagent_outcome="failure"}')
    replayed = last_value(backend, "hostagent_backlog_replayed_total")
    settled = expected <= set(samples) and samples and samples[-1] > after and cycles is not None \
        and len(samples) == cycles and replayed >= failures
    latest = "after" if samples and samples[-1] > after else "before"
    found = (f"{backend.name}: {len(samples)} samples for {_count(cycles)} cycles, {len(expected - set(samples))} of "
             f"the outage's missing, the latest {latest} the recovery, {_count(replayed)} replayed of "
             f"{_count(failures)} failed")
    return (samples if settled else None), found


def _count(value: float | None) -> str:
    return "no" if value is None else f"{value:.0f}"


def assert_nothing_lost(pipeline, expected: set[int], after: float) -> None:
    """Every cycle in both backends, the same samples in each (a duplicate in either would differ)."""
    assert expected, "the outage left nothing to check"
    found = []

    def complete():
        stored, found[:] = zip(*(every_cycle_stored(backend, expected, after) for backend in pipeline.backends))
        return stored if all(stored) and stored[0] == stored[1] else None
    try:
        wait_for(complete, timeout=60 + PATIENCE,
                 what="every export cycle, the same samples, in Prometheus and VictoriaMetrics")
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}; {'; '.join(found)}") from None


def test_prometheus_accepts_a_replay_as_old_as_the_backlog_keeps(prometheus):
    # vmagent sends on several shards, so replayed samples can reach Prometheus after newer ones; and samples
    # older than the head block are refused unless they fall in the out-of-order window.
    assert prometheus_out_of_order_window(prometheus) >= BacklogConfig().max_age


def test_a_gateway_outage_loses_no_sample_in_either_backend(gateway_pipeline, agent):
    gateway_pipeline.gateway.stop()
    held = wait_for_backlog(agent, OUTAGE_CYCLES)
    gateway_pipeline.gateway.start()
    recovered = time.time() * 1000
    wait_for(lambda: not agent.backlog_files(), timeout=PATIENCE, what="the backlog replayed")
    agent.stop()  # SIGTERM: a final export, then the sample count is final
    assert_nothing_lost(gateway_pipeline, held, after=recovered)
    for backend in gateway_pipeline.backends:
        failures = last_value(backend, 'hostagent_export_requests_total{hostagent_outcome="failure"}')
        assert failures >= OUTAGE_CYCLES
        assert last_value(backend, "hostagent_backlog_dropped_total") == 0


def test_one_backend_down_holds_back_neither_backend_and_loses_nothing(gateway_pipeline, agent):
    prometheus, victoriametrics = gateway_pipeline.backends
    victoriametrics.stop()
    stopped = time.time() * 1000

    def prometheus_keeps_receiving():
        return len([t for t in sample_times(prometheus, UPTIME) if t > stopped]) >= OUTAGE_CYCLES
    wait_for(prometheus_keeps_receiving, timeout=PATIENCE,
             what="new samples in Prometheus while VictoriaMetrics is down")
    victoriametrics.start()  # same port, same storage: vmagent's queue for it drains
    restarted = time.time() * 1000
    agent.stop()
    during_outage = {t for t in sample_times(prometheus, UPTIME) if stopped < t < restarted}
    assert_nothing_lost(gateway_pipeline, during_outage, after=restarted)
    assert not agent.backlog_files()
    for backend in gateway_pipeline.backends:  # the gateway took every request: the agent never noticed
        assert last_value(backend, 'hostagent_export_requests_total{hostagent_outcome="failure"}') == 0


def test_the_backlog_of_a_killed_agent_is_replayed_after_its_restart(gateway_pipeline, agent):
    gateway_pipeline.gateway.stop()
    held = wait_for_backlog(agent, OUTAGE_CYCLES)
    agent.kill()
    held |= outage_samples(agent)
    killed_with = len(agent.backlog_files())
    agent.start()
    assert f"backlog: {killed_with} requests" in agent.log()
    wait_for_backlog(agent, killed_with + 2)  # the restarted agent queues behind the old requests
    gateway_pipeline.gateway.start()
    wait_for(lambda: not agent.backlog_files(), timeout=PATIENCE, what="the backlog replayed")
    agent.stop()
    for backend in gateway_pipeline.backends:
        stored = set(wait_for(lambda: sample_times(backend, UPTIME) if held <= set(sample_times(backend, UPTIME))
                              else None, timeout=90, what=f"the killed agent's backlog in {backend.name}"))
        assert held <= stored
