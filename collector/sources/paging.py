"""Swap usage per swap device, page faults and swap operations (/proc/swaps, /proc/vmstat)."""

from collector.sources.base import Source, read_counters, unescape_path
from collector.spec import Point, counter, gauge, updowncounter

SWAP = "only when swap is configured"

USAGE = updowncounter("system.paging.usage", "By", "Swap space used and free, per swap device or file.",
                      "system.paging.state", "system.device", condition=SWAP)
UTILIZATION = gauge("system.paging.utilization", "1", "Share of a swap device's space used and free.",
                    "system.paging.state", "system.device", condition=SWAP)
FAULTS = counter("system.paging.faults", "{fault}", "Page faults by type.", "system.paging.fault.type")
# Swap-ins and -outs are major operations; pgpgin/pgpgout (minor) count KiB, not operations.
OPERATIONS = counter("system.paging.operations", "{operation}", "Pages swapped in and out (fault type major).",
                     "system.paging.fault.type", "system.paging.direction")


class PagingSource(Source):
    name = "paging"
    metrics = (USAGE, UTILIZATION, FAULTS, OPERATIONS)

    def collect(self) -> list[Point]:
        return parse_swaps(self.host.read_proc("swaps")) + parse_vmstat(self.host.read_proc("vmstat"))


def parse_swaps(text: str) -> list[Point]:
    points = []
    for line in text.splitlines()[1:]:  # Filename Type Size Used Priority, sizes in KiB
        filename, _type, size_kib, used_kib, *_ = line.split()
        total, used = int(size_kib) * 1024, int(used_kib) * 1024
        device = unescape_path(filename)
        for state, value in (("used", used), ("free", total - used)):
            labels = {"system.paging.state": state, "system.device": device}
            points.append(Point(USAGE.name, value, labels))
            if total:
                points.append(Point(UTILIZATION.name, value / total, labels))
    return points


VMSTAT_KEYS = frozenset({"pgfault", "pgmajfault", "pswpin", "pswpout"})


def parse_vmstat(text: str) -> list[Point]:
    vmstat = read_counters(text, VMSTAT_KEYS)
    major = vmstat["pgmajfault"]
    return [
        Point(FAULTS.name, major, {"system.paging.fault.type": "major"}),
        Point(FAULTS.name, vmstat["pgfault"] - major, {"system.paging.fault.type": "minor"}),
        Point(OPERATIONS.name, vmstat["pswpin"],
              {"system.paging.fault.type": "major", "system.paging.direction": "in"}),
        Point(OPERATIONS.name, vmstat["pswpout"],
              {"system.paging.fault.type": "major", "system.paging.direction": "out"}),
    ]
