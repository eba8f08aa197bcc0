"""How long one collection takes, in this process: `Collection.refresh()` of the default sources, with every
source due in every cycle (the filesystem source too, which by default runs every third export): the worst case.
Optionally with extra processes on the host (idle `sleep`s), which the processes source reads one by one."""

import contextlib
import math
import statistics
import subprocess
import time
from dataclasses import dataclass

from collector.agent import build_collection
from collector.collection import Collection
from collector.config import Config, load
from collector.host import Host
from collector.telemetry import AgentTelemetry


@dataclass(frozen=True)
class Latency:
    cycles: int
    processes: int  # processes on the host while measuring
    p50: float  # seconds, wall clock
    p99: float
    cpu_p50: float  # seconds, the thread's CPU clock: what the collection costs, whatever else loads the machine
    cpu_p99: float
    processes_cpu: float  # median thread CPU of the processes source (its scan of every /proc/<pid>/stat)
    slowest_sources: list[tuple[str, float]]  # (source, its p99), slowest first


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value that at least `fraction` of the values do not exceed."""
    ranked = sorted(values)
    return ranked[max(0, math.ceil(len(ranked) * fraction) - 1)] if ranked else math.nan


def every_source_due(environ: dict[str, str] | None = None) -> tuple[Config, Collection]:
    """The default configuration (plus `environ`), with the filesystem source due in every cycle too."""
    config = load(None, environ={"HOSTAGENT_SOURCES__FILESYSTEM__INTERVAL": "null", **(environ or {})})
    return config, build_collection(config, Host(config.host_root), AgentTelemetry())


@contextlib.contextmanager
def extra_processes(count: int):
    """`count` idle processes on the host for as long as the block runs."""
    children = [subprocess.Popen(["sleep", "3600"]) for _ in range(count)]
    try:
        yield
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()


def measure(cycles: int, shown_sources: int = 3, extra: int = 0) -> Latency:
    with extra_processes(extra):
        _, collection = every_source_due()
        processes = next(source for source in collection.sources if source.name == "processes")
        scans = []
        collect = processes.collect

        def timed_collect():
            started = time.thread_time()
            try:
                return collect()
            finally:
                scans.append(time.thread_time() - started)

        processes.collect = timed_collect
        collection.refresh()  # the first reads open the files the next ones keep open, and fill caches
        scans.clear()
        totals, cpu, by_source = [], [], {name: [] for name in collection.telemetry.sources}
        for _ in range(cycles):
            started, started_cpu = time.perf_counter(), time.thread_time()
            collection.refresh()
            totals.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - started_cpu)
            for name, stats in collection.telemetry.sources.items():
                by_source[name].append(stats.duration)
        counted = sum(int(p.value) for p in collection.latest("processes") if p.metric == "system.process.count")
    slowest = sorted(((name, percentile(durations, 0.99)) for name, durations in by_source.items()),
                     key=lambda item: item[1], reverse=True)
    return Latency(cycles, counted, percentile(totals, 0.5), percentile(totals, 0.99), percentile(cpu, 0.5),
                   percentile(cpu, 0.99), statistics.median(scans), slowest[:shown_sources])
