"""Netfilter connection-tracking table fill (entries and limit; the hostmetrics names)."""

from collector.sources.base import Source, Unavailable
from collector.spec import Point, updowncounter

CONDITION = "when the nf_conntrack module is loaded"


class ConntrackSource(Source):
    name = "conntrack"
    metrics = (
        updowncounter("system.network.conntrack.count", "{entry}", "Entries in the conntrack table.",
                      condition=CONDITION),
        updowncounter("system.network.conntrack.limit", "{entry}", "Size limit of the conntrack table.",
                      condition=CONDITION),
    )

    def collect(self) -> list[Point]:
        try:
            count = self.host.read_proc("sys/net/netfilter/nf_conntrack_count")
            limit = self.host.read_proc("sys/net/netfilter/nf_conntrack_max")
        except FileNotFoundError as missing:
            raise Unavailable(f"{missing.filename} is missing") from None
        return [Point("system.network.conntrack.count", int(count)),
                Point("system.network.conntrack.limit", int(limit))]
