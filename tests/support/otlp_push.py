"""One hand-made OTLP/HTTP request with a chosen timestamp, as a fake host would send it."""
import urllib.request

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1 import resource_pb2

RESOURCE = {
    "service.name": "hostagent", "service.instance.id": "5f0c6f3e-instance", "service.version": "0.1.0",
    "host.name": "web-1", "host.id": "machine-id-1", "host.arch": "amd64",
    "os.type": "linux", "os.description": "Debian GNU/Linux 12",
    "k8s.node.name": "node-a", "k8s.cluster.name": "prod", "k8s.pod.name": "hostagent-xyz",
    "deployment.environment": "staging",
}


def push_gauge_at(endpoint: str, name: str, timestamp: float, value: float) -> None:
    """One gauge point with a chosen timestamp, as OTLP/HTTP protobuf (the SDK always stamps `now`)."""
    point = NumberDataPoint(time_unix_nano=int(timestamp * 1e9), as_double=value)
    request = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=resource_pb2.Resource(attributes=[KeyValue(key=key, value=AnyValue(string_value=text))
                                                   for key, text in RESOURCE.items()]),
        scope_metrics=[ScopeMetrics(metrics=[Metric(name=name, unit="1", gauge=Gauge(data_points=[point]))])])])
    post = urllib.request.Request(endpoint, data=request.SerializeToString(), method="POST",
                                  headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(post, timeout=10):
        pass
