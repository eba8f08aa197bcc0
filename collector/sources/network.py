"""Network interface counters (the host's /proc/net/dev) and, opt-in, connections by state."""

from dataclasses import dataclass, field

from collector.sources.base import PartialFailure, Source, SourceOptions
from collector.sources.filters import REGEX, NameFilter, capped
from collector.spec import Point, counter, updowncounter

INTERFACE = ("network.interface.name", "network.io.direction")
# /proc/net/dev column (per direction) → metric
COLUMNS = {0: "system.network.io", 1: "system.network.packet.count", 2: "system.network.errors",
           3: "system.network.packet.dropped"}
# /proc/net/tcp state codes (include/net/tcp_states.h) → semconv network.connection.state
TCP_STATES = {
    "01": "established", "02": "syn_sent", "03": "syn_received", "04": "fin_wait_1", "05": "fin_wait_2",
    "06": "time_wait", "07": "closed", "08": "close_wait", "09": "last_ack", "0A": "listen", "0B": "closing",
}


@dataclass(frozen=True)
class NetworkOptions(SourceOptions):
    include: tuple[str, ...] = field(default=(), metadata=REGEX)
    # Loopback and per-pod virtual interfaces: on a Kubernetes node they come and go with every pod.
    exclude: tuple[str, ...] = field(
        default=(r"^lo$", r"^veth", r"^cali", r"^lxc", r"^cilium_", r"^flannel", r"^cni"), metadata=REGEX)
    connections: bool = False
    max_interfaces: int = field(default=100, metadata={"min": 1})


class NetworkSource(Source):
    name = "network"
    Options = NetworkOptions
    metrics = (
        counter("system.network.io", "By", "Bytes received and transmitted.", *INTERFACE),
        counter("system.network.packet.count", "{packet}", "Packets received and transmitted.", *INTERFACE),
        counter("system.network.packet.dropped", "{packet}", "Packets dropped without an error.", *INTERFACE),
        counter("system.network.errors", "{error}", "Receive and transmit errors.", *INTERFACE),
        updowncounter("system.network.connection.count", "{connection}",
                      "Sockets by transport and TCP state (UDP sockets have no state).",
                      "network.transport", optional=("network.connection.state",),
                      condition="only with connections: true"),
    )

    def __init__(self, host, options):
        super().__init__(host, options)
        self.filter = NameFilter(options.include, options.exclude)

    def collect(self) -> list[Point]:
        interfaces = [(name, values) for name, values in parse_net_dev(self.host.read_proc(self.host.net_file("dev")))
                      if self.filter.allows(name)]
        interfaces, overflow = capped(interfaces, self.options.max_interfaces, "interfaces")
        points = [p for name, values in interfaces for p in interface_points(name, values)]
        if self.options.connections:
            points += self._connection_points()
        if overflow:
            raise PartialFailure(points, overflow)
        return points

    def _connection_points(self) -> list[Point]:
        counts = {}
        for transport in ("tcp", "udp"):
            for table in (transport, transport + "6"):
                try:
                    text = self.host.read_proc(self.host.net_file(table))
                except FileNotFoundError:  # no IPv6 on this host
                    continue
                for state in parse_socket_states(text):
                    key = (transport, TCP_STATES.get(state) if transport == "tcp" else None)
                    counts[key] = counts.get(key, 0) + 1
        return [Point("system.network.connection.count", count,
                      {"network.transport": transport, **({"network.connection.state": state} if state else {})})
                for (transport, state), count in sorted(counts.items(), key=str)]


def parse_net_dev(text: str):
    for line in text.splitlines()[2:]:
        name, _, counters = line.partition(":")
        values = counters.split()
        if len(values) == 16:
            yield name.strip(), [int(v) for v in values]


def interface_points(name: str, values: list[int]) -> list[Point]:
    points = []
    for direction, offset in (("receive", 0), ("transmit", 8)):
        labels = {"network.interface.name": name, "network.io.direction": direction}
        points += [Point(metric, values[offset + column], labels) for column, metric in COLUMNS.items()]
    return points


def parse_socket_states(text: str):
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3:
            yield fields[3]
