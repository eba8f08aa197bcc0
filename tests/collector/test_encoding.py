"""The agent's request encoder against the exporter library's `encode_metrics`: the same message, decoded; and the
gateway's answer, read by hand, against what the library writes."""

import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import Exemplar, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from collector.agent import build_collection, build_provider
from collector.config import Config
from collector.encoding import RequestEncoder, read_partial_success, read_retry_delay
from collector.host import Host
from collector.instruments import register
from collector.resource import build_resource
from collector.telemetry import AgentTelemetry


def decoded(data: MetricsData) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest.FromString(RequestEncoder().encode(data))


def sdk_data(collection, resource: Resource) -> MetricsData:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
    register(provider.get_meter("hostagent", "1.2.3"), collection.specs(), collection)
    collection.refresh()
    return reader.get_metrics_data()


def test_every_sources_request_on_the_fixture_tree_is_the_libraries(collect_everything):
    fixture, _ = collect_everything
    data = sdk_data(fixture, Resource({"host.name": "fixture", "host.ip": ("10.0.0.1", "fe80::1")}, "https://s"))
    assert len(encode_metrics(data).resource_metrics[0].scope_metrics[0].metrics) > 80
    assert decoded(data) == encode_metrics(data)


def test_this_hosts_requests_are_the_libraries_cycle_after_cycle():
    collection = build_collection(Config(), Host("/"), AgentTelemetry())
    encoder = RequestEncoder()
    resource = build_resource(Host("/"), {})
    for _ in range(2):  # the second time from the kept attributes and headers
        data = sdk_data(collection, resource)
        assert ExportMetricsServiceRequest.FromString(encoder.encode(data)) == encode_metrics(data)
    assert encoder.attributes and encoder.headers


def point(value, attributes=None, start=1):
    return NumberDataPoint(attributes, start_time_unix_nano=start, time_unix_nano=2_000_000_000_000_000_000,
                           value=value)


SCOPE = InstrumentationScope("s", "1", "https://scope")


def request_of(*metrics, scope=SCOPE) -> MetricsData:
    resource = Resource({"service.name": "x", "n": 7, "ok": True, "list": (1, 2)}, "https://resource")
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(scope, list(metrics), "")], "")])


def test_attribute_values_of_every_kind_zeros_and_negative_numbers():
    attributes = {"s": "text", "empty": "", "yes": True, "no": False, "zero": 0, "negative": -5, "big": 2**62,
                  "ratio": 0.25, "nothing": 0.0, "ünïcode": "µs", "list": ("a", "b"), "raw": b"\x00\xff"}
    data = request_of(
        Metric("counter", "Counted.", "s", Sum([point(3, attributes), point(-7, {}), point(0.0, None, start=0)],
                                                AggregationTemporality.CUMULATIVE, is_monotonic=True)),
        Metric("updown", "", "", Sum([point(-1.5, {"zero": 0})], AggregationTemporality.DELTA, is_monotonic=False)),
        Metric("gauge", "A gauge.", "1", Gauge([point(0, {"s": "text"}), point(float("inf"), {"ratio": -0.5})])),
    )
    assert decoded(data) == encode_metrics(data)


def test_what_it_does_not_encode_is_refused_by_name():
    histogram = Histogram([HistogramDataPoint({}, 1, 2, 1, 1.0, [1], [], 1.0, 1.0)], AggregationTemporality.CUMULATIVE)
    with pytest.raises(TypeError, match="latency: Histogram is not encoded here"):
        RequestEncoder().encode(request_of(Metric("latency", "", "s", histogram)))
    with pytest.raises(TypeError, match="attribute hosts: frozenset values are not encoded here"):
        RequestEncoder().encode(request_of(Metric("g", "", "", Gauge([point(1, {"hosts": frozenset({"a"})})]))))
    exemplar = Exemplar({}, 1.0, 1, None, None)
    sampled = NumberDataPoint({}, 1, 2, 1, exemplars=[exemplar])
    with pytest.raises(ValueError, match="exemplars are not encoded here"):
        RequestEncoder().encode(request_of(Metric("g", "", "", Gauge([sampled]))))


def test_a_second_request_from_the_kept_bytes_carries_the_new_values_and_times():
    encoder = RequestEncoder()
    scope = InstrumentationScope("hostagent", "1.2.3", attributes={"tier": "agent"})
    running = {"state": "running"}  # the same dict every cycle, as the SDK's; the other series' is new each time
    for value, time, other in ((5, 1, "sleeping"), (9, 2, "stopped")):
        data = request_of(Metric("count", "", "{process}", Sum(  # the running series restarts: a new start time
            [NumberDataPoint(running, time, time * 10**18, value), NumberDataPoint({"state": other}, 1, time, 1)],
            AggregationTemporality.CUMULATIVE, is_monotonic=False)), scope=scope)
        request = ExportMetricsServiceRequest.FromString(encoder.encode(data))
        assert request == encode_metrics(data)
        points = request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points
        assert [(p.as_int, p.attributes[0].value.string_value) for p in points] == [(value, "running"), (1, other)]


def test_requests_of_another_resource_or_scope_carry_theirs():
    encoder = RequestEncoder()
    gauge = Metric("g", "", "", Gauge([point(1, {"s": "text"})]))
    a, b = Resource({"host.name": "a"}), Resource({"host.name": "b"})
    for resource, scope in ((a, SCOPE), (a, SCOPE), (b, SCOPE), (b, InstrumentationScope("other", "2"))):
        data = MetricsData([ResourceMetrics(resource, [ScopeMetrics(scope, [gauge], "")], "")])
        assert ExportMetricsServiceRequest.FromString(encoder.encode(data)) == encode_metrics(data)


def test_a_collection_inside_a_sampled_span_keeps_no_exemplars_and_encodes(collect_everything):
    fixture, _ = collect_everything
    reader = InMemoryMetricReader()
    build_provider(Resource({"host.name": "fixture"}), reader, fixture, shutdown_on_exit=False)
    with TracerProvider().get_tracer("test").start_as_current_span("traced caller"):
        data = reader.get_metrics_data()
    points = [p for m in data.resource_metrics[0].scope_metrics[0].metrics for p in m.data.data_points]
    assert len(points) > 80 and not any(p.exemplars for p in points)
    assert decoded(data) == encode_metrics(data)


def answer(rejected=0, message=""):
    response = ExportMetricsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    return response.SerializeToString()


# a field of every wire type a newer gateway might add: varint 9, fixed64 10, length-delimited 11, fixed32 12
UNKNOWN_FIELDS = b"\x48\x96\x01" + b"\x51" + bytes(8) + b"\x5a\x03new" + b"\x65" + bytes(4)


@pytest.mark.parametrize("body, partial_success", [
    (b"", (0, "")),
    (answer(), (0, "")),
    (answer(7, "7 data points rejected: out of order"), (7, "7 data points rejected: out of order")),
    (answer(2**40, "ünïcode"), (2**40, "ünïcode")),
    (answer(0, "accepted, but mind the cardinality"), (0, "accepted, but mind the cardinality")),
    # unknown fields around the partial success and inside it are skipped
    (UNKNOWN_FIELDS + b"\x0a\x1e" + UNKNOWN_FIELDS + b"\x08\x03\x12\x04full" + UNKNOWN_FIELDS, (3, "full")),
])
def test_the_gateways_partial_success_is_read_as_the_library_reads_it(body, partial_success):
    parsed = ExportMetricsServiceResponse.FromString(body).partial_success
    assert (parsed.rejected_data_points, parsed.error_message) == partial_success
    assert read_partial_success(body) == partial_success


@pytest.mark.parametrize("body", [answer(7, "cut")[:-1], b"\x0a", b"\x08\x96", b"\x0b\x00", b"<html>"])
def test_an_answer_that_is_not_a_response_message_is_refused(body):
    with pytest.raises(ValueError):
        read_partial_success(body)


def status_with(*details) -> bytes:
    status = status_pb2.Status(code=8, message="busy")
    for detail in details:
        status.details.add().Pack(detail)
    return status.SerializeToString()


@pytest.mark.parametrize("status, seconds", [
    (status_with(), 0),
    (status_with(error_details_pb2.DebugInfo(detail="x"), error_details_pb2.RetryInfo(
        retry_delay=Duration(seconds=30, nanos=500_000_000))), 30.5),
    (status_with(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=-30))), 0),
])
def test_the_retry_delay_of_a_grpc_refusal_is_read_from_its_status_details(status, seconds):
    assert read_retry_delay(status) == seconds
