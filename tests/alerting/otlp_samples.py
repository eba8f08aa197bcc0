"""Write gauge samples with chosen timestamps through the OTLP/HTTP gateway, the way the agent does,
so a test can give a host a past as well as a present."""
from __future__ import annotations

import urllib.request
from collections.abc import Mapping, Sequence

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

# (unix seconds, value, data point attributes)
Point = tuple[float, float, Mapping[str, str]]


def _attributes(values: Mapping[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in values.items()]


def gauge_request(name: str, unit: str, resource: Mapping[str, str], points: Sequence[Point]) -> bytes:
    metric = Metric(name=name, unit=unit, gauge=Gauge(data_points=[
        NumberDataPoint(time_unix_nano=int(ts * 1e9), as_double=value, attributes=_attributes(attrs))
        for ts, value, attrs in points]))
    request = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=Resource(attributes=_attributes(resource)),
        scope_metrics=[ScopeMetrics(metrics=[metric])])])
    return request.SerializeToString()


def push(otlp_url: str, payload: bytes) -> None:
    request = urllib.request.Request(otlp_url, data=payload, method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 204), response.status
