"""CPU time per mode and utilization (/proc/stat), counts (sysfs topology, /proc/cpuinfo) and frequency
(/proc/cpuinfo, else sysfs cpufreq): the values psutil gives on Linux, read from the host's root."""

import contextlib
import os
from dataclasses import dataclass
from types import SimpleNamespace

from collector.sources.base import Source, SourceOptions, read_small
from collector.spec import Point, counter, gauge, updowncounter

# /proc/stat columns → semconv cpu.mode. guest and guest_nice are already inside user and nice.
# The model's modes have one `interrupt`: hard (irq) and soft (softirq) interrupt time are added into it
# (the hostmetrics receiver's own `softirq` value is not a cpu.mode member).
MODES = {
    "user": "user", "nice": "nice", "system": "system", "idle": "idle", "iowait": "iowait",
    "irq": "interrupt", "softirq": "interrupt", "steal": "steal",
}
PER_CPU = ("cpu.logical_number",)  # with per_cpu: true
# The columns of a /proc/stat cpu line, in ticks of USER_HZ (older kernels have fewer: they are left out).
COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
CPU_SYSFS = "sys/devices/system/cpu"


@dataclass(frozen=True)
class CpuOptions(SourceOptions):
    per_cpu: bool = False


TIME = counter("system.cpu.time", "s", "Seconds the CPUs spent in each mode.", "cpu.mode", optional=PER_CPU)
UTILIZATION = gauge("system.cpu.utilization", "1",
                    "Share of CPU time spent in each mode since the previous collection.", "cpu.mode",
                    optional=PER_CPU)
LOGICAL_COUNT = updowncounter("system.cpu.logical.count", "{cpu}", "Number of logical CPUs.")
PHYSICAL_COUNT = updowncounter("system.cpu.physical.count", "{cpu}", "Number of physical CPU cores.",
                               condition="when the kernel exposes the CPU topology")
FREQUENCY = gauge("system.cpu.frequency", "Hz", "Current operating frequency of each logical CPU.",
                  "cpu.logical_number", condition="where the kernel reports CPU frequency")


class CpuSource(Source):
    name = "cpu"
    Options = CpuOptions
    metrics = (TIME, UTILIZATION, LOGICAL_COUNT, PHYSICAL_COUNT, FREQUENCY)

    def __init__(self, host, options):
        super().__init__(host, options)
        # The baseline taken at start-up lets the first export carry a real utilization. Without one (the read
        # fails: the collection reports it) the first collection is the baseline.
        self._previous = None
        with contextlib.suppress(OSError, ValueError):
            self._previous = self._times(host.read_proc("stat"))
        self._physical = physical_cores(host)

    def _times(self, stat: str):
        return parse_cpu_times(stat, self.options.per_cpu)

    def collect(self) -> list[Point]:
        stat = self.host.read_proc("stat")
        current = self._times(stat)
        previous = current if self._previous is None else self._previous
        points = [Point(LOGICAL_COUNT.name, online_cpus(stat))]
        if self._physical:
            points.append(Point(PHYSICAL_COUNT.name, self._physical))
        if self.options.per_cpu:
            for number, now in current.items():
                # a CPU brought online since the last collection has times, but no utilization yet
                points += _mode_points(now, previous.get(number, now), {"cpu.logical_number": number})
        else:
            points += _mode_points(current, previous, {})
        points += [Point(FREQUENCY.name, hertz, {"cpu.logical_number": number})
                   for number, hertz in frequencies(self.host).items() if hertz]
        self._previous = current
        return points


def parse_cpu_times(stat: str, per_cpu: bool):
    """Seconds per column of /proc/stat's first line (all CPUs), or with `per_cpu` {N: those of line `cpuN`}: the
    kernel lists online CPUs only, so a CPU's place in the list is not its number once one is offline."""
    lines = [line.split() for line in stat.splitlines() if line.startswith("cpu")]
    if not lines or not per_cpu and lines[0][0] != "cpu":
        raise ValueError("/proc/stat has no cpu line")
    rows = {line[0][3:]: SimpleNamespace(**{column: float(ticks) / TICKS_PER_SECOND
                                            for column, ticks in zip(COLUMNS, line[1:])})
            for line in (lines[1:] if per_cpu else lines[:1])}
    return {int(number): row for number, row in rows.items()} if per_cpu else rows[""]


def online_cpus(stat: str) -> int:
    """The `cpuN` lines of /proc/stat: the online CPUs, as sysconf(_SC_NPROCESSORS_ONLN) counts them."""
    return sum(1 for line in stat.splitlines() if line.startswith("cpu") and line[3:4].isdigit())


def _mode_points(now, before, attributes) -> list[Point]:
    totals, deltas = {}, {}
    for column, mode in MODES.items():
        seconds = getattr(now, column, None)
        if seconds is None:
            continue
        totals[mode] = totals.get(mode, 0.0) + seconds
        deltas[mode] = deltas.get(mode, 0.0) + max(seconds - getattr(before, column), 0.0)
    points = [Point(TIME.name, s, {"cpu.mode": m, **attributes}) for m, s in totals.items()]
    elapsed = sum(deltas.values())
    if elapsed > 0:
        points += [Point(UTILIZATION.name, d / elapsed, {"cpu.mode": m, **attributes})
                   for m, d in deltas.items()]
    return points


def cpuinfo_blocks(cpuinfo: str) -> list[dict[str, str]]:
    """/proc/cpuinfo's processors, each {lower-case key: value}."""
    return [{key.strip().lower(): value.strip()
             for key, _, value in (line.partition(":") for line in block.splitlines())}
            for block in cpuinfo.split("\n\n") if block.strip()]


def frequencies(host) -> dict[int, float]:
    """Hz per logical CPU (0 where one reports none). As psutil does on Linux: /proc/cpuinfo's "cpu MHz" (x86; the
    kernel's cached value, one read for all CPUs), else each CPU's cpufreq files (kHz)."""
    try:
        found = cpuinfo_hertz(host.read_proc("cpuinfo"))
    except (OSError, ValueError):
        found = {}
    return found or _cpufreq(host)


def cpuinfo_hertz(cpuinfo: str) -> dict[int, float]:
    """{processor: its "cpu MHz" in Hz}; only those two lines of each block are parsed (this runs every cycle)."""
    found, processor = {}, None
    for line in cpuinfo.splitlines():
        if line.startswith("processor"):
            processor = int(line.partition(":")[2])
        elif line[:7].lower() == "cpu mhz" and processor is not None:
            found[processor] = float(line.partition(":")[2]) * 1e6
    return found


def _cpufreq(host) -> dict[int, float]:
    found = {}
    with contextlib.suppress(OSError):
        cpus = [name for name in os.listdir(host.root / CPU_SYSFS) if name[:3] == "cpu" and name[3:].isdigit()]
        for cpu in cpus:
            # cpuinfo_cur_freq: older kernels and drivers without scaling_cur_freq (psutil issue 1071)
            for name in ("scaling_cur_freq", "cpuinfo_cur_freq"):
                try:
                    found[int(cpu[3:])] = int(host.read_sys(f"devices/system/cpu/{cpu}/cpufreq/{name}")) * 1e3
                    break
                except (OSError, ValueError):
                    continue
    return dict(sorted(found.items()))


def physical_cores(host) -> int | None:
    """Distinct cores in the sysfs topology (core_cpus_list, or thread_siblings_list before Linux 5.7), else
    /proc/cpuinfo's "cpu cores" per "physical id", summed: psutil's cpu_count(logical=False) on Linux."""
    cpus = host.root / CPU_SYSFS
    try:
        for name in ("core_cpus_list", "thread_siblings_list"):
            cores = {read_small(path).strip() for path in cpus.glob(f"cpu[0-9]*/topology/{name}")}
            if cores:
                return len(cores)
        sockets = {block["physical id"]: int(block["cpu cores"])
                   for block in cpuinfo_blocks(host.read_proc("cpuinfo"))
                   if "physical id" in block and "cpu cores" in block}
    except (OSError, ValueError):
        return None
    return sum(sockets.values()) or None
