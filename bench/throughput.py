"""K simulated hosts through the default gateway (the project's collector) into Prometheus and VictoriaMetrics,
counted at both ends.

Every simulated host is the agent's own code path with an identity of its own: an SDK MeterProvider with a
distinct Resource (host.name, host.id, service.instance.id), the agent's observable instruments, the agent's
Sender (backlog included) and HTTP transport, delivering synchronously in the benchmark's cycle. To spend the
CPU on the pipeline rather than on reading /proc K times, all hosts observe one shared Collection, refreshed
once per cycle.

A step holds when the work of every steady cycle (after one warm-up cycle) fits in the export interval and
both backends hold exactly as many samples for that step as the exporters were handed data points.
"""

import math
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from opentelemetry.sdk.resources import Resource

from bench.counting import SETTLE_SECONDS, count_series, settled_count
from bench.procfs import cpu_seconds
from collector.agent import CollectingReader, build_backlog, build_collection, build_provider, build_sender
from collector.collection import Collection
from collector.config import Config, load
from collector.faults import Faults
from collector.host import Host
from collector.resource import build_resource
from collector.telemetry import AgentTelemetry
from pipeline.stack import Pipeline

WARMUP_CYCLES = 1  # not judged for keeping up (first connections, first aggregations), but counted for loss
EXPORT_WORKERS = 4  # hosts exporting at the same moment; the rest wait their turn within the cycle


class SimulatedHost:
    def __init__(self, config: Config, collection: Collection, resource: Resource):
        self.telemetry = AgentTelemetry()
        faults = Faults(self.telemetry, limit=1, on_fatal=lambda: None)
        sender = build_sender(config, build_backlog(config), self.telemetry, faults)
        # The reader's clock is not started, and the sender's thread neither: the benchmark's loop decides
        # when each host collects, and each request is delivered within its cycle.
        self.reader = CollectingReader(collection, config.exporter.interval,
                                       lambda body, points: sender.deliver(body, points, time.time()), faults)
        self.provider = build_provider(resource, self.reader, collection, shutdown_on_exit=False)

    def export(self) -> None:
        self.reader.collect()

    @property
    def handed_points(self) -> int:
        return sum(self.telemetry.exported_points.values())

    @property
    def failed_requests(self) -> int:
        return self.telemetry.export_requests["failure"]


@dataclass
class Step:
    hosts: int
    interval: float
    busy: list[float] = field(default_factory=list)  # seconds of work in each steady cycle
    elapsed: float = 0.0  # seconds from the first steady cycle to the end of the last
    cpu: dict[str, float] = field(default_factory=dict)  # process → CPU seconds it used in the steady cycles
    points: int = 0  # data points handed to the exporters, warm-up cycle included
    failed_requests: int = 0
    samples: dict[str, int] = field(default_factory=dict)  # backend → samples counted for this step
    series: dict[str, int] = field(default_factory=dict)  # backend → series counted for this step

    @property
    def points_per_second(self) -> float:
        return self.points / ((len(self.busy) + WARMUP_CYCLES) * self.interval)

    @property
    def cores(self) -> dict[str, float]:
        return {name: seconds / self.elapsed for name, seconds in self.cpu.items()}

    @property
    def cpu_per_export(self) -> float:
        """CPU seconds the simulator spent per host and cycle: collecting, encoding, compressing, sending."""
        return self.cpu["simulator"] / (len(self.busy) * self.hosts)

    @property
    def kept_up(self) -> bool:
        return all(busy <= self.interval for busy in self.busy)

    @property
    def lossless(self) -> bool:
        return self.failed_requests == 0 and all(count == self.points for count in self.samples.values())

    @property
    def held(self) -> bool:
        return bool(self.busy) and self.kept_up and self.lossless


def identities(job: str, count: int) -> list[Resource]:
    base = build_resource(Host("/"), environ={})
    resources = []
    for index in range(count):
        name = f"{job}-host-{index:04d}"
        resources.append(base.merge(Resource({
            "service.name": job, "host.name": name,
            "host.id": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
            "service.instance.id": str(uuid.uuid5(uuid.NAMESPACE_URL, name))})))
    return resources


def run_step(pipeline: Pipeline, hosts: int, interval: float, cycles: int) -> Step:
    job = f"bench-k{hosts}"
    config = load(None, environ={"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": pipeline.gateway.otlp_url,
                                 "OTEL_METRIC_EXPORT_INTERVAL": str(int(interval * 1000))})
    collection = build_collection(config, Host(config.host_root), AgentTelemetry())
    simulated = [SimulatedHost(config, collection, resource) for resource in identities(job, hosts)]
    step, started = Step(hosts, interval), time.time()
    drive(step, collection, simulated, cycles, pids(pipeline))
    for host in simulated:
        host.provider.shutdown()
    step.points = sum(host.handed_points for host in simulated)
    step.failed_requests = sum(host.failed_requests for host in simulated)
    window = math.ceil(time.time() - started) + SETTLE_SECONDS
    for backend in pipeline.backends:
        step.samples[backend.name] = settled_count(backend, job, window, step.points)
        step.series[backend.name] = count_series(backend, job, window)
    return step


def drive(step: Step, collection: Collection, simulated: list[SimulatedHost], cycles: int,
          processes: dict[str, int]) -> None:
    """One warm-up cycle (first connections, first aggregations), then `cycles` steady ones, unless one
    of them overruns the interval: the step has failed then, and more cycles would only take longer."""
    with ThreadPoolExecutor(EXPORT_WORKERS) as pool:
        for _ in range(WARMUP_CYCLES):
            time.sleep(max(0.0, step.interval - export_all(collection, simulated, pool)))
        steady_since, cpu_before = time.monotonic(), {name: cpu_seconds(pid) for name, pid in processes.items()}
        while len(step.busy) < cycles and step.kept_up:
            step.busy.append(export_all(collection, simulated, pool))
            if len(step.busy) < cycles and step.kept_up:
                time.sleep(max(0.0, step.interval - step.busy[-1]))
        # Inside the pool's lifetime: the CPU time of its threads is gone once they exit.
        step.elapsed = time.monotonic() - steady_since
        step.cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in processes.items()}


def export_all(collection: Collection, simulated: list[SimulatedHost], pool: ThreadPoolExecutor) -> float:
    """One cycle: a collection, then every host exports; returns the seconds it took."""
    started = time.monotonic()
    collection.refresh()
    list(pool.map(SimulatedHost.export, simulated))
    return time.monotonic() - started


def pids(pipeline: Pipeline) -> dict[str, int]:
    servers = (pipeline.gateway, *pipeline.backends)
    return {"simulator": os.getpid(), **{server.name: server.process.pid for server in servers}}


def find_capacity(pipeline: Pipeline, steps: list[int], interval: float, cycles: int, on_step=print) -> list[Step]:
    """Run the steps in order; stop after the first that does not hold."""
    done = []
    for hosts in steps:
        done.append(run_step(pipeline, hosts, interval, cycles))
        on_step(done[-1])
        if not done[-1].held:
            break
    return done
