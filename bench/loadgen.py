"""Many agents' requests, prepared ahead and sent concurrently: a load generator that is not the bottleneck.

One real request of the agent (its sources, its SDK wiring, its encoder; every source due, so every metric is
in it) is the template. Each simulated host gets its own identity (host.name, host.id, service.instance.id,
all of fixed width, so every host's request has the template's length) and, every cycle, a new timestamp and
new values on every data point. Timestamps (fixed64) and values (double or sfixed64) have a fixed width on the
wire, so a body is the template with bytes overwritten at known offsets, then gzip-compressed like the agent's
transport does. All bodies of a run are built before it starts; the timed part only sends them.

Sending: `workers` threads, each with one kept-alive `http.client` connection, host i of K due at
i/K of the interval into each cycle (the agents' exports spread over the interval, as they are in a fleet).
"""

import gzip
import http.client
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from bench.latency import every_source_due
from collector import __version__
from collector.host import Host
from collector.instruments import register
from collector.resource import build_resource

TIMESTAMP_SENTINEL = 0x1D_EA_DB_EE_F0_BA_DC_0D  # time_unix_nano of every point in the template
VALUE_SENTINEL = 0x7E_5E_ED_00_00_00_00_00  # + point index: a unique 8-byte pattern per value (a finite double)
HOST_KEYS = ("host.name", "host.id", "service.instance.id")  # what differs between hosts (service.name: the job)
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}


def agent_request() -> ExportMetricsServiceRequest:
    """One request as the agent encodes it (second collection: counters have a start and a value)."""
    _, collection = every_source_due()
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=build_resource(Host("/"), {}), metric_readers=[reader], shutdown_on_exit=False)
    register(provider.get_meter("hostagent", __version__), collection.specs(), collection)
    try:
        for _ in range(2):
            collection.refresh()
            data = reader.get_metrics_data()
        return encode_metrics(data)
    finally:
        provider.shutdown()


def identity(job: str, index: int) -> dict[str, str]:
    name = f"{job}-h{index:06d}"
    return {"service.name": job, "host.name": name, "host.id": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
            "service.instance.id": str(uuid.uuid5(uuid.NAMESPACE_URL, name))}


def points(request: ExportMetricsServiceRequest) -> list:
    found = []
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                assert kind in ("sum", "gauge"), f"{metric.name}: {kind} points are not patched"
                found.extend(getattr(metric, kind).data_points)
    return found


def offsets_of(body: bytes, pattern: bytes) -> list[int]:
    found, start = [], body.find(pattern)
    while start >= 0:
        found.append(start)
        start = body.find(pattern, start + 1)
    return found


@dataclass
class Fleet:
    """K hosts' requests: the template's bytes and where each host's identity, the timestamps and the values
    lie in them."""

    job: str
    hosts: int
    template: bytes = b""
    identity_offsets: dict[str, int] = field(default_factory=dict)  # attribute -> offset of its value
    timestamp_offsets: list[int] = field(default_factory=list)
    values: list[tuple[int, str, float]] = field(default_factory=list)  # (offset, "<d" or "<q", template value)

    @classmethod
    def of(cls, job: str, hosts: int, request: ExportMetricsServiceRequest) -> "Fleet":
        request = ExportMetricsServiceRequest.FromString(request.SerializeToString())
        [resource] = request.resource_metrics
        first = identity(job, 0)
        attributes = {a.key: a for a in resource.resource.attributes}
        for key, value in first.items():
            if key in attributes:
                attributes[key].value.string_value = value
            else:
                resource.resource.attributes.add(key=key).value.string_value = value
        fleet, template_values = cls(job, hosts), []
        for index, point in enumerate(points(request)):
            point.time_unix_nano = TIMESTAMP_SENTINEL
            kind = point.WhichOneof("value")
            template_values.append((kind, getattr(point, kind)))
            sentinel = VALUE_SENTINEL + index
            if kind == "as_int":
                point.as_int = sentinel
            else:
                point.as_double = struct.unpack("<d", struct.pack("<Q", sentinel))[0]
        fleet.template = request.SerializeToString()
        fleet.timestamp_offsets = offsets_of(fleet.template, struct.pack("<Q", TIMESTAMP_SENTINEL))
        assert len(fleet.timestamp_offsets) == len(template_values)
        for index, (kind, value) in enumerate(template_values):
            [offset] = offsets_of(fleet.template, struct.pack("<Q", VALUE_SENTINEL + index))
            fleet.values.append((offset, "<q" if kind == "as_int" else "<d", value))
        for key in HOST_KEYS:
            [fleet.identity_offsets[key]] = offsets_of(fleet.template, first[key].encode())
        return fleet

    @property
    def points_per_request(self) -> int:
        return len(self.values)

    def body(self, host: int, cycle: int, timestamp_ns: int) -> bytes:
        """Host `host`'s request of `cycle`: its identity, the cycle's timestamp, values that advance (counters
        stay monotonic), gzip-compressed as the agent's transport sends it."""
        body = bytearray(self.template)
        for key, value in identity(self.job, host).items():
            if key not in HOST_KEYS:
                continue
            offset = self.identity_offsets[key]
            body[offset:offset + len(value)] = value.encode()
        for offset in self.timestamp_offsets:
            struct.pack_into("<Q", body, offset, timestamp_ns)
        step = cycle * (1 + host % 7)
        for offset, form, value in self.values:
            struct.pack_into(form, body, offset, value + step if form == "<d" else int(value) + step)
        return gzip.compress(bytes(body))

    def bodies(self, cycles: int, start_ns: int, interval: float, first_cycle: int = 0) -> list[list[bytes]]:
        """bodies[cycle][host] of the cycles from `first_cycle` on (values continue from there); the timestamps are
        the cycles' planned starts from `start_ns`."""
        return [[self.body(host, first_cycle + cycle, start_ns + int(cycle * interval * 1e9))
                 for host in range(self.hosts)] for cycle in range(cycles)]


@dataclass
class Sent:
    """What one run of the generator did, cycle by cycle."""

    late: float = 0.0  # seconds the most delayed request was posted after it was due (its connection was busy)
    last_answer: float = 0.0  # time.monotonic() of the last answer
    failures: int = 0  # requests answered other than 2xx, or not answered
    requests: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds per answered request
    first_failure: str = ""


def send(url: str, bodies: list[list[bytes]], interval: float, workers: int, started: float | None = None) -> Sent:
    """Every cycle's bodies, host i of K posted i/K of the interval into its cycle; cycle c starts at
    `started` + c × interval (time.monotonic(); default: now)."""
    parts = urlsplit(url)
    started = time.monotonic() if started is None else started
    hosts = len(bodies[0])
    sent, lock = Sent(), threading.Lock()

    def worker(number: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        answered = time.monotonic()
        latencies, failures, first_failure, late = [], 0, "", 0.0
        for cycle, cycle_bodies in enumerate(bodies):
            for host in range(number, hosts, workers):
                due = started + (cycle + host / hosts) * interval
                time.sleep(max(0.0, due - time.monotonic()))
                posted = time.monotonic()
                late = max(late, posted - due)
                try:
                    connection.request("POST", parts.path, cycle_bodies[host], HEADERS)
                    response = connection.getresponse()
                    response.read()
                    ok = 200 <= response.status < 300
                    problem = f"HTTP {response.status}"
                except (OSError, http.client.HTTPException) as error:
                    connection.close()
                    ok, problem = False, repr(error)
                answered = time.monotonic()
                latencies.append(answered - posted)
                if not ok:
                    failures += 1
                    first_failure = first_failure or problem
        connection.close()
        with lock:
            sent.latencies.extend(latencies)
            sent.failures += failures
            sent.first_failure = sent.first_failure or first_failure
            sent.requests += len(latencies)
            sent.late = max(sent.late, late)
            sent.last_answer = max(sent.last_answer, answered)

    threads = [threading.Thread(target=worker, args=(number,), daemon=True) for number in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent
