"""Netfilter connection-tracking table fill (entries and limit; the hostmetrics receiver's names)."""

from collector.sources.base import Source, Unavailable
from collector.spec import HOSTMETRICS, Point, updowncounter

CONDITION = "when the nf_conntrack module is loaded"
PRECEDENT = HOSTMETRICS.format("network")

COUNT = updowncounter("system.network.conntrack.count", "{entry}", "Entries in the conntrack table.",
                      condition=CONDITION, precedent=PRECEDENT)
MAX = updowncounter("system.network.conntrack.max", "{entry}", "Size limit of the conntrack table.",
                    condition=CONDITION, precedent=PRECEDENT)


class ConntrackSource(Source):
    name = "conntrack"
    metrics = (COUNT, MAX)

    def collect(self) -> list[Point]:
        try:
            # /proc/sys/net answers for the reader's network namespace; net/stat follows pid 1 to the host's.
            stats = self.host.read_proc(self.host.net_file("stat/nf_conntrack"))
            limit = self.host.read_proc("sys/net/netfilter/nf_conntrack_max")  # global, whoever reads it
        except FileNotFoundError as missing:
            raise Unavailable(f"{missing.filename} is missing") from None
        return [Point(COUNT.name, parse_entries(stats)),
                Point(MAX.name, int(limit))]


def parse_entries(stats: str) -> int:
    """The table's size: the `entries` column (hex), the same on every per-CPU line."""
    return int(stats.splitlines()[1].split()[0], 16)
