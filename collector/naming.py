"""OTLP → Prometheus names, as Prometheus' translator and VictoriaMetrics' -opentelemetry.usePrometheusNaming
apply them: dots become underscores, the unit adds a suffix, monotonic counters end in _total (a "total"
inside a counter's name moves there), and gauges with unit 1 end in _ratio (UpDownCounters with unit 1 do
not)."""

from collector.spec import Instrument, MetricSpec

UNIT_SUFFIXES = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "Hz": "hertz", "Cel": "celsius",
                 "By/s": "bytes_per_second"}
# Resource attributes the gateways turn into the labels every series carries (docs/gateway.md).
RESOURCE_LABELS = ("job", "instance", "host_name", "host_id", "os_type")
OPTIONAL_RESOURCE_LABELS = ("k8s_node_name", "k8s_cluster_name")


def prometheus_name(spec: MetricSpec) -> str:
    name = spec.name.replace(".", "_")
    if spec.instrument is Instrument.COUNTER:  # a counter's "total" moves to the end, after the unit
        name = "_".join(token for token in name.split("_") if token != "total")
    suffix = UNIT_SUFFIXES.get(spec.unit)
    if spec.unit == "1" and spec.instrument is Instrument.GAUGE:
        suffix = "ratio"
    if suffix and not name.endswith(f"_{suffix}"):
        name += f"_{suffix}"
    if spec.instrument is Instrument.COUNTER:
        name += "_total"
    return name


def prometheus_label(attribute: str) -> str:
    return attribute.replace(".", "_")
