"""The top N processes by CPU or memory (opt-in, N capped so cardinality stays bounded).

The model puts process metrics on a process entity identified by process.pid and process.creation.time.
An OTLP resource is one per export here (one MeterProvider), and Prometheus keeps resource attributes only
in target_info: so the identity travels as point attributes, beside the descriptive executable name.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psutil

from collector.sources.base import OptInOptions, Source
from collector.spec import Point, counter, gauge, updowncounter

HARD_CAP = 50
PROCESS = ("process.pid", "process.creation.time", "process.executable.name")
# The model's process modes are user, system and wait; psutil's `iowait` is time blocked on I/O, not CPU
# time, and would inflate the CPU the dashboards add up: only user and system are sent.
CPU_MODES = ("user", "system")
OPT_IN = "only with top_processes.enabled: true"


@dataclass(frozen=True)
class TopProcessesOptions(OptInOptions):
    count: int = field(default=10, metadata={"min": 1, "max": HARD_CAP})
    by: str = field(default="cpu", metadata={"choices": ("cpu", "memory")})


CPU_TIME = counter("process.cpu.time", "s", "CPU seconds of a top process by mode.", *PROCESS, "cpu.mode",
                   condition=OPT_IN)
CPU_UTILIZATION = gauge("process.cpu.utilization", "1",
                        "CPU share of a top process by mode since the previous collection (of all CPUs).",
                        *PROCESS, "cpu.mode", condition=OPT_IN)
MEMORY_USAGE = updowncounter("process.memory.usage", "By", "Resident memory of a top process.", *PROCESS,
                             condition=OPT_IN)
MEMORY_VIRTUAL = updowncounter("process.memory.virtual", "By", "Virtual memory of a top process.", *PROCESS,
                               condition=OPT_IN)
THREAD_COUNT = updowncounter("process.thread.count", "{thread}", "Threads of a top process.", *PROCESS,
                             condition=OPT_IN)
FILE_DESCRIPTOR_COUNT = updowncounter("process.unix.file_descriptor.count", "{file_descriptor}",
                                      "Open file descriptors of a top process (needs permission to list its fds).",
                                      *PROCESS, condition=OPT_IN)


class TopProcessesSource(Source):
    name = "top_processes"
    Options = TopProcessesOptions
    metrics = (CPU_TIME, CPU_UTILIZATION, MEMORY_USAGE, MEMORY_VIRTUAL, THREAD_COUNT, FILE_DESCRIPTOR_COUNT)
    FIELDS = ["pid", "name", "create_time", "cpu_times", "memory_info", "num_threads", "num_fds"]

    def __init__(self, host, options):
        super().__init__(host, options)
        # (pid, start time): a reused pid is a new process
        self._previous_cpu: dict[tuple[int, float], dict[str, float]] = {}
        self._previous_time = time.monotonic()

    def collect(self) -> list[Point]:
        now = time.monotonic()
        elapsed = max(now - self._previous_time, 1e-9) * (psutil.cpu_count() or 1)
        rows = []
        with self.host.psutil_procfs():
            infos = [process.info for process in psutil.process_iter(self.FIELDS)]
        for info in infos:
            if info["cpu_times"] is None or info["memory_info"] is None:
                continue
            cpu = cpu_by_mode(info["cpu_times"])
            before = self._previous_cpu.get(_identity(info), cpu)
            shares = {mode: (seconds - before[mode]) / elapsed for mode, seconds in cpu.items()}
            rows.append((info, cpu, shares))
        self._previous_cpu = {_identity(info): cpu for info, cpu, _ in rows}
        self._previous_time = now
        rank = ((lambda r: sum(r[2].values())) if self.options.by == "cpu"
                else (lambda r: r[0]["memory_info"].rss))
        rows.sort(key=rank, reverse=True)
        return [p for info, cpu, shares in rows[:self.options.count] for p in process_points(info, cpu, shares)]


def _identity(info: dict) -> tuple[int, float]:
    return info["pid"], info["create_time"]


def cpu_by_mode(cpu_times) -> dict[str, float]:
    return {mode: getattr(cpu_times, mode) for mode in CPU_MODES}


def creation_time(create_time: float) -> str:
    """The model's process.creation.time: ISO 8601 in UTC, millisecond precision."""
    return datetime.fromtimestamp(create_time, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def process_points(info: dict, cpu: dict[str, float], cpu_shares: dict[str, float]) -> list[Point]:
    labels = {"process.pid": info["pid"], "process.creation.time": creation_time(info["create_time"]),
              "process.executable.name": info["name"]}
    points = [Point(CPU_TIME.name, seconds, {**labels, "cpu.mode": mode}) for mode, seconds in cpu.items()]
    points += [Point(CPU_UTILIZATION.name, share, {**labels, "cpu.mode": mode})
               for mode, share in cpu_shares.items()]
    points += [
        Point(MEMORY_USAGE.name, info["memory_info"].rss, labels),
        Point(MEMORY_VIRTUAL.name, info["memory_info"].vms, labels),
        Point(THREAD_COUNT.name, info["num_threads"], labels),
    ]
    if info["num_fds"] is not None:  # None when we may not list another user's /proc/<pid>/fd
        points.append(Point(FILE_DESCRIPTOR_COUNT.name, info["num_fds"], labels))
    return points
