"""TCP stack health and socket counts of the host's network namespace (/proc/net/snmp, netstat, sockstat, sockstat6).

No semconv or hostmetrics name exists: the names are the project's, in the model's system.network namespace;
node_exporter's netstat and sockstat collectors read the same counters.
"""

import contextlib
from collections.abc import Collection

from collector.sources.base import Source
from collector.spec import PROJECT, Point, counter, updowncounter

SEGMENTS = counter("system.network.tcp.segments", "{segment}", "TCP segments received and sent (InSegs, OutSegs).",
                   "network.io.direction", precedent=PROJECT)
RETRANSMITS = counter("system.network.tcp.retransmits", "{segment}", "TCP segments retransmitted (RetransSegs).",
                      precedent=PROJECT)
LISTEN_OVERFLOWS = counter("system.network.tcp.listen.overflows", "{connection}",
                           "Connections a listening socket could not accept: its accept queue was full "
                           "(ListenOverflows).", precedent=PROJECT)
LISTEN_DROPS = counter("system.network.tcp.listen.drops", "{connection}",
                       "Connection requests a listening socket dropped, overflows included (ListenDrops).",
                       precedent=PROJECT)
SOCKET_COUNT = updowncounter("system.network.socket.count", "{socket}",
                             "Sockets in use per transport, IPv4 and IPv6 (sockstat and sockstat6 inuse).",
                             "network.transport", precedent=PROJECT)

# (file, "Section: Field") → (metric, attributes)
COUNTERS = {
    ("snmp", "Tcp", "InSegs"): (SEGMENTS.name, {"network.io.direction": "receive"}),
    ("snmp", "Tcp", "OutSegs"): (SEGMENTS.name, {"network.io.direction": "transmit"}),
    ("snmp", "Tcp", "RetransSegs"): (RETRANSMITS.name, {}),
    ("netstat", "TcpExt", "ListenOverflows"): (LISTEN_OVERFLOWS.name, {}),
    ("netstat", "TcpExt", "ListenDrops"): (LISTEN_DROPS.name, {}),
}
SOCKSTAT = {"TCP": "tcp", "UDP": "udp", "TCP6": "tcp", "UDP6": "udp"}
SECTIONS = {table: {section for t, section, _ in COUNTERS if t == table} for table, _, _ in COUNTERS}


class NetstatSource(Source):
    name = "netstat"
    metrics = (SEGMENTS, RETRANSMITS, LISTEN_OVERFLOWS, LISTEN_DROPS, SOCKET_COUNT)

    def collect(self) -> list[Point]:
        tables = {name: parse_snmp(self.host.read_proc(self.host.net_file(name)), SECTIONS[name])
                  for name in SECTIONS}
        points = [Point(metric, int(tables[table][section][field]), attributes)
                  for (table, section, field), (metric, attributes) in COUNTERS.items()]
        sockstat = [self.host.read_proc(self.host.net_file("sockstat"))]
        with contextlib.suppress(FileNotFoundError):  # no IPv6 on this host (ipv6.disable=1): no sockstat6
            sockstat.append(self.host.read_proc(self.host.net_file("sockstat6")))
        return points + parse_sockstat("\n".join(sockstat))


def parse_snmp(text: str, wanted: Collection[str] | None = None) -> dict[str, dict[str, str]]:
    """/proc/net/snmp and netstat: for each section a line of field names, then a line of values (left as text:
    the source reports 5 of their ~200); only the `wanted` sections, if given (netstat's TcpExt is one of five)."""
    sections = {}
    lines = text.splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        section = names[:names.find(":")]
        if wanted is None or section in wanted:
            sections[section] = dict(zip(names.split()[1:], values.split()[1:]))
    return sections


def parse_sockstat(text: str) -> list[Point]:
    """/proc/net/sockstat and sockstat6: IPv4 and IPv6 sockets summed per transport, as the connection count sums
    tcp and tcp6 (a dual-stack listener's IPv4 clients are TCP6 sockets, counted in sockstat6 only)."""
    in_use = {}
    for line in text.splitlines():
        protocol, _, rest = line.partition(":")
        if protocol in SOCKSTAT:
            fields = rest.split()
            transport = SOCKSTAT[protocol]
            in_use[transport] = in_use.get(transport, 0) + int(fields[fields.index("inuse") + 1])
    return [Point(SOCKET_COUNT.name, count, {"network.transport": transport}) for transport, count in in_use.items()]
