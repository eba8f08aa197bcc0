"""Memory usage by state, utilization, limit and available; shared, slab and hugepages (/proc/meminfo, read as
psutil's virtual_memory reads it, which mimics procps' free)."""

import os

from collector.sources.base import Source, read_counters
from collector.spec import Point, gauge, updowncounter

HUGEPAGES = "when the kernel supports hugepages"
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


USAGE = updowncounter("system.memory.usage", "By",
                      "Memory by state; used, free, buffers and cached add up to the limit.", "system.memory.state")
UTILIZATION = gauge("system.memory.utilization", "1", "Share of memory in each state.", "system.memory.state")
LIMIT = updowncounter("system.memory.limit", "By", "Total physical memory.")
AVAILABLE = updowncounter("system.memory.linux.available", "By",
                          "Memory available for new work without swapping (MemAvailable).")
SHARED = updowncounter("system.memory.linux.shared", "By", "Shared memory, mostly tmpfs (Shmem; free's `shared`).")
SLAB = updowncounter("system.memory.linux.slab.usage", "By",
                     "Kernel slab caches: reclaimable (SReclaimable) and unreclaimable (SUnreclaim).",
                     "system.memory.linux.slab.state")
HUGEPAGES_LIMIT = updowncounter("system.memory.linux.hugepages.limit", "{page}", "Hugepages in the persistent pool.",
                                condition=HUGEPAGES)
HUGEPAGES_PAGE_SIZE = updowncounter("system.memory.linux.hugepages.page_size", "By", "Size of a hugepage.",
                                    condition=HUGEPAGES)
HUGEPAGES_USAGE = updowncounter("system.memory.linux.hugepages.usage", "{page}",
                                "Hugepages of the pool used and free; they add up to the limit.",
                                "system.memory.linux.hugepages.state", condition=HUGEPAGES)
HUGEPAGES_UTILIZATION = gauge("system.memory.linux.hugepages.utilization", "1",
                              "Share of the hugepage pool used and free.", "system.memory.linux.hugepages.state",
                              condition="when a hugepage pool is configured")
HUGEPAGES_RESERVED = updowncounter("system.memory.linux.hugepages.reserved", "{page}",
                                   "Free hugepages promised to a mapping but not yet faulted in.", condition=HUGEPAGES)
HUGEPAGES_SURPLUS = updowncounter("system.memory.linux.hugepages.surplus", "{page}",
                                  "Hugepages allocated beyond the pool (overcommit).", condition=HUGEPAGES)


class MemorySource(Source):
    name = "memory"
    metrics = (USAGE, UTILIZATION, LIMIT, AVAILABLE, SHARED, SLAB, HUGEPAGES_LIMIT, HUGEPAGES_PAGE_SIZE,
               HUGEPAGES_USAGE, HUGEPAGES_UTILIZATION, HUGEPAGES_RESERVED, HUGEPAGES_SURPLUS)

    def collect(self) -> list[Point]:
        meminfo = read_counters(self.host.read_proc("meminfo"))
        total, free = meminfo["MemTotal"], meminfo["MemFree"]
        # Reclaimable slab counts as cached (since 2.6.19), as in psutil and free.
        cached = meminfo["Cached"] + meminfo.get("SReclaimable", 0) if "Cached" in meminfo else 0
        states = {"free": free, "buffers": meminfo.get("Buffers", 0), "cached": cached}
        # Derived rather than total - available, so that the states always sum to the total.
        states["used"] = max(total - sum(states.values()), 0)
        points = [Point(LIMIT.name, total), Point(AVAILABLE.name, self._available(meminfo))]
        for state, value in states.items():
            labels = {"system.memory.state": state}
            points.append(Point(USAGE.name, value, labels))
            points.append(Point(UTILIZATION.name, value / total, labels))
        return points + meminfo_points(meminfo)

    def _available(self, meminfo: dict[str, int]) -> int:
        # MemAvailable is missing before 3.14 and 0 on some kernels (psutil issue 1915): estimated then.
        available = meminfo.get("MemAvailable") or self._estimated_available(meminfo)
        if available < 0:
            return 0
        # Above the total inside some LXC containers, whose figures are distorted: free is the closest.
        return meminfo["MemFree"] if available > meminfo["MemTotal"] else available

    def _estimated_available(self, meminfo: dict[str, int]) -> int:
        """The kernel's MemAvailable (commit 34e431b0ae39), as psutil computes it; free + cached without the
        figures it needs."""
        free = meminfo["MemFree"]
        try:
            page_cache = meminfo["Active(file)"] + meminfo["Inactive(file)"]
            reclaimable = meminfo["SReclaimable"]
            zoneinfo = self.host.read_proc("zoneinfo")
        except (KeyError, OSError):
            return free + meminfo.get("Cached", 0)
        low = sum(int(line.split()[1]) for line in map(str.strip, zoneinfo.splitlines())
                  if line.startswith("low")) * PAGE_BYTES
        available = free - low + page_cache - min(page_cache / 2, low)
        return int(available + reclaimable - min(reclaimable / 2.0, low))


def meminfo_points(meminfo: dict[str, int]) -> list[Point]:
    points = [
        Point(SHARED.name, meminfo["Shmem"]),
        Point(SLAB.name, meminfo["SReclaimable"],
              {"system.memory.linux.slab.state": "reclaimable"}),
        Point(SLAB.name, meminfo["SUnreclaim"],
              {"system.memory.linux.slab.state": "unreclaimable"}),
    ]
    if "HugePages_Total" in meminfo:  # CONFIG_HUGETLBFS
        points += hugepage_points(meminfo)
    return points


def hugepage_points(meminfo: dict[str, int]) -> list[Point]:
    total, free = meminfo["HugePages_Total"], meminfo["HugePages_Free"]
    points = [
        Point(HUGEPAGES_LIMIT.name, total),
        Point(HUGEPAGES_PAGE_SIZE.name, meminfo["Hugepagesize"]),
        Point(HUGEPAGES_RESERVED.name, meminfo["HugePages_Rsvd"]),
        Point(HUGEPAGES_SURPLUS.name, meminfo["HugePages_Surp"]),
    ]
    for state, pages in (("used", total - free), ("free", free)):
        labels = {"system.memory.linux.hugepages.state": state}
        points.append(Point(HUGEPAGES_USAGE.name, pages, labels))
        if total:
            points.append(Point(HUGEPAGES_UTILIZATION.name, pages / total, labels))
    return points
