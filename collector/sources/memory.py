"""Memory usage by state, utilization, limit and available (psutil over /proc/meminfo)."""

import psutil

from collector.sources.base import Source
from collector.spec import Point, gauge, updowncounter


class MemorySource(Source):
    name = "memory"
    metrics = (
        updowncounter("system.memory.usage", "By",
                      "Memory by state; used, free, buffers and cached add up to the limit.",
                      "system.memory.state"),
        gauge("system.memory.utilization", "1", "Share of memory in each state.", "system.memory.state"),
        updowncounter("system.memory.limit", "By", "Total physical memory."),
        updowncounter("system.memory.linux.available", "By",
                      "Memory available for new work without swapping (MemAvailable)."),
    )

    def collect(self) -> list[Point]:
        memory = psutil.virtual_memory()
        states = {"free": memory.free, "buffers": memory.buffers, "cached": memory.cached}
        # Derived rather than psutil's `used`, so that the states always sum to the total.
        states["used"] = max(memory.total - sum(states.values()), 0)
        points = [Point("system.memory.limit", memory.total),
                  Point("system.memory.linux.available", memory.available)]
        for state, value in states.items():
            labels = {"system.memory.state": state}
            points.append(Point("system.memory.usage", value, labels))
            points.append(Point("system.memory.utilization", value / memory.total, labels))
        return points
