"""How many agents one gateway carries into Prometheus and VictoriaMetrics without losing a sample.

Each step is a fresh pipeline (the gateway, Prometheus, VictoriaMetrics as `make run` starts them) and K hosts
from the load generator (bench/loadgen.py): one warm-up cycle, in which the backends create every series; once it
is queryable in both, the steady cycles, every host sending once per interval. A step holds when no request
failed, the warm-up was queryable in both backends within SETTLE_SECONDS, no steady request was posted more than
a second after it was due (the generator's connections were never held up that long by slow answers), the last
cycle was queryable in both backends within one interval after its last answer (the gateway's queues did not
carry a backlog), and both backends hold exactly one sample per data point sent.
"""

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.counting import SETTLE_SECONDS, count_series, scalar, settled_count
from bench.latency import percentile
from bench.loadgen import Fleet, Sent, agent_request, points, send
from bench.procfs import cpu_seconds, machine_cpu_seconds, memory_bytes
from pipeline.services import PromApi
from pipeline.testing import Pipeline, gateway_pipeline_in, wait_for

MAX_LATE = 1.0  # seconds a request may be posted after it was due
WARMUP_CYCLES = 1  # judged for loss, not for pace: the backends create every series in it (a fleet does so once)
PROBE = "system_uptime_seconds"  # one series per host: its newest timestamp says a host's last request arrived
GENERATOR = "generator"
TARGET_POINTS_PER_SECOND = 50_000  # per gateway, end to end, zero loss (issue #17)


@dataclass
class Step:
    gateway: str
    hosts: int
    interval: float
    cycles: int  # steady cycles
    points_per_request: int = 0
    warmup: Sent = field(default_factory=Sent)
    series_created_after: float = float("inf")  # seconds from the warm-up's last answer until queryable in both
    sent: Sent = field(default_factory=Sent)  # the steady cycles
    steady_since: float = 0.0  # time.monotonic() the steady cycles began
    drain: float = float("inf")  # seconds from the last answer until the last cycle was queryable in both
    cpu: dict[str, float] = field(default_factory=dict)  # process -> cores used over the steady cycles
    machine: float = 0.0  # cores the whole machine used meanwhile (other users included)
    rss: dict[str, int] = field(default_factory=dict)  # process -> bytes at the end of the steady cycles
    samples: dict[str, int] = field(default_factory=dict)  # backend -> samples counted for this step
    series: dict[str, int] = field(default_factory=dict)

    @property
    def points(self) -> int:
        return self.hosts * self.points_per_request * (WARMUP_CYCLES + self.cycles)

    @property
    def points_per_second(self) -> float:
        return self.hosts * self.points_per_request / self.interval

    @property
    def kept_pace(self) -> bool:
        return self.sent.late <= MAX_LATE

    @property
    def drained(self) -> bool:
        return self.drain <= self.interval

    @property
    def series_created(self) -> bool:
        return self.series_created_after <= SETTLE_SECONDS

    @property
    def failures(self) -> int:
        return self.warmup.failures + self.sent.failures

    @property
    def lossless(self) -> bool:
        return self.failures == 0 and all(count == self.points for count in self.samples.values())

    @property
    def held(self) -> bool:
        return self.series_created and self.kept_pace and self.drained and self.lossless

    @property
    def points_per_gateway_core(self) -> float:
        return self.points_per_second / self.cpu[self.gateway]

    @property
    def latency_p99(self) -> float:
        return percentile(self.sent.latencies, 0.99)

    @property
    def verdict(self) -> str:
        if self.held:
            return "holds"
        return ", ".join(problem for problem, bad in (
            ("requests failed", self.failures > 0),
            (f"warm-up not in both backends within {SETTLE_SECONDS} s", not self.series_created),
            ("requests held up by slow answers", not self.kept_pace),
            ("backlog left in the gateway", not self.drained),
            ("**LOSS**", any(count != self.points for count in self.samples.values()))) if bad)


def target_hosts(interval: float, points_per_request: int | None = None) -> int:
    """Hosts whose requests make TARGET_POINTS_PER_SECOND at `interval`; by default requests as the agent encodes them
    on this host (their size follows its interfaces and filesystems)."""
    per_request = points_per_request or len(points(agent_request()))
    return math.ceil(TARGET_POINTS_PER_SECOND * interval / per_request)


def steady_bodies(fleet: Fleet, cycles: int, first_timestamp: float, interval: float) -> list[list[bytes]]:
    """The steady cycles' bodies from `first_timestamp` on, their values continuing from the warm-up's."""
    return fleet.bodies(cycles, int(first_timestamp * 1e9), interval, first_cycle=WARMUP_CYCLES)


def run_step(base: Path, gateway: str, hosts: int, interval: float, cycles: int, workers: int) -> Step:
    step, job = Step(gateway, hosts, interval, cycles), f"bench-gw-k{hosts}"
    fleet = Fleet.of(job, hosts, agent_request())
    step.points_per_request = fleet.points_per_request
    first_timestamp = time.time()
    warmup = fleet.bodies(WARMUP_CYCLES, int(first_timestamp * 1e9), interval)
    with gateway_pipeline_in(base / f"{gateway}-{hosts}", gateway) as pipeline:
        processes = {GENERATOR: os.getpid(), pipeline.gateway.name: pipeline.gateway.process.pid,
                     **{backend.name: backend.process.pid for backend in pipeline.backends}}
        step.warmup = send(pipeline.gateway.otlp_url, warmup, interval, workers)
        warmup_last = first_timestamp + (WARMUP_CYCLES - 1) * interval
        step.series_created_after = drained_after(pipeline, job, hosts, warmup_last, step.warmup.last_answer)
        steady_timestamp = time.time()
        bodies = steady_bodies(fleet, cycles, steady_timestamp, interval)
        last_timestamp = steady_timestamp + (cycles - 1) * interval
        started = time.monotonic() + 0.5
        with ThreadPoolExecutor(1) as pool:
            sending = pool.submit(send, pipeline.gateway.otlp_url, bodies, interval, workers, started)
            time.sleep(max(0.0, started - time.monotonic()))
            step.steady_since, machine_before = time.monotonic(), machine_cpu_seconds()
            before = {name: cpu(pid) for name, pid in processes.items()}
            time.sleep(max(0.0, started + cycles * interval - time.monotonic()))
            elapsed = time.monotonic() - step.steady_since
            step.cpu = {name: (cpu(pid) - before[name]) / elapsed for name, pid in processes.items()}
            step.machine = (machine_cpu_seconds() - machine_before) / elapsed
            step.rss = {name: memory_bytes(pid)["rss"] for name, pid in processes.items()}
            step.sent = sending.result()
        step.drain = drained_after(pipeline, job, hosts, last_timestamp, step.sent.last_answer)
        window = int(time.time() - first_timestamp) + SETTLE_SECONDS
        for backend in pipeline.backends:
            step.samples[backend.name] = settled_count(backend, job, window, step.points)
            step.series[backend.name] = count_series(backend, job, window)
    return step


def cpu(pid: int) -> float:
    # The generator's sending threads end before the step does: the process clock keeps what they used.
    return time.process_time() if pid == os.getpid() else cpu_seconds(pid)


def drained_after(pipeline: Pipeline, job: str, hosts: int, last_timestamp: float, last_answer: float) -> float:
    """Seconds from the last answer until every host's last request is queryable in both backends."""
    def arrived(backend: PromApi) -> bool:
        return scalar(backend, f'count(timestamp({PROBE}{{job="{job}"}}) >= {last_timestamp - 0.001})') == hosts
    try:
        wait_for(lambda: all(arrived(backend) for backend in pipeline.backends), SETTLE_SECONDS, "the last cycle")
    except AssertionError:
        return float("inf")
    return time.monotonic() - last_answer


def find_capacity(base: Path, gateway: str, steps: list[int], interval: float, cycles: int, workers: int,
                  on_step=print) -> list[Step]:
    """Run the steps in order; stop after the first that does not hold."""
    done = []
    for hosts in steps:
        done.append(run_step(base, gateway, hosts, interval, cycles, workers))
        on_step(done[-1])
        if not done[-1].held:
            break
    return done
