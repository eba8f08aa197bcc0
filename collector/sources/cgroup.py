"""Resource use per cgroup v2 — systemd slices and services, containers, Kubernetes pods — from the host's
/sys/fs/cgroup (opt-in: one series set per cgroup). No semantic convention covers cgroups yet.

The walk is bounded (max_depth levels below the root, at most max_cgroups kept); container and pod identity
come from the path where the runtime writes them there (docker-<id>.scope, cri-containerd-<id>.scope,
crio-<id>.scope, kubepods-…-pod<uid>.slice, or the cgroupfs driver's plain <id> and pod<uid>).
"""

import os
import re
from dataclasses import dataclass, field

from collector.sources.base import OptInOptions, PartialFailure, Source, Unavailable, read_counters
from collector.sources.filters import REGEX, NameFilter, capped
from collector.sources.pressure import PRECEDENT, RESOURCES, STALL_TYPE, pressure_lines, stall_seconds
from collector.spec import PROJECT, Point, counter, updowncounter

CGROUP = ("linux.cgroup.path",)
IDENTITY = ("container.id", "k8s.pod.uid")  # where the path carries them
OPT_IN = "only with cgroup.enabled: true"
CONTAINER = re.compile(r"(?:^|-)([0-9a-f]{64})(?:\.scope)?$")
POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$")
MEMORY_EVENTS = ("max", "oom", "oom_kill")
# The system-wide totals' names and attribute (system.<resource>.linux.pressure.total), in the cgroup namespace.
PRESSURE_PRECEDENT = f"{PRECEDENT} (system.<resource>.linux.pressure.total), per cgroup"


CPU_TIME = counter("linux.cgroup.cpu.time", "s", "CPU seconds used by the cgroup's processes (cpu.stat).",
                   *CGROUP, "cpu.mode", optional=IDENTITY, condition=OPT_IN, precedent=PROJECT)
THROTTLED_TIME = counter("linux.cgroup.cpu.throttled_time", "s", "Time the cgroup was throttled by its CPU limit.",
                         *CGROUP, optional=IDENTITY, condition=OPT_IN + ", with the cpu controller", precedent=PROJECT)
MEMORY_USAGE = updowncounter("linux.cgroup.memory.usage", "By", "Memory charged to the cgroup (memory.current).",
                             *CGROUP, optional=IDENTITY, condition=OPT_IN, precedent=PROJECT)
MEMORY_LIMIT = updowncounter("linux.cgroup.memory.limit", "By", "The cgroup's memory limit (memory.max).",
                             *CGROUP, optional=IDENTITY, condition=OPT_IN + ", for cgroups with a limit",
                             precedent=PROJECT)
MEMORY_EVENT_COUNT = counter(
    "linux.cgroup.memory.events", "{event}",
    "Memory events: max (the limit was hit), oom (out of memory), oom_kill (a process was killed).",
    *CGROUP, "linux.cgroup.memory.event", optional=IDENTITY, condition=OPT_IN, precedent=PROJECT)
PRESSURE = {resource: counter(f"linux.cgroup.{resource}.pressure.total", "s",
                              f"Time the cgroup's tasks were stalled waiting for {resource} (some: at least one task; "
                              "full: all non-idle tasks at once).", *CGROUP, STALL_TYPE, optional=IDENTITY,
                              condition=OPT_IN + ", with pressure stall information", precedent=PRESSURE_PRECEDENT)
            for resource in RESOURCES}


@dataclass(frozen=True)
class CgroupOptions(OptInOptions):
    include: tuple[str, ...] = field(default=(), metadata=REGEX)  # searched in the path, e.g. /system.slice/x
    # Mount, socket and device units and the idle init scope: always near zero.
    exclude: tuple[str, ...] = field(default=(r"\.(mount|socket|device|swap)$", r"/init\.scope$"), metadata=REGEX)
    max_depth: int = field(default=4, metadata={"min": 1, "max": 10})
    max_cgroups: int = field(default=200, metadata={"min": 1})


class CgroupSource(Source):
    name = "cgroup"
    Options = CgroupOptions
    metrics = (CPU_TIME, THROTTLED_TIME, MEMORY_USAGE, MEMORY_LIMIT, MEMORY_EVENT_COUNT, *PRESSURE.values())

    def __init__(self, host, options):
        super().__init__(host, options)
        self.root = host.root / "sys/fs/cgroup"
        self.filter = NameFilter(options.include, options.exclude)

    def collect(self) -> list[Point]:
        if not (self.root / "cgroup.controllers").is_file():
            raise Unavailable(f"{self.root} is not a cgroup v2 hierarchy")
        paths = [p for p in walk(str(self.root), self.options.max_depth) if self.filter.allows(p)]
        paths, overflow = capped(paths, self.options.max_cgroups, "cgroups")
        points, failures = [], []
        for path in paths:
            try:
                points += cgroup_points(f"{self.root}{path}", identity(path))
            except FileNotFoundError:  # removed while being read: a container that stopped
                continue
            except (OSError, ValueError) as error:
                failures.append(f"{path}: {error}")
        if overflow:
            failures.append(overflow)
        if failures:
            raise PartialFailure(points, *failures)
        return points


def walk(root: str, max_depth: int) -> list[str]:
    """Paths of the cgroups below `root` ("/system.slice", …), parents first, at most max_depth deep."""
    found, level = [], [""]
    for _ in range(max_depth):
        below = []
        for path in level:
            try:
                entries = os.scandir(root + path)
            except FileNotFoundError:
                continue
            with entries:
                below += sorted(f"{path}/{e.name}" for e in entries if e.is_dir(follow_symlinks=False))
        found += below
        level = below
    return sorted(found)


def identity(path: str) -> dict[str, str]:
    labels = {"linux.cgroup.path": path}
    for part in path.split("/"):
        if match := POD.search(part):
            labels["k8s.pod.uid"] = match.group(1).replace("_", "-")
        elif match := CONTAINER.search(part):
            labels["container.id"] = match.group(1)
    return labels


def cgroup_points(directory: str, labels: dict) -> list[Point]:
    def read(name):
        with open(f"{directory}/{name}") as file:
            return file.read()

    points = []
    cpu = read_counters(read("cpu.stat"))
    points += [Point(CPU_TIME.name, cpu[f"{mode}_usec"] / 1e6, {**labels, "cpu.mode": mode})
               for mode in ("user", "system")]
    if "throttled_usec" in cpu:  # only with the cpu controller enabled for this cgroup
        points.append(Point(THROTTLED_TIME.name, cpu["throttled_usec"] / 1e6, labels))
    if os.path.exists(f"{directory}/memory.current"):  # the memory controller is enabled here
        points.append(Point(MEMORY_USAGE.name, int(read("memory.current")), labels))
        limit = read("memory.max").strip()
        if limit != "max":
            points.append(Point(MEMORY_LIMIT.name, int(limit), labels))
        events = read_counters(read("memory.events"))
        points += [Point(MEMORY_EVENT_COUNT.name, events.get(event, 0),
                         {**labels, "linux.cgroup.memory.event": event}) for event in MEMORY_EVENTS]
    for resource in RESOURCES:
        try:
            text = read(f"{resource}.pressure")
        except FileNotFoundError:  # no PSI (kernel < 4.20 or psi=0)
            continue
        points += [Point(PRESSURE[resource].name, stall_seconds(fields),
                         {**labels, STALL_TYPE: stall_type}) for stall_type, fields in pressure_lines(text)]
    return points
