"""Network interface counters (the host's /proc/net/dev), link state, speed and MTU (/sys/class/net) and,
opt-in, connections by state."""

import contextlib
import os
from dataclasses import dataclass, field

from collector.host import Host
from collector.sources.base import PartialFailure, Source, SourceOptions
from collector.sources.filters import REGEX, NameFilter, capped
from collector.spec import PROJECT, Point, counter, updowncounter

INTERFACE = ("network.interface.name", "network.io.direction")
# hw.network.* identify the adapter by hw.id; network.interface.name is kept so they join system.network.*.
LINK = ("hw.id", "hw.name", "network.interface.name")
LINK_OPTIONAL = ("hw.network.physical_address", "hw.parent")
ADMIN_UP = "for interfaces that are administratively up"
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


IO = counter("system.network.io", "By", "Bytes received and transmitted.", *INTERFACE)
PACKET_COUNT = counter("system.network.packet.count", "{packet}", "Packets received and transmitted.", *INTERFACE)
PACKET_DROPPED = counter("system.network.packet.dropped", "{packet}", "Packets dropped without an error.", *INTERFACE)
ERRORS = counter("system.network.errors", "{error}", "Receive and transmit errors.", *INTERFACE)
CONNECTION_COUNT = updowncounter("system.network.connection.count", "{connection}",
                                 "Sockets by transport and TCP state (UDP sockets have no state).",
                                 "network.transport", optional=("network.connection.state",),
                                 condition="only with connections: true")
UP = updowncounter("hw.network.up", "1", "Link (carrier) present: 1 up, 0 down.", *LINK,
                   optional=LINK_OPTIONAL, condition=ADMIN_UP)
BANDWIDTH_LIMIT = updowncounter("hw.network.bandwidth.limit", "By/s", "Link speed the adapter negotiated.", *LINK,
                                optional=LINK_OPTIONAL, condition="where the driver reports a link speed")
MTU = updowncounter("system.network.mtu", "By", "Maximum transmission unit of the interface.",
                    "network.interface.name", precedent=PROJECT)
# /proc/net/dev column (per direction) → metric
COLUMNS = {0: IO.name, 1: PACKET_COUNT.name, 2: ERRORS.name, 3: PACKET_DROPPED.name}


class NetworkSource(Source):
    name = "network"
    Options = NetworkOptions
    metrics = (IO, PACKET_COUNT, PACKET_DROPPED, ERRORS, CONNECTION_COUNT, UP, BANDWIDTH_LIMIT, MTU)

    def __init__(self, host, options):
        super().__init__(host, options)
        self.filter = NameFilter(options.include, options.exclude)

    def collect(self) -> list[Point]:
        interfaces = [(name, values) for name, values in parse_net_dev(self.host.read_proc(self.host.net_file("dev")))
                      if self.filter.allows(name)]
        interfaces, overflow = capped(interfaces, self.options.max_interfaces, "interfaces")
        points = [p for name, values in interfaces for p in interface_points(name, values)]
        points += [p for name, _ in interfaces for p in link_points(self.host, name)]
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
        return [Point(CONNECTION_COUNT.name, count,
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


def link_points(host: Host, name: str) -> list[Point]:
    """Link state, speed and MTU from sysfs (/sys/class/net/<name>); a value the driver does not give (EINVAL) is
    left out."""
    directory = f"class/net/{name}"
    points = []
    if (mtu := _read_int(host, f"{directory}/mtu")) is not None:
        points.append(Point(MTU.name, mtu, {"network.interface.name": name}))
    link = {"hw.id": name, "hw.name": name, "network.interface.name": name}
    if address := physical_address(_read(host, f"{directory}/address") or ""):
        link["hw.network.physical_address"] = address
    # the bus device of a physical adapter (a PCI address): the device link's target; a virtual interface has none
    with contextlib.suppress(OSError):
        link["hw.parent"] = os.path.basename(os.readlink(host.host_path(f"/sys/{directory}/device")))
    # carrier cannot be read while the interface is administratively down: not a fault, no point
    if (carrier := _read_int(host, f"{directory}/carrier")) is not None:
        points.append(Point(UP.name, carrier, link))
    if (speed := _read_int(host, f"{directory}/speed")) is not None and speed > 0:  # Mbit/s; -1: unknown
        points.append(Point(BANDWIDTH_LIMIT.name, speed * 1_000_000 // 8, link))
    return points


def physical_address(sysfs_address: str) -> str | None:
    """A sysfs MAC address (02:fc:00:00:00:01) in the semantic conventions' form, IEEE RA hexadecimal
    (02-FC-00-00-00-01); None for none (empty, or all zeros as on a tunnel)."""
    address = sysfs_address.strip()
    if address in ("", "00:00:00:00:00:00"):
        return None
    return address.upper().replace(":", "-")


def _read(host: Host, relative: str) -> str | None:
    try:
        return host.read_sys(relative).strip()
    except OSError:
        return None


def _read_int(host: Host, relative: str) -> int | None:
    text = _read(host, relative)
    return int(text) if text and text.lstrip("-").isdigit() else None


def parse_socket_states(text: str):
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3:
            yield fields[3]
