"""Swap usage, page faults and swap operations (/proc/meminfo, /proc/vmstat)."""

from collector.sources.base import Source, read_counters
from collector.spec import Point, counter, gauge, updowncounter


class PagingSource(Source):
    name = "paging"
    metrics = (
        updowncounter("system.paging.usage", "By", "Swap space used and free.", "system.paging.state"),
        gauge("system.paging.utilization", "1", "Share of swap space used and free.", "system.paging.state",
              condition="only when swap is configured"),
        counter("system.paging.faults", "{fault}", "Page faults by type.", "system.paging.fault.type"),
        counter("system.paging.operations", "{operation}", "Pages swapped in and out.",
                "system.paging.direction"),
    )

    def collect(self) -> list[Point]:
        return parse_paging(self.host.read_proc("meminfo"), self.host.read_proc("vmstat"))


def parse_paging(meminfo_text: str, vmstat_text: str) -> list[Point]:
    meminfo = read_counters(meminfo_text)
    vmstat = read_counters(vmstat_text)
    total, free = meminfo["SwapTotal"], meminfo["SwapFree"]
    points = []
    for state, value in (("used", total - free), ("free", free)):
        labels = {"system.paging.state": state}
        points.append(Point("system.paging.usage", value, labels))
        if total:
            points.append(Point("system.paging.utilization", value / total, labels))
    major = vmstat["pgmajfault"]
    points += [
        Point("system.paging.faults", major, {"system.paging.fault.type": "major"}),
        Point("system.paging.faults", vmstat["pgfault"] - major, {"system.paging.fault.type": "minor"}),
        Point("system.paging.operations", vmstat["pswpin"], {"system.paging.direction": "in"}),
        Point("system.paging.operations", vmstat["pswpout"], {"system.paging.direction": "out"}),
    ]
    return points
