"""Done-when of the agent: with only OTEL_EXPORTER_OTLP_METRICS_ENDPOINT set, `collector run` delivers every
default metric, with cpu_mode and host_name labels, into a real VictoriaMetrics."""

import os
import socket
import subprocess
import sys

from collector.naming import prometheus_name
from collector.sources import declared_metrics
from pipeline.testing import wait_for

DEFAULTS = [spec for source, spec in declared_metrics() if source != "top_processes" and not spec.condition]


def test_collector_run_delivers_every_default_metric_into_victoriametrics(victoriametrics, tmp_path):
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("OTEL_", "HOSTAGENT_"))}
    environment["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] = victoriametrics.otlp_url
    # Only the health port moves: the default one may be taken by another agent on this machine.
    environment["HOSTAGENT_HEALTH__ENABLED"] = "false"
    environment["OTEL_METRIC_EXPORT_INTERVAL"] = "1000"
    agent = subprocess.Popen([sys.executable, "-m", "collector", "run"], env=environment,
                             stdout=open(tmp_path / "agent.log", "w"), stderr=subprocess.STDOUT)
    try:
        names = {prometheus_name(spec) for spec in DEFAULTS}

        def arrived():
            present = {s["__name__"] for s in victoriametrics.series('{__name__=~"system_.+|hostagent_.+"}')}
            return names <= present
        wait_for(arrived, timeout=60, what="every default metric in VictoriaMetrics")
        cpu = victoriametrics.series("system_cpu_time_seconds_total")
        assert {s["cpu_mode"] for s in cpu} >= {"user", "system", "idle", "iowait"}
        assert {s["host_name"] for s in cpu} == {socket.gethostname()}
    finally:
        agent.terminate()
        agent.wait(timeout=15)
