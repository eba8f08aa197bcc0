"""CPU time per mode, utilization, counts and frequency (psutil, /proc/stat)."""

from dataclasses import dataclass

import psutil

from collector.sources.base import Source, SourceOptions
from collector.spec import Point, counter, gauge, updowncounter

# /proc/stat columns → semconv cpu.mode. guest and guest_nice are already inside user and nice.
MODES = {
    "user": "user", "nice": "nice", "system": "system", "idle": "idle", "iowait": "iowait",
    "irq": "interrupt", "softirq": "softirq", "steal": "steal",
}
PER_CPU = ("cpu.logical_number",)  # with per_cpu: true


@dataclass(frozen=True)
class CpuOptions(SourceOptions):
    per_cpu: bool = False


class CpuSource(Source):
    name = "cpu"
    Options = CpuOptions
    metrics = (
        counter("system.cpu.time", "s", "Seconds the CPUs spent in each mode.", "cpu.mode",
                optional=PER_CPU),
        gauge("system.cpu.utilization", "1",
              "Share of CPU time spent in each mode since the previous collection.", "cpu.mode",
              optional=PER_CPU),
        updowncounter("system.cpu.logical.count", "{cpu}", "Number of logical CPUs."),
        updowncounter("system.cpu.physical.count", "{cpu}", "Number of physical CPU cores.",
                      condition="when the kernel exposes the CPU topology"),
        gauge("system.cpu.frequency", "Hz", "Current operating frequency of each logical CPU.",
              "cpu.logical_number", condition="where the kernel reports CPU frequency"),
    )

    def __init__(self, host, options):
        super().__init__(host, options)
        # The baseline taken at start-up lets the first export carry a real utilization.
        self._previous = self._times()
        self._physical = psutil.cpu_count(logical=False)

    def _times(self):
        return psutil.cpu_times(percpu=self.options.per_cpu)

    def collect(self) -> list[Point]:
        current = self._times()
        points = [Point("system.cpu.logical.count", psutil.cpu_count(logical=True))]
        if self._physical:
            points.append(Point("system.cpu.physical.count", self._physical))
        if self.options.per_cpu:
            for number, (now, before) in enumerate(zip(current, self._previous)):
                points += _mode_points(now, before, {"cpu.logical_number": number})
        else:
            points += _mode_points(current, self._previous, {})
        points += _frequency_points()
        self._previous = current
        return points


def _mode_points(now, before, attributes) -> list[Point]:
    points = []
    deltas = {}
    for column, mode in MODES.items():
        seconds = getattr(now, column, None)
        if seconds is None:
            continue
        labels = {"cpu.mode": mode, **attributes}
        points.append(Point("system.cpu.time", seconds, labels))
        deltas[mode] = max(seconds - getattr(before, column), 0.0)
    elapsed = sum(deltas.values())
    if elapsed > 0:
        points += [Point("system.cpu.utilization", d / elapsed, {"cpu.mode": m, **attributes})
                   for m, d in deltas.items()]
    return points


def _frequency_points() -> list[Point]:
    try:
        frequencies = psutil.cpu_freq(percpu=True)
    except (OSError, NotImplementedError):
        return []
    return [Point("system.cpu.frequency", f.current * 1e6, {"cpu.logical_number": n})
            for n, f in enumerate(frequencies or []) if f.current]
