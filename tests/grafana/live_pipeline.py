"""The pipeline the dashboard queries run against: pipeline.testing's fed pipeline, plus what the dashboards
show beyond the agent's defaults (opt-in sources, Kubernetes identity, firing alerts;
and the pipeline's own metrics, as `make run` gets them through either gateway)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml

from pipeline.fake_systemd import private_bus
from pipeline.run import AGENT_SOURCES
from pipeline.services import Agent, Vmalert
from pipeline.testing import Pipeline, agent_data_in_both, free_port, gateway_pipeline_in, running, wait_for

CLUSTER, NODE = "ci-cluster", "ci-node-1"
# Beyond what `make run`'s agent has on: the workload sources.
OPT_IN_SOURCES = {**AGENT_SOURCES,
                  # the agent itself is a running group; the other matches nothing (0 processes)
                  "process_groups": {"enabled": True, "groups": {"agent": {"cmdline": [r"collector run"]},
                                                                 "absent": {"executable": ["^no-such-daemon$"]}}},
                  "cgroup": {"enabled": True}}
# The textfile source's directory: a metric, and a file it cannot parse.
TEXTFILES = {"backup.prom": "# TYPE backup_runs_total counter\nbackup_runs_total 3\n", "broken.prom": "backup_size{\n"}


class KubernetesAgent(Agent):
    """The agent as the DaemonSet runs it: Kubernetes identity in its resource attributes."""

    def environment(self):
        attributes = f"k8s.cluster.name={CLUSTER},k8s.node.name={NODE}"
        return {**super().environment(), "OTEL_RESOURCE_ATTRIBUTES": attributes}


# Per gateway, one of its own metrics the Pipeline health dashboard shows.
GATEWAY_METRIC = {"vmagent": "vmagent_remotewrite_pending_data_bytes", "otelcol": "otelcol_exporter_queue_size"}


def _self_metrics_in_both(pipeline: Pipeline) -> bool:
    return all(backend.query(GATEWAY_METRIC[pipeline.gateway.name]) for backend in pipeline.backends)


# Fires for every textfile of every host as soon as it reports, so the dashboards' alert panels have something to
# show: two alerts of one name on one host, told apart by file_name as HostTextfileStale's are.
TEST_ALERT = "DashboardsLiveTest"
ALERT_RULES = {"groups": [{"name": "dashboards-live-test", "interval": "1s", "rules": [
    {"alert": TEST_ALERT, "labels": {"severity": "warning"},
     "expr": "max by (job, instance, host_name, file_name) (hostagent_textfile_mtime_seconds) > 0"}]}]}


def _alerts_in_both(pipeline: Pipeline) -> bool:
    return all(len(backend.query('ALERTS{alertstate="firing"}')) == len(TEXTFILES)
               and backend.query("ALERTS_FOR_STATE") for backend in pipeline.backends)


@contextmanager
def dashboards_pipeline(base: Path, gateway: str) -> Iterator[Pipeline]:
    """The fed pipeline with everything the dashboards show; yields once all of it is in both backends."""
    textfiles = base / "textfile"
    textfiles.mkdir()
    for name, text in TEXTFILES.items():
        (textfiles / name).write_text(text)
    sources = {**OPT_IN_SOURCES, "textfile": {"enabled": True, "directory": str(textfiles)},
               "systemd": {"enabled": True, "bus_socket": str(base / "run/dbus/system_bus_socket")}}
    # a fake systemd (a failed unit) on a private bus
    with private_bus(base), gateway_pipeline_in(base, gateway) as fed:
        agent = KubernetesAgent(free_port(), base / "agent", fed.gateway.otlp_url, interval="1s", sources=sources)
        rules = base / "alerts.yml"
        rules.write_text(yaml.safe_dump(ALERT_RULES))
        with ExitStack() as stack:
            stack.enter_context(running(agent))
            for backend in fed.backends:
                stack.enter_context(running(Vmalert(free_port(), base / f"vmalert-{backend.name}", backend.url,
                                                    rule_files=[rules], evaluation_interval="1s")))
            fed.agent = agent
            wait_for(lambda: agent_data_in_both(fed), what="the agent's data in Prometheus and VictoriaMetrics")
            wait_for(lambda: _self_metrics_in_both(fed), what="the gateway's own metrics in both backends")
            wait_for(lambda: _alerts_in_both(fed), what="ALERTS in both backends")
            yield fed
