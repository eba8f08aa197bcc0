"""Write samples with chosen timestamps through the OTLP/HTTP gateway, the way the agent does, so a
test can give a host a past as well as a present. `FakeHost` plays a host whose CPU is as busy as
the test says."""
from __future__ import annotations

import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

# (unix seconds, value, data point attributes)
Point = tuple[float, float, Mapping[str, str]]


def _attributes(values: Mapping[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in values.items()]


def counter_request(name: str, unit: str, resource: Mapping[str, str], start: float,
                    points: Sequence[Point]) -> bytes:
    """An OTLP export of one cumulative monotonic sum."""
    metric = Metric(name=name, unit=unit, sum=Sum(
        aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE, is_monotonic=True,
        data_points=[NumberDataPoint(start_time_unix_nano=int(start * 1e9), time_unix_nano=int(ts * 1e9),
                                     as_double=value, attributes=_attributes(attrs))
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


@dataclass
class FakeHost:
    """system.cpu.time of a host with `cpus` CPUs, `busy` of their time not idle."""

    name: str
    busy: float
    cpus: int = 4
    started: float = field(default_factory=time.time)
    _last: float = 0.0
    _idle: float = 0.0
    _user: float = 0.0

    @property
    def resource(self) -> dict[str, str]:
        return {"service.name": "hostagent", "service.instance.id": f"{self.name}-id", "host.name": self.name}

    def advance(self, to: float) -> list[Point]:
        elapsed = self.cpus * (to - (self._last or to))
        self._idle += elapsed * (1 - self.busy)
        self._user += elapsed * self.busy
        self._last = to
        return [(to, self._idle, {"cpu.mode": "idle"}), (to, self._user, {"cpu.mode": "user"})]

    def history(self, seconds: float, step: float) -> bytes:
        """The last `seconds` at the current `busy`, one sample per `step`: start here."""
        self.started = time.time() - seconds
        points = [p for i in range(int(seconds / step) + 1) for p in self.advance(self.started + i * step)]
        return counter_request("system.cpu.time", "s", self.resource, self.started, points)

    def now(self) -> bytes:
        return counter_request("system.cpu.time", "s", self.resource, self.started, self.advance(time.time()))
