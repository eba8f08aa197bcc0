"""Both gateways, end to end with the real agent: the same label scheme, the same series in both backends.

Through the project's collector build and through vmagent.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import ExitStack

import pytest

from collector.host import Host
from collector.naming import OPTIONAL_RESOURCE_LABELS, RESOURCE_LABELS
from collector.resource import read_machine_id
from pipeline.services import Agent, Prometheus, VictoriaMetrics
from pipeline.testing import GATEWAYS, free_port, gateway_server, running, wait_for

IDENTITY = set(RESOURCE_LABELS) | set(OPTIONAL_RESOURCE_LABELS)
# k8s.* identity is kept; the rest of what OTEL_RESOURCE_ATTRIBUTES adds must not become labels.
RESOURCE_ATTRIBUTES = "k8s.node.name=node-a,k8s.cluster.name=test-cluster,deployment.environment=ci,k8s.pod.name=p"
NOT_LABELS = ("service_", "telemetry_sdk_", "otel_scope_", "os_description", "host_arch", "deployment_", "k8s_pod_")


class KubernetesAgent(Agent):
    def environment(self) -> Mapping[str, str]:
        return {**super().environment(), "OTEL_RESOURCE_ATTRIBUTES": RESOURCE_ATTRIBUTES}


@pytest.fixture(scope="module", params=GATEWAYS)
def backends_fed_through(request, tmp_path_factory) -> Iterator[tuple[Prometheus, VictoriaMetrics]]:
    base = tmp_path_factory.mktemp(request.param)
    with ExitStack() as stack:
        prometheus = stack.enter_context(running(Prometheus(free_port(), base / "prometheus")))
        victoriametrics = stack.enter_context(running(VictoriaMetrics(free_port(), base / "victoria-metrics")))
        gateway = stack.enter_context(running(gateway_server(
            request.param, free_port(), base / "gateway", prometheus.write_url, victoriametrics.write_url)))
        stack.enter_context(running(KubernetesAgent(free_port(), base / "agent", gateway.otlp_url, interval="1s")))
        wait_for(lambda: all(b.query('system_cpu_time_seconds_total{cpu_mode="user"}')
                             for b in (prometheus, victoriametrics)),
                 what=f"agent data through {request.param} in both backends")
        yield prometheus, victoriametrics


def cpu_series(backend) -> set[frozenset]:
    return {frozenset(labels.items()) for labels in backend.series('{__name__="system_cpu_time_seconds_total"}')}


def test_identity_labels_are_exactly_the_scheme(backends_fed_through):
    machine_id = read_machine_id(Host())
    for backend in backends_fed_through:
        for labels in backend.series('{__name__=~"system_.+|hostagent_.+"}'):
            assert labels.keys() >= IDENTITY, f"{backend.name}: {labels}"
            assert not [key for key in labels if key.startswith(NOT_LABELS)], f"{backend.name}: {labels}"
            assert (labels["job"], labels["host_name"], labels["host_id"], labels["os_type"]) == \
                ("hostagent", socket.gethostname(), machine_id, "linux")
            assert (labels["k8s_node_name"], labels["k8s_cluster_name"]) == ("node-a", "test-cluster")
        assert not backend.series('{__name__="target_info"}'), f"{backend.name} has target_info"


def test_one_instance_per_agent(backends_fed_through):
    instances = {labels["instance"] for backend in backends_fed_through
                 for labels in backend.series('{job="hostagent"}')}
    assert len(instances) == 1 and "" not in instances


def agent_series(backend) -> set[frozenset]:
    return {frozenset(labels.items()) for labels in backend.series('{job="hostagent"}')}


def test_same_series_in_both_backends(backends_fed_through):
    prometheus, victoriametrics = backends_fed_through
    found = wait_for(lambda: cpu_series(prometheus) == cpu_series(victoriametrics) and cpu_series(prometheus),
                     timeout=30, what="the same system_cpu_time_seconds_total series in both backends")
    assert {dict(labels)["cpu_mode"] for labels in found} >= {"user", "system", "idle"}


def test_every_series_of_the_agent_is_the_same_in_both_backends(backends_fed_through):
    """Every metric name and label set, not one metric's: through the collector Prometheus' series come from the
    remote-write exporter's translation and VictoriaMetrics' from its own OTLP ingestion (docs/gateway.md)."""
    prometheus, victoriametrics = backends_fed_through

    def same() -> set[frozenset]:
        in_prometheus = agent_series(prometheus)
        return in_prometheus if in_prometheus == agent_series(victoriametrics) else set()
    found = wait_for(same, timeout=30, what="the same series of the agent in both backends")
    names = {dict(labels)["__name__"] for labels in found}
    assert {"system_cpu_time_seconds_total", "system_memory_utilization_ratio", "system_uptime_seconds"} <= names
