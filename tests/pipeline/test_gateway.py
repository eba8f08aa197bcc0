"""Either gateway (the project's collector, vmagent) puts the same series, with the project's label scheme,
into both backends."""
import time

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from pipeline.services import REPO_ROOT, victoriametrics_otlp_url
from pipeline.testing import wait_for
from tests.support.otlp_push import RESOURCE, push_gauge_at

IDENTITY = {"job": "hostagent", "instance": "5f0c6f3e-instance", "host_name": "web-1", "host_id": "machine-id-1",
            "os_type": "linux", "k8s_node_name": "node-a", "k8s_cluster_name": "prod"}
EXPECTED = {
    ("system_cpu_time_seconds_total", frozenset({"cpu_mode": "user"}.items())),
    ("system_cpu_utilization_ratio", frozenset({"cpu_mode": "idle"}.items())),
    ("system_memory_usage_bytes", frozenset({"system_memory_state": "used"}.items())),
    ("system_cpu_load_average_1m", frozenset()),
    ("system_process_count", frozenset({"process_state": "running"}.items())),
    ("hostagent_export_requests_total", frozenset({"hostagent_outcome": "success"}.items())),
}


def export_once(endpoint: str) -> None:
    exporter = OTLPMetricExporter(endpoint=endpoint)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(resource=Resource.create(RESOURCE), metric_readers=[reader])
    meter = provider.get_meter("hostagent", "0.1.0")
    meter.create_counter("system.cpu.time", unit="s").add(3.5, {"cpu.mode": "user"})
    meter.create_counter("hostagent.export.requests", unit="{request}").add(1, {"hostagent.outcome": "success"})
    meter.create_observable_gauge("system.cpu.utilization", [lambda _: [Observation(0.5, {"cpu.mode": "idle"})]],
                                  unit="1")
    meter.create_observable_up_down_counter(
        "system.memory.usage", [lambda _: [Observation(2048, {"system.memory.state": "used"})]], unit="By")
    meter.create_observable_gauge("system.cpu.load_average.1m", [lambda _: [Observation(0.25)]], unit="{thread}")
    meter.create_observable_up_down_counter(
        "system.process.count", [lambda _: [Observation(7, {"process.state": "running"})]], unit="{process}")
    provider.shutdown()


def series_of(backend) -> set[tuple[str, frozenset]]:
    found = set()
    for labels in backend.series('{job="hostagent"}'):
        name = labels.pop("__name__")
        identity = {key: labels.pop(key, None) for key in IDENTITY}
        assert identity == IDENTITY, f"{backend.name}: {name} has identity labels {identity}"
        found.add((name, frozenset(labels.items())))
    return found


def test_same_series_and_label_scheme_in_both_backends(gateway_pipeline):
    export_once(gateway_pipeline.gateway.otlp_url)
    prometheus, victoriametrics = gateway_pipeline.backends
    wait_for(lambda: len(series_of(prometheus)) == len(EXPECTED) == len(series_of(victoriametrics)),
             timeout=30, what="every exported series in both backends")
    assert series_of(prometheus) == EXPECTED
    assert series_of(victoriametrics) == EXPECTED


@pytest.mark.parametrize("expr, value", [
    ("system_cpu_time_seconds_total", 3.5),
    ("system_memory_usage_bytes", 2048),
    ("system_cpu_utilization_ratio", 0.5),
])
def test_values_identical_in_both_backends(gateway_pipeline, expr, value):
    export_once(gateway_pipeline.gateway.otlp_url)
    for backend in gateway_pipeline.backends:
        result = wait_for(lambda: backend.query(expr), timeout=30, what=f"{expr} in {backend.name}")
        assert [float(sample["value"][1]) for sample in result] == [value]


def export_while_prometheus_is_down(pipeline) -> None:
    pipeline.prometheus.stop()
    export_once(pipeline.gateway.otlp_url)
    wait_for(lambda: pipeline.victoriametrics.query("system_memory_usage_bytes"), timeout=30,
             what="data in VictoriaMetrics while Prometheus is down")


def test_queued_data_survives_a_backend_outage(gateway_pipeline):
    export_while_prometheus_is_down(gateway_pipeline)
    gateway_pipeline.prometheus.start()
    assert wait_for(lambda: gateway_pipeline.prometheus.query("system_memory_usage_bytes"), timeout=60,
                    what="the queued data in Prometheus after its restart")


def test_queued_data_survives_a_gateway_restart(gateway_pipeline):
    export_while_prometheus_is_down(gateway_pipeline)
    gateway_pipeline.gateway.stop()
    gateway_pipeline.gateway.start()
    gateway_pipeline.prometheus.start()
    assert wait_for(lambda: gateway_pipeline.prometheus.query("system_memory_usage_bytes"), timeout=60,
                    what="data queued on disk before the gateway's restart, in Prometheus")


def test_late_samples_are_kept_in_both_backends(gateway_pipeline):
    now = time.time()
    push_gauge_at(gateway_pipeline.gateway.otlp_url, "system.cpu.utilization", now, 0.5)
    for backend in gateway_pipeline.backends:
        wait_for(lambda: backend.query("system_cpu_utilization_ratio"), timeout=30,
                 what=f"the first sample in {backend.name}")
    # Older than what Prometheus already holds for this series: only its out-of-order window keeps it.
    push_gauge_at(gateway_pipeline.gateway.otlp_url, "system.cpu.utilization", now - 600, 0.25)
    count = "count_over_time(system_cpu_utilization_ratio[20m])"
    for backend in gateway_pipeline.backends:
        wait_for(lambda: [float(sample["value"][1]) for sample in backend.query(count)] == [2.0], timeout=30,
                 what=f"the late sample in {backend.name}")


def test_victoriametrics_otlp_url_is_beside_its_remote_write_url():
    """The collector gateway sends OTLP where vmagent remote-writes: single node and vminsert, as deploy/ sets both."""
    assert victoriametrics_otlp_url("http://127.0.0.1:8428/api/v1/write") == \
        "http://127.0.0.1:8428/opentelemetry/v1/metrics"
    assert victoriametrics_otlp_url("http://vminsert:8480/insert/0/prometheus/api/v1/write") == \
        "http://vminsert:8480/insert/0/opentelemetry/v1/metrics"
    settings = REPO_ROOT / "deploy" / "kubernetes" / "base" / "settings.env"
    values = dict(line.split("=", 1) for line in settings.read_text().splitlines())
    assert victoriametrics_otlp_url(values["VICTORIAMETRICS_WRITE_URL"]) == values["VICTORIAMETRICS_OTLP_URL"]
    with pytest.raises(ValueError, match="not a VictoriaMetrics remote-write URL"):
        victoriametrics_otlp_url("http://127.0.0.1:8428/opentelemetry/v1/metrics")
