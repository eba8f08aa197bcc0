"""Processes matched by rules and aggregated per group, as process-exporter does (opt-in; one series set per
configured group, never per pid). A group that matches nothing reports 0 processes, so a daemon that is not
running can alert.

Cost stays bounded with thousands of processes: every process costs one read of /proc/<pid>/stat, plus
cmdline, status or cgroup only when a rule needs it; the other files (statm, io, fd, the threads' status) are read
for members only, and a member's context switches cost one read per thread.
"""

import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from collector.problems import Problem
from collector.sources.base import OptInOptions, PartialFailure, Source, read_small
from collector.sources.filters import REGEX
from collector.spec import Point, counter, gauge, updowncounter

GROUP = "hostagent.process_group"
OPT_IN = "only with process_groups.enabled: true and groups configured"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
UNIT = re.compile(r"[^/]+\.(service|scope)$")
SWITCHES = re.compile(rb"^(voluntary|nonvoluntary)_ctxt_switches:\s*(\d+)", re.MULTILINE)
SWITCH_TYPE = {b"voluntary": "voluntary", b"nonvoluntary": "involuntary"}


COUNT = updowncounter("hostagent.process_group.count", "{process}", "Processes in the group (0: none running).",
                      GROUP, condition=OPT_IN)
CPU_TIME = counter("process.cpu.time", "s", "CPU seconds of the group's processes by mode, exited ones included.",
                   GROUP, "cpu.mode", condition=OPT_IN)
MEMORY_USAGE = updowncounter("process.memory.usage", "By", "Resident memory of the group's processes.", GROUP,
                             condition=OPT_IN)
MEMORY_VIRTUAL = updowncounter("process.memory.virtual", "By", "Virtual memory of the group's processes.", GROUP,
                               condition=OPT_IN)
DISK_IO = counter("process.disk.io", "By", "Bytes the group's processes read from and wrote to storage "
                  "(needs permission to read /proc/<pid>/io).", GROUP, "disk.io.direction", condition=OPT_IN)
CONTEXT_SWITCHES = counter("process.context_switches", "{context_switch}",
                           "Context switches of every thread of the group's processes.", GROUP,
                           "process.context_switch.type", condition=OPT_IN)
PAGING_FAULTS = counter("process.paging.faults", "{fault}", "Page faults of the group's processes.", GROUP,
                        "system.paging.fault.type", condition=OPT_IN)
THREAD_COUNT = updowncounter("process.thread.count", "{thread}", "Threads of the group's processes.", GROUP,
                             condition=OPT_IN)
FILE_DESCRIPTOR_COUNT = updowncounter("process.unix.file_descriptor.count", "{file_descriptor}",
                                      "Open file descriptors of the group's processes (needs permission to list "
                                      "them).", GROUP, condition=OPT_IN)
UPTIME = gauge("process.uptime", "s", "Age of the group's oldest process.", GROUP,
               condition=OPT_IN + ", while the group has processes")
# The counters a group keeps across its exited processes, each with the values of its second attribute.
COUNTERS = {CPU_TIME: ("user", "system"), PAGING_FAULTS: ("major", "minor"),
            CONTEXT_SWITCHES: ("voluntary", "involuntary"), DISK_IO: ("read", "write")}


@dataclass(frozen=True)
class GroupRule:
    """A process belongs to the first group whose every given field matches (each a list of regular
    expressions, searched; one of them must match)."""
    executable: tuple[str, ...] = field(default=(), metadata=REGEX)  # the process name (comm, 15 characters)
    cmdline: tuple[str, ...] = field(default=(), metadata=REGEX)  # arguments joined by spaces
    user: tuple[str, ...] = field(default=(), metadata=REGEX)  # real user name (the host's /etc/passwd)
    systemd_unit: tuple[str, ...] = field(default=(), metadata=REGEX)  # innermost .service/.scope of its cgroup
    cgroup: tuple[str, ...] = field(default=(), metadata=REGEX)  # its cgroup v2 path

    def problems(self):
        """(option, problem) as the configuration's loader checks them; None: the group itself."""
        if not any(vars(self).values()):
            yield None, (f"expected at least one of {', '.join(vars(self))} (a group without one would take every "
                         f"process)")


@dataclass(frozen=True)
class ProcessGroupsOptions(OptInOptions):
    groups: dict[str, GroupRule] = field(default_factory=dict)


class ProcessGroupsSource(Source):
    name = "process_groups"
    Options = ProcessGroupsOptions
    metrics = (COUNT, CPU_TIME, MEMORY_USAGE, MEMORY_VIRTUAL, DISK_IO, CONTEXT_SWITCHES, PAGING_FAULTS, THREAD_COUNT,
               FILE_DESCRIPTOR_COUNT, UPTIME)

    def __init__(self, host, options):
        super().__init__(host, options)
        self.rules = [(name, RuleMatcher(rule)) for name, rule in options.groups.items()]
        self._users: dict[int, str] | None = None
        # A group's counters keep what its exited processes and threads used: totals per group, and the last values of
        # the previous collection's members (context switches per thread). Only increments made while a member count:
        # the stat of every process of the previous scan tells what one that was in no group then had used.
        self._last: dict[tuple[int, int], Counter] = {}
        self._stats: dict[tuple[int, int], Stat] = {}
        self._totals: dict[str, Counter] = {name: Counter() for name in options.groups}

    def collect(self) -> list[Point]:
        uptime = float(self.host.read_proc("uptime").split()[0])
        members, unreadable = defaultdict(list), 0
        last, stats = {}, {}
        for process in self._processes():
            stats[process.key] = process.stat
            group = next((name for name, matcher in self.rules if matcher.matches(process)), None)
            if group is None:
                continue
            counters = process.counters()
            # (a process that exited meanwhile is not a permission problem)
            unreadable += ((process.fds is None or (DISK_IO.name, "read") not in counters)
                           and os.path.exists(process.directory))
            previous, totals = self._previous(process.key, counters), self._totals[group]
            for key, value in counters.items():
                if value > previous[key]:
                    totals[key[:2]] += value - previous[key]  # (metric, attribute value), without the thread
            last[process.key] = counters
            members[group].append(process)
        self._last, self._stats = last, stats  # exited processes are forgotten
        points = [p for name in self._totals for p in group_points(name, members[name], self._totals[name], uptime)]
        if unreadable:
            kind = "matched processes without readable io or fd (run as root or with CAP_SYS_PTRACE)"
            raise PartialFailure(points, Problem(f"{unreadable} {kind}", kind))
        return points

    def _previous(self, key: tuple[int, int], counters: Counter) -> Counter:
        """A member's counters as last read: at the previous collection if it was a member then (of any group). One
        that was in no group then (renamed, its command line rewritten) adds its CPU time and faults since the
        previous scan, and its io and context switches from now on (read for members only: none earlier). A process
        new since then adds all it used."""
        if (previous := self._last.get(key)) is not None:
            return previous
        if (stat := self._stats.get(key)) is None:
            return Counter()
        return Counter({**counters, **stat_counters(stat)})

    def _processes(self):
        proc = str(self.host.proc)  # string paths: pathlib would cost a third of a scan
        for pid, data in self.host.process_stats():
            try:
                stat = parse_stat(data)
            except (ValueError, IndexError):  # a stat the parser cannot read
                continue
            yield Process(f"{proc}/{pid}", int(pid), stat, self._user_name, self.host)

    def _user_name(self, uid: int) -> str:
        if self._users is None:
            try:
                self._users = parse_passwd(self.host.read_etc("passwd"))
            except OSError:
                self._users = {}
        return self._users.get(uid, str(uid))


class Stat(NamedTuple):
    comm: str
    minor_faults: int
    major_faults: int
    user_ticks: int
    system_ticks: int
    threads: int
    start_ticks: int
    virtual_bytes: int
    resident_pages: int
    # startcode and endcode, where the program's text lies: they move when the process exec()s another program,
    # also one of the same kernel name (a wrapper script python3 exec()ing /usr/bin/python3)
    code: tuple[bytes, ...] = ()


def parse_stat(data: bytes) -> Stat:
    # The name may hold spaces and parentheses: the fields follow the last ')'; rest[n] is field n + 3 of proc(5).
    comm = data[data.index(b"(") + 1:data.rindex(b")")].decode(errors="backslashreplace")
    rest = data[data.rindex(b")") + 2:].split()
    return Stat(comm, *(int(rest[i]) for i in (7, 9, 11, 12, 17, 19, 20, 21)), code=tuple(rest[23:25]))


def resident_bytes(host, pid: int, stat: Stat) -> int:
    """Resident memory as psutil and /proc/<pid>/status's VmRSS give it: statm's second field, from the kernel's
    summed RSS counters. Since Linux 6.2 stat's rss is the per-CPU counters' unsummed approximation (hundreds of
    KiB low per process, do_task_stat's get_mm_rss): it ranks, and stands in for a process that exited since
    the scan, which is still counted."""
    try:
        return int(host.read_process(pid, "statm").split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return stat.resident_pages * PAGE_BYTES


def stat_counters(stat: Stat) -> dict[tuple[str, str], float]:
    return {(CPU_TIME.name, "user"): stat.user_ticks / TICKS, (CPU_TIME.name, "system"): stat.system_ticks / TICKS,
            (PAGING_FAULTS.name, "major"): stat.major_faults, (PAGING_FAULTS.name, "minor"): stat.minor_faults}


def parse_passwd(text: str) -> dict[int, str]:
    users = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            users.setdefault(int(fields[2]), fields[0])
    return users


class Process:
    """One process; the files a rule or a member needs are read on first use, once."""

    def __init__(self, directory: str, pid: int, stat: Stat, user_name, host):
        self.directory, self.stat, self._user_name, self._host = directory, stat, user_name, host
        self.pid, self.key = pid, (pid, stat.start_ticks)  # a reused pid is a new process

    @cached_property
    def cmdline(self) -> str:
        return read_small(f"{self.directory}/cmdline").replace(b"\0", b" ").decode(errors="backslashreplace").strip()

    @cached_property
    def status(self) -> dict[str, str]:
        lines = read_small(f"{self.directory}/status").decode(errors="backslashreplace").splitlines()
        return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}

    @cached_property
    def user(self) -> str:
        return self._user_name(int(self.status["Uid"].split()[0]))

    @cached_property
    def cgroup(self) -> str:
        lines = read_small(f"{self.directory}/cgroup").decode(errors="backslashreplace").splitlines()
        # cgroup v2: the single "0::<path>" line; on a v1 or hybrid host, the systemd hierarchy.
        paths = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in lines if line.count(":") >= 2}
        return paths.get("", paths.get("name=systemd", ""))

    @cached_property
    def systemd_unit(self) -> str:
        units = [part for part in self.cgroup.split("/") if UNIT.match(part)]
        return units[-1] if units else ""

    @cached_property
    def resident_bytes(self) -> int:
        return resident_bytes(self._host, self.pid, self.stat)

    @cached_property
    def fds(self) -> int | None:
        try:
            return len(os.listdir(f"{self.directory}/fd"))
        except OSError:  # another user's process, without the capability to look
            return None

    def counters(self) -> Counter:
        """Cumulative counters keyed (metric, attribute value), context switches (metric, attribute value, thread
        id); io is missing where it may not be read."""
        values = Counter(stat_counters(self.stat))
        values.update(self._thread_context_switches())
        try:
            io = dict(line.split(": ") for line in read_small(f"{self.directory}/io").decode().splitlines())
            values[(DISK_IO.name, "read")] = int(io["read_bytes"])
            values[(DISK_IO.name, "write")] = int(io["write_bytes"])
        except (OSError, KeyError):  # io needs ptrace access to the process
            pass
        return values

    def _thread_context_switches(self) -> Counter:
        # /proc/<pid>/status and /proc/<pid>/sched count the main thread's switches only (fs/proc/array.c prints the
        # task's own nvcsw/nivcsw), as psutil and the hostmetrics receiver report them (psutil#1467,
        # opentelemetry-collector-contrib#36804). Kept per thread: a thread's exit takes nothing back.
        values = Counter()
        try:
            threads = os.listdir(f"{self.directory}/task")
        except OSError:  # exited
            return values
        for thread in threads:
            try:
                status = read_small(f"{self.directory}/task/{thread}/status")
            except OSError:  # exited since the listing
                continue
            for kind, count in SWITCHES.findall(status):
                values[CONTEXT_SWITCHES.name, SWITCH_TYPE[kind], thread] = int(count)
        return values


class RuleMatcher:
    def __init__(self, rule: GroupRule):
        self.patterns = [(attribute, [re.compile(p) for p in patterns])
                         for attribute, patterns in vars(rule).items() if patterns]

    def matches(self, process: Process) -> bool:
        try:
            return all(any(p.search(_field(process, attribute)) for p in patterns)
                       for attribute, patterns in self.patterns)
        except (OSError, KeyError, ValueError):  # exited while being looked at
            return False


def _field(process: Process, attribute: str) -> str:
    return process.stat.comm if attribute == "executable" else getattr(process, attribute)


def group_points(group: str, members: list[Process], totals: Counter, uptime: float) -> list[Point]:
    labels = {GROUP: group}
    fds = [m.fds for m in members if m.fds is not None]
    points = [
        Point(COUNT.name, len(members), labels),
        Point(MEMORY_USAGE.name, sum(m.resident_bytes for m in members), labels),
        Point(MEMORY_VIRTUAL.name, sum(m.stat.virtual_bytes for m in members), labels),
        Point(THREAD_COUNT.name, sum(m.stat.threads for m in members), labels),
        Point(FILE_DESCRIPTOR_COUNT.name, sum(fds), labels),
    ]
    points += [Point(spec.name, totals[spec.name, kind], {**labels, spec.attributes[1]: kind})
               for spec, kinds in COUNTERS.items() for kind in kinds]
    if members:
        points.append(Point(UPTIME.name, uptime - min(m.stat.start_ticks for m in members) / TICKS, labels))
    return points


