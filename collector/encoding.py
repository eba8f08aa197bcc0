"""The OTLP request for the SDK's MetricsData, written in protobuf's wire format directly.

The exporter library's `encode_metrics` builds a protobuf object for every data point and every attribute, about
1.2 ms for the agent's ~190 points. The agent's metrics are sums and gauges of numbers whose attribute sets repeat
cycle after cycle: here each attribute (key and value) is encoded once and kept, and a point is a few bytes joined.
The request decodes to the message `encode_metrics` builds (tests/collector/test_encoding.py). The resource and
the scope are encoded here too, once: the protobuf classes the library needs cost the agent 3.7 MiB of RSS.
For the same reason the gateway's answer (ExportMetricsServiceResponse) is read here, its two fields by hand.
"""

import struct
from collections.abc import Iterator, Sequence

from opentelemetry.sdk.metrics.export import Gauge, MetricsData, ResourceMetrics, Sum

CACHE_LIMIT = 4096  # attributes kept encoded; attributes that keep changing (pids, say) only refill it
# NumberDataPoint fields: start_time_unix_nano 2 and time_unix_nano 3 (fixed64, tags 0x11, 0x19), as_double 4
# (double, 0x21), as_int 6 (sfixed64, 0x31): the tag and the value in one struct call.
_FIXED64, _DOUBLE, _INT = struct.Struct("<BQ").pack, struct.Struct("<Bd").pack, struct.Struct("<Bq").pack


class RequestEncoder:
    """ExportMetricsServiceRequest bytes for MetricsData of numbers only: sums and gauges without exemplars."""

    def __init__(self):
        self.attributes: dict[tuple, bytes] = {}  # (key, type, value) → encoded KeyValue field
        # id(attributes) → (attributes, start time, their KeyValue fields and the start's): the SDK hands a series
        # the same dict every cycle (its aggregation's own copy, never changed); kept alive here, so that its id
        # stays its own
        self.series: dict[int, tuple[dict, int, bytes]] = {}
        # the last resource and scope, and their encoded messages: the agent sends the same two objects every cycle
        self.headers: tuple | None = None
        self.metric_headers: dict[tuple, bytes] = {}  # (name, description, unit) → their fields

    def encode(self, data: MetricsData) -> bytes:
        return b"".join(_message(1, self._resource_metrics(rm)) for rm in data.resource_metrics)

    def _resource_metrics(self, resource_metrics: ResourceMetrics) -> bytes:
        parts = []
        for scope_metrics in resource_metrics.scope_metrics:
            resource, scope = self._headers(resource_metrics.resource, scope_metrics.scope)
            metrics = b"".join(_message(2, self._metric(metric)) for metric in scope_metrics.metrics)
            parts.append(_message(2, _message(1, scope) + metrics + _string(3, scope_metrics.scope.schema_url)))
        # encode_metrics takes both schema URLs from the resource and the scope
        return _message(1, resource) + b"".join(parts) + _string(3, resource_metrics.resource.schema_url)

    def _headers(self, resource, scope) -> tuple[bytes, bytes]:
        # Kept by identity: a Resource hashes by writing its attributes as JSON (8 µs, twice a cycle in a dict).
        last = self.headers
        if last is None or last[0] is not resource or last[1] is not scope:
            # Resource: attributes 1. InstrumentationScope: name 1, version 2, attributes 3.
            encoded_scope = (_string(1, scope.name) + _string(2, scope.version)
                             + _key_values(3, scope.attributes)) if scope else b""
            last = self.headers = (resource, scope, (_key_values(1, resource.attributes), encoded_scope))
        return last[2]

    def _metric(self, metric) -> bytes:
        data = metric.data
        if isinstance(data, Sum):
            body = _message(7, self._points(data.data_points, data_start=True)
                            + _varint_field(2, data.aggregation_temporality) + _varint_field(3, int(data.is_monotonic)))
        elif isinstance(data, Gauge):
            body = _message(5, self._points(data.data_points, data_start=False))
        else:
            raise TypeError(f"{metric.name}: {type(data).__name__} is not encoded here (sums and gauges only)")
        header_key = (metric.name, metric.description, metric.unit)
        header = self.metric_headers.get(header_key)
        if header is None:
            if len(self.metric_headers) >= CACHE_LIMIT:
                self.metric_headers.clear()
            header = self.metric_headers[header_key] = (_string(1, metric.name) + _string(2, metric.description)
                                                        + _string(3, metric.unit))
        return header + body

    def _points(self, points, data_start: bool) -> bytes:
        """NumberDataPoints, each as field 1 of its Sum or Gauge: the series' cached start, then time and value."""
        encoded = []
        for point in points:
            if point.exemplars:
                raise ValueError("exemplars are not encoded here (observable instruments have none)")
            value = point.value
            # as encode_metrics: a gauge's points carry no start time
            start = point.start_time_unix_nano if data_start else 0
            payload = (self._series(point.attributes, start) + _FIXED64(0x19, point.time_unix_nano)
                       + (_INT(0x31, value) if isinstance(value, int) else _DOUBLE(0x21, value)))
            encoded.append(_message(1, payload))
        return b"".join(encoded)

    def _series(self, attributes, start: int) -> bytes:
        """A point's attributes and start time, which a series keeps from cycle to cycle."""
        cached = self.series.get(id(attributes))
        if cached is not None and cached[0] is attributes and cached[1] == start:
            return cached[2]
        if len(self.series) >= CACHE_LIMIT:
            self.series.clear()
        encoded = b"".join([self._attribute(key, item) for key, item in (attributes or {}).items()])
        encoded += _FIXED64(0x11, start) if start else b""
        self.series[id(attributes)] = (attributes, start, encoded)
        return encoded

    def _attribute(self, key: str, value) -> bytes:
        """A KeyValue, as field 7 of a data point."""
        cache_key = (key, type(value), value)  # 1, 1.0 and True are equal keys otherwise
        encoded = self.attributes.get(cache_key)
        if encoded is None:
            if len(self.attributes) >= CACHE_LIMIT:
                self.attributes.clear()
            encoded = self.attributes[cache_key] = _key_value(7, key, value)
        return encoded


def _key_values(number: int, attributes) -> bytes:
    return b"".join(_key_value(number, key, value) for key, value in (attributes or {}).items())


def _key_value(number: int, key: str, value) -> bytes:
    return _message(number, _string(1, key) + _message(2, _any_value(key, value)))


def _any_value(key: str, value) -> bytes:
    """AnyValue: string 1, bool 2, int 3, double 4, array 5, bytes 7; a oneof member is written even when 0."""
    if value is None:
        return b""
    if isinstance(value, str):
        return _message(1, value.encode())
    if isinstance(value, bool):
        return _varint(2 << 3) + _varint(int(value))
    if isinstance(value, int):
        return _varint(3 << 3) + _varint(value)
    if isinstance(value, float):
        return _DOUBLE(0x21, value)
    if isinstance(value, bytes):
        return _message(7, value)
    if isinstance(value, Sequence):  # ArrayValue: values 1
        return _message(5, b"".join(_message(1, _any_value(key, item)) for item in value))
    raise TypeError(f"attribute {key}: {type(value).__name__} values are not encoded here")


def _string(number: int, text: str) -> bytes:
    return _message(number, text.encode()) if text else b""


def _message(number: int, payload: bytes) -> bytes:
    size = len(payload)
    return _LENGTH_DELIMITED[number] + (_ONE_BYTE[size] if size < 0x80 else _varint(size)) + payload


def _varint_field(number: int, value: int) -> bytes:
    """A varint field, left out when 0 (proto3)."""
    return _varint(number << 3) + _varint(value) if value else b""


_ONE_BYTE = [bytes((n,)) for n in range(0x80)]  # most tags and lengths


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    value &= 0xFFFF_FFFF_FFFF_FFFF  # negative int64: two's complement, ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_LENGTH_DELIMITED = [_varint(number << 3 | 2) for number in range(16)]  # the tags of fields 1-15 (every one here)


WIRE_VARINT, WIRE_FIXED64, WIRE_LENGTH_DELIMITED, WIRE_FIXED32 = 0, 1, 2, 5
RETRY_INFO = b"type.googleapis.com/google.rpc.RetryInfo"


def read_partial_success(body: bytes) -> tuple[int, str]:
    """The rejected data points and the error message of an ExportMetricsServiceResponse's partial_success (field
    1: rejected_data_points 1, error_message 2); (0, "") without one. ValueError if `body` is not such a message."""
    partial_success = _last_values(_last_values(body).get((1, WIRE_LENGTH_DELIMITED), b""))
    return (_int64(partial_success.get((1, WIRE_VARINT), 0)),
            partial_success.get((2, WIRE_LENGTH_DELIMITED), b"").decode(errors="replace"))


def read_retry_delay(status: bytes) -> float:
    """Seconds of the RetryInfo among a google.rpc.Status's details (3: Any {type_url 1, value 2}; RetryInfo:
    retry_delay 1, a Duration {seconds 1, nanos 2}); 0 without one. ValueError if `status` is not such a message."""
    for number, wire_type, detail in _fields(status):
        any_detail = _last_values(detail) if (number, wire_type) == (3, WIRE_LENGTH_DELIMITED) else {}
        if any_detail.get((1, WIRE_LENGTH_DELIMITED)) == RETRY_INFO:
            retry_info = _last_values(any_detail.get((2, WIRE_LENGTH_DELIMITED), b""))
            duration = _last_values(retry_info.get((1, WIRE_LENGTH_DELIMITED), b""))
            return max(_int64(duration.get((1, WIRE_VARINT), 0)) + _int64(duration.get((2, WIRE_VARINT), 0)) / 1e9, 0)
    return 0.0


def _last_values(message: bytes) -> dict[tuple[int, int], int | bytes]:
    """(field number, wire type) → the field's last value (as protobuf reads a field that is not repeated)."""
    return {(number, wire_type): value for number, wire_type, value in _fields(message)}


def _fields(message: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of `message`, whatever its number; groups are refused."""
    position = 0
    while position < len(message):
        tag, position = _read_varint(message, position)
        wire_type = tag & 7
        if wire_type == WIRE_VARINT:
            value, position = _read_varint(message, position)
        elif wire_type in (WIRE_FIXED64, WIRE_FIXED32):
            end = position + (8 if wire_type == WIRE_FIXED64 else 4)
            value, position = message[position:end], end
        elif wire_type == WIRE_LENGTH_DELIMITED:
            size, position = _read_varint(message, position)
            value, position = message[position:position + size], position + size
        else:
            raise ValueError(f"wire type {wire_type} (a group or no protobuf at all)")
        if position > len(message):
            raise ValueError("the message ends inside a field")
        yield tag >> 3, wire_type, value


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("the message ends inside a varint")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if byte < 0x80:
            return value, position


def _int64(value: int) -> int:
    """A varint read as int64 (or int32): negative numbers are written as their 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value
