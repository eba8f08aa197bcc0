"""Memory usage by state, utilization, limit and available (psutil over /proc/meminfo); shared, slab and
hugepages (/proc/meminfo)."""

import psutil

from collector.sources.base import Source, read_counters
from collector.spec import Point, gauge, updowncounter

HUGEPAGES = "when the kernel supports hugepages"


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
        updowncounter("system.memory.linux.shared", "By", "Shared memory, mostly tmpfs (Shmem; free's `shared`)."),
        updowncounter("system.memory.linux.slab.usage", "By",
                      "Kernel slab caches: reclaimable (SReclaimable) and unreclaimable (SUnreclaim).",
                      "system.memory.linux.slab.state"),
        updowncounter("system.memory.linux.hugepages.limit", "{page}", "Hugepages in the persistent pool.",
                      condition=HUGEPAGES),
        updowncounter("system.memory.linux.hugepages.page_size", "By", "Size of a hugepage.", condition=HUGEPAGES),
        updowncounter("system.memory.linux.hugepages.usage", "{page}",
                      "Hugepages of the pool used and free; they add up to the limit.",
                      "system.memory.linux.hugepages.state", condition=HUGEPAGES),
        gauge("system.memory.linux.hugepages.utilization", "1", "Share of the hugepage pool used and free.",
              "system.memory.linux.hugepages.state", condition="when a hugepage pool is configured"),
        updowncounter("system.memory.linux.hugepages.reserved", "{page}",
                      "Free hugepages promised to a mapping but not yet faulted in.", condition=HUGEPAGES),
        updowncounter("system.memory.linux.hugepages.surplus", "{page}",
                      "Hugepages allocated beyond the pool (overcommit).", condition=HUGEPAGES),
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
        return points + meminfo_points(read_counters(self.host.read_proc("meminfo"), MEMINFO_KEYS))


# What meminfo_points reads (psutil reads the rest of /proc/meminfo).
MEMINFO_KEYS = frozenset({"Shmem", "SReclaimable", "SUnreclaim", "HugePages_Total", "HugePages_Free",
                          "HugePages_Rsvd", "HugePages_Surp", "Hugepagesize"})


def meminfo_points(meminfo: dict[str, int]) -> list[Point]:
    points = [
        Point("system.memory.linux.shared", meminfo["Shmem"]),
        Point("system.memory.linux.slab.usage", meminfo["SReclaimable"],
              {"system.memory.linux.slab.state": "reclaimable"}),
        Point("system.memory.linux.slab.usage", meminfo["SUnreclaim"],
              {"system.memory.linux.slab.state": "unreclaimable"}),
    ]
    if "HugePages_Total" in meminfo:  # CONFIG_HUGETLBFS
        points += hugepage_points(meminfo)
    return points


def hugepage_points(meminfo: dict[str, int]) -> list[Point]:
    total, free = meminfo["HugePages_Total"], meminfo["HugePages_Free"]
    points = [
        Point("system.memory.linux.hugepages.limit", total),
        Point("system.memory.linux.hugepages.page_size", meminfo["Hugepagesize"]),
        Point("system.memory.linux.hugepages.reserved", meminfo["HugePages_Rsvd"]),
        Point("system.memory.linux.hugepages.surplus", meminfo["HugePages_Surp"]),
    ]
    for state, pages in (("used", total - free), ("free", free)):
        labels = {"system.memory.linux.hugepages.state": state}
        points.append(Point("system.memory.linux.hugepages.usage", pages, labels))
        if total:
            points.append(Point("system.memory.linux.hugepages.utilization", pages / total, labels))
    return points
