"""Counting what an OTLP request carries."""

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from collector.sources import SOURCES


def data_points(request: ExportMetricsServiceRequest) -> int:
    return sum(len(getattr(metric, metric.WhichOneof("data")).data_points)
               for resource in request.resource_metrics
               for scope in resource.scope_metrics
               for metric in scope.metrics)


def required_names() -> frozenset[str]:
    """What every Linux host must deliver: the metrics of the default sources that carry no condition
    (no "where available", no opt-in). The agent's self-telemetry is not counted."""
    return frozenset(spec.name for source in SOURCES.values() if source.Options().enabled
                     for spec in source.metrics if spec.condition is None)
