"""The top N processes by CPU or memory (opt-in, N capped so cardinality stays bounded)."""

import time
from dataclasses import dataclass, field

import psutil

from collector.sources.base import OptInOptions, Source
from collector.spec import Point, counter, gauge, updowncounter

HARD_CAP = 50
PROCESS = ("process.pid", "process.executable.name")
OPT_IN = "only with top_processes.enabled: true"


@dataclass(frozen=True)
class TopProcessesOptions(OptInOptions):
    count: int = field(default=10, metadata={"min": 1, "max": HARD_CAP})
    by: str = field(default="cpu", metadata={"choices": ("cpu", "memory")})


class TopProcessesSource(Source):
    name = "top_processes"
    Options = TopProcessesOptions
    metrics = (
        counter("process.cpu.time", "s", "CPU seconds of a top process by mode.", *PROCESS, "cpu.mode",
                condition=OPT_IN),
        gauge("process.cpu.utilization", "1", "CPU share of a top process since the previous collection.",
              *PROCESS, condition=OPT_IN),
        updowncounter("process.memory.usage", "By", "Resident memory of a top process.", *PROCESS,
                      condition=OPT_IN),
        updowncounter("process.memory.virtual", "By", "Virtual memory of a top process.", *PROCESS,
                      condition=OPT_IN),
        updowncounter("process.thread.count", "{thread}", "Threads of a top process.", *PROCESS,
                      condition=OPT_IN),
        updowncounter("process.unix.file_descriptor.count", "{file_descriptor}",
                      "Open file descriptors of a top process (needs permission to list its fds).",
                      *PROCESS, condition=OPT_IN),
    )
    FIELDS = ["pid", "name", "create_time", "cpu_times", "memory_info", "num_threads", "num_fds"]

    def __init__(self, host, options):
        super().__init__(host, options)
        self._previous_cpu: dict[tuple[int, float], float] = {}  # (pid, start time): a reused pid is new
        self._previous_time = time.monotonic()

    def collect(self) -> list[Point]:
        now = time.monotonic()
        elapsed = max(now - self._previous_time, 1e-9) * (psutil.cpu_count() or 1)
        rows = []
        for process in psutil.process_iter(self.FIELDS):
            info = process.info
            if info["cpu_times"] is None or info["memory_info"] is None:
                continue
            cpu = info["cpu_times"].user + info["cpu_times"].system
            share = (cpu - self._previous_cpu.get(_identity(info), cpu)) / elapsed
            rows.append((info, cpu, share))
        self._previous_cpu = {_identity(info): cpu for info, cpu, _ in rows}
        self._previous_time = now
        rank = (lambda r: r[2]) if self.options.by == "cpu" else (lambda r: r[0]["memory_info"].rss)
        rows.sort(key=rank, reverse=True)
        return [p for info, _, share in rows[:self.options.count] for p in process_points(info, share)]


def _identity(info: dict) -> tuple[int, float]:
    return info["pid"], info["create_time"]


def process_points(info: dict, cpu_share: float) -> list[Point]:
    labels = {"process.pid": info["pid"], "process.executable.name": info["name"]}
    points = [
        Point("process.cpu.time", info["cpu_times"].user, {**labels, "cpu.mode": "user"}),
        Point("process.cpu.time", info["cpu_times"].system, {**labels, "cpu.mode": "system"}),
        Point("process.cpu.utilization", cpu_share, labels),
        Point("process.memory.usage", info["memory_info"].rss, labels),
        Point("process.memory.virtual", info["memory_info"].vms, labels),
        Point("process.thread.count", info["num_threads"], labels),
    ]
    if info["num_fds"] is not None:  # None when we may not list another user's /proc/<pid>/fd
        points.append(Point("process.unix.file_descriptor.count", info["num_fds"], labels))
    return points
