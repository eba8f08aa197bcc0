"""How long one collection takes, in this process: `Collection.refresh()` of the default sources, with every
source due in every cycle (the filesystem source too, which by default runs every third export): the worst case."""

import math
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
    p50: float  # seconds
    p99: float
    slowest_sources: list[tuple[str, float]]  # (source, its p99), slowest first


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value that at least `fraction` of the values do not exceed."""
    ranked = sorted(values)
    return ranked[max(0, math.ceil(len(ranked) * fraction) - 1)] if ranked else math.nan


def every_source_due(environ: dict[str, str] | None = None) -> tuple[Config, Collection]:
    """The default configuration (plus `environ`), with the filesystem source due in every cycle too."""
    config = load(None, environ={"HOSTAGENT_SOURCES__FILESYSTEM__INTERVAL": "null", **(environ or {})})
    return config, build_collection(config, Host(config.host_root), AgentTelemetry())


def measure(cycles: int, shown_sources: int = 3) -> Latency:
    _, collection = every_source_due()
    collection.refresh()  # first reads open files and fill caches
    totals, by_source = [], {name: [] for name in collection.telemetry.sources}
    for _ in range(cycles):
        started = time.perf_counter()
        collection.refresh()
        totals.append(time.perf_counter() - started)
        for name, stats in collection.telemetry.sources.items():
            by_source[name].append(stats.duration)
    slowest = sorted(((name, percentile(durations, 0.99)) for name, durations in by_source.items()),
                     key=lambda item: item[1], reverse=True)
    return Latency(cycles, percentile(totals, 0.5), percentile(totals, 0.99), slowest[:shown_sources])
