"""Two collector gateways in front of the same backends: one is killed mid-run, the agents carry on through the
other (`exporter.failover_endpoints`), and once the killed one is back its queue is replayed — every export
cycle in both backends, exactly once. Real processes throughout."""
import time

from pipeline.testing import exporting, free_port, gateway_pipeline_in, otelcol_gateway, running, wait_for
from tests.reliability.agent_process import AgentProcess
from tests.reliability.backends import sample_times
from tests.reliability.test_collector_gateway import telemetry
from tests.reliability.test_outages import PATIENCE, UPTIME, assert_nothing_lost

CYCLES_THROUGH_THE_SECOND = 5


def test_agents_fail_over_to_the_second_gateway_and_nothing_is_lost(tmp_path):
    with gateway_pipeline_in(tmp_path, "otelcol") as pipeline:
        first = pipeline.gateway
        prometheus, victoriametrics = pipeline.backends
        second = otelcol_gateway(free_port(), tmp_path / "second", prometheus.write_url, victoriametrics.write_url)
        with running(second), exporting(AgentProcess(tmp_path / "agent", first.otlp_url, options={
                "exporter": {"failover_endpoints": [second.otlp_url]}}), pipeline) as agent:
            assert telemetry(second, "otelcol_receiver_accepted_metric_points") == 0
            first.kill()
            killed = time.time() * 1000
            wait_for(lambda: len([t for t in sample_times(victoriametrics, UPTIME) if t > killed])
                     >= CYCLES_THROUGH_THE_SECOND, timeout=PATIENCE, what="cycles through the second gateway")
            assert telemetry(second, "otelcol_receiver_accepted_metric_points") > 0
            first.start()  # as its StatefulSet pod would come back, with its volume: its queue is replayed
            recovered = time.time() * 1000
            wait_for(lambda: not agent.backlog_files(), timeout=PATIENCE, what="the agent's backlog delivered")
            agent.stop()
            during = {t for t in sample_times(victoriametrics, UPTIME) if killed < t < recovered}
            assert_nothing_lost(pipeline, during, after=recovered)
