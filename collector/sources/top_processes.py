"""The top N processes by CPU or memory (opt-in, N capped so cardinality stays bounded).

The model puts process metrics on a process entity identified by process.pid and process.creation.time.
An OTLP resource is one per export here (one MeterProvider), and Prometheus keeps resource attributes only
in target_info: so the identity travels as point attributes, beside the descriptive executable name.

Every process costs one read of /proc/<pid>/stat, which ranks them; the top N also their statm (resident memory)
and fd directory, and once per process (until it exec()s) its exe link (and its cmdline when that link cannot be read
and the kernel cut the name). The values are those psutil gives on Linux.

The CPU share ranks the processes: of the CPU time since the previous collection (the first, since the source was
built), or since its start for a process started since: a new busy process ranks at once.
"""

import contextlib
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from collector.sources.base import OptInOptions, Source, read_small
from collector.sources.cpu import online_cpus
from collector.sources.process_groups import TICKS, parse_stat, resident_bytes
from collector.spec import Point, counter, gauge, updowncounter

HARD_CAP = 50
PROCESS = ("process.pid", "process.creation.time", "process.executable.name")
# The model's process modes are user, system and wait; /proc's block I/O delay is time blocked on I/O, not CPU
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
                        "CPU share of a top process by mode since the previous collection, or since its start for "
                        "a process started since (of all CPUs).",
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

    clock = staticmethod(time.monotonic)

    def __init__(self, host, options):
        super().__init__(host, options)
        # CPU seconds by mode per (pid, start time): a reused pid is a new process. The baseline taken at start-up
        # gives the first collection (which `run` exports) real shares; without one (the scan fails: the collection
        # reports it) every process counts as new.
        self._previous_cpu: dict[tuple[int, int], dict[str, float]] = {}
        # process.executable.name per (pid, start time), with the kernel's name and the program text's place it was
        # resolved under: exec() moves the text (and the exe link), also when the name stays. For another user's
        # process the link fails every time: resolved once.
        self._names: dict[tuple[int, int], tuple[tuple, str]] = {}
        self._previous_time = self.clock()
        with contextlib.suppress(OSError, ValueError):
            self._previous_cpu = {(pid, stat.start_ticks): cpu_seconds(stat) for pid, stat in self._stats()}

    def collect(self) -> list[Point]:
        now = self.clock()
        stat_text = self.host.read_proc("stat")
        cpus = online_cpus(stat_text)
        elapsed = max(now - self._previous_time, 1e-9) * cpus
        rows, current, uptime = [], {}, None
        for pid, stat in self._stats():
            cpu = current[pid, stat.start_ticks] = cpu_seconds(stat)
            before = self._previous_cpu.get((pid, stat.start_ticks))
            if before is not None:
                shares = {mode: (seconds - before[mode]) / elapsed for mode, seconds in cpu.items()}
            else:
                # Not read before: started since. The model's share is of the CPU time since the last measurement;
                # its last is its start, at 0 s: what it used over its life, not 0 (which would rank it last).
                if uptime is None:
                    uptime = float(self.host.read_proc("uptime").split()[0])
                life = max(uptime - stat.start_ticks / TICKS, 1 / TICKS) * cpus
                shares = {mode: seconds / life for mode, seconds in cpu.items()}
            rows.append((pid, stat, cpu, shares))
        self._previous_cpu, self._previous_time = current, now
        rank = ((lambda r: sum(r[3].values())) if self.options.by == "cpu" else (lambda r: r[1].resident_pages))
        rows.sort(key=rank, reverse=True)
        boot = boot_time(stat_text)
        top = [(self._info(pid, stat, boot), cpu, shares) for pid, stat, cpu, shares in rows[:self.options.count]]
        self._names = {process: name for process, name in self._names.items() if process in current}
        if self.options.by == "memory":  # chosen by stat's resident size, listed by the exact one
            top.sort(key=lambda t: t[0]["memory_info"].rss, reverse=True)
        return [p for info, cpu, shares in top for p in process_points(info, cpu, shares)]

    def _stats(self):
        for pid, stat in self.host.process_stats():
            try:
                yield int(pid), parse_stat(stat)
            except (ValueError, IndexError):  # a stat the parser cannot read
                continue

    def _info(self, pid: int, stat, boot: float) -> dict:
        return {"pid": pid, "name": self._cached_name(pid, stat), "create_time": stat.start_ticks / TICKS + boot,
                "memory_info": Memory(resident_bytes(self.host, pid, stat), stat.virtual_bytes),
                "num_threads": stat.threads, "num_fds": self._fds(pid)}

    def _cached_name(self, pid: int, stat) -> str:
        process, program = (pid, stat.start_ticks), (stat.comm, stat.code)
        named, name = self._names.get(process, (None, ""))
        if named != program:
            name = self._name(pid, stat.comm)
            self._names[process] = program, name
        return name

    def _name(self, pid: int, comm: str) -> str:
        """The model's process.executable.name on Linux: the base name of /proc/<pid>/exe's target. The link of
        another user's process needs CAP_SYS_PTRACE, a kernel thread or a zombie has none: then the kernel's name."""
        try:
            return executable_name(os.readlink(os.fsencode(f"{self.host.proc}/{pid}/exe")))
        except OSError:
            return self._kernel_name(pid, comm)

    def _kernel_name(self, pid: int, comm: str) -> str:
        """The kernel cuts a process name at 15 characters: where the program's file name starts with it, that
        name instead (psutil's; "gnome-keyring-daemon", not "gnome-keyring-d")."""
        if len(comm) < 15:
            return comm
        try:
            program = program_name(read_small(self.host.proc / str(pid) / "cmdline"))
        except OSError:
            return comm
        return program if program.startswith(comm) else comm

    def _fds(self, pid: int) -> int | None:
        try:
            return len(os.listdir(self.host.proc / str(pid) / "fd"))
        except OSError:  # another user's process, without the capability to look
            return None


def cpu_seconds(stat) -> dict[str, float]:
    return dict(zip(CPU_MODES, (stat.user_ticks / TICKS, stat.system_ticks / TICKS)))


class Memory(NamedTuple):
    rss: int
    vms: int


def boot_time(stat: str) -> float:
    for line in stat.splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError("no 'btime' line in /proc/stat")


def executable_name(target: bytes) -> str:
    """The file name of an exe link's target; the kernel adds " (deleted)" to a binary replaced or removed since
    the process started it (a package upgrade)."""
    return os.path.basename(target.removesuffix(b" (deleted)")).decode(errors="backslashreplace")


def program_name(cmdline: bytes) -> str:
    """The first argument's file name; setproctitle() may leave spaces, not NULs, between arguments
    (psutil issue 1179)."""
    # One trailing NUL ends the last argument; a title padded with more NULs keeps its spaces, as psutil reads it.
    arguments = cmdline[:-1].split(b"\0") if cmdline.endswith(b"\0") else cmdline.split(b" ")
    if len(arguments) == 1:
        arguments = arguments[0].split(b" ")
    return os.path.basename(arguments[0].decode(errors="backslashreplace"))


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
