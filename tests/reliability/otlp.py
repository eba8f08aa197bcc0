"""Reading what the agent sent: OTLP export requests (from a receiver or the backlog's files) as data points."""
from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

DECODERS = {"gzip": gzip.decompress, "deflate": zlib.decompress, None: lambda body: body}


def decode(body: bytes, encoding: str | None = None) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest.FromString(DECODERS[encoding](body))


def read_backlog_file(path: Path) -> ExportMetricsServiceRequest:
    return decode(path.read_bytes())  # the backlog keeps requests uncompressed


def points(requests: Iterable[ExportMetricsServiceRequest], name: str) -> list[tuple[int, dict, float]]:
    """(time in ns, attributes, value) of every data point of metric `name`."""
    found = []
    for request in requests:
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        data = getattr(metric, metric.WhichOneof("data"))
                        for point in data.data_points:
                            attributes = {a.key: a.value.string_value for a in point.attributes}
                            value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
                            found.append((point.time_unix_nano, attributes, value))
    return found


def latest(requests: Iterable[ExportMetricsServiceRequest], name: str, **attributes: str) -> float | None:
    """The most recent value of metric `name` among the points whose attributes include `attributes`."""
    matching = [(time, value) for time, labels, value in points(requests, name)
                if all(labels.get(key.replace("_", ".")) == wanted for key, wanted in attributes.items())]
    return max(matching)[1] if matching else None


def times_ms(requests: Iterable[ExportMetricsServiceRequest], name: str) -> set[int]:
    """Millisecond timestamps (as the backends store them) of metric `name`."""
    return {time // 1_000_000 for time, _, _ in points(requests, name)}
