"""CPU time per mode and utilization (/proc/stat), counts and frequency (psutil)."""

import os
from dataclasses import dataclass
from types import SimpleNamespace

import psutil

from collector.sources.base import Source, SourceOptions
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
        # The baseline taken at start-up lets the first export carry a real utilization.
        self._previous = self._times()
        self._physical = psutil.cpu_count(logical=False)

    def _times(self):
        return parse_cpu_times(self.host.read_proc("stat"), self.options.per_cpu)

    def collect(self) -> list[Point]:
        current = self._times()
        points = [Point(LOGICAL_COUNT.name, psutil.cpu_count(logical=True))]
        if self._physical:
            points.append(Point(PHYSICAL_COUNT.name, self._physical))
        if self.options.per_cpu:
            for number, (now, before) in enumerate(zip(current, self._previous)):
                points += _mode_points(now, before, {"cpu.logical_number": number})
        else:
            points += _mode_points(current, self._previous, {})
        points += _frequency_points()
        self._previous = current
        return points


def parse_cpu_times(stat: str, per_cpu: bool):
    """Seconds per column of /proc/stat's first line (all CPUs), or of each `cpuN` line with `per_cpu`."""
    lines = [line.split() for line in stat.splitlines() if line.startswith("cpu")]
    rows = [SimpleNamespace(**{column: float(ticks) / TICKS_PER_SECOND for column, ticks in zip(COLUMNS, line[1:])})
            for line in (lines[1:] if per_cpu else lines[:1])]
    return rows if per_cpu else rows[0]


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


def _frequency_points() -> list[Point]:
    try:
        frequencies = psutil.cpu_freq(percpu=True)
    except (OSError, NotImplementedError):
        return []
    return [Point(FREQUENCY.name, f.current * 1e6, {"cpu.logical_number": n})
            for n, f in enumerate(frequencies or []) if f.current]
