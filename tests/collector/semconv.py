"""Facts of the OpenTelemetry semantic conventions v1.44.0 that the agent's metrics must follow.

Written by the project from the model (github.com/open-telemetry/semantic-conventions, its newest files
as read for v1.44.0: system/metrics.yaml with hugepages and system.process.limit, process/metrics.yaml
with cpu.mode required and process.disk.io, process.context_switches, process.paging.faults, process.uptime),
not copied from it; `where` names the model file each row was read from. Attributes are those the model lists
for the metric (required, or recommended with no condition); `opt_in` those it marks opt_in.
Rows in PRECEDENTS are names the model does not define, read from the OpenTelemetry Collector's hostmetrics
receiver (receiver/hostmetricsreceiver/internal/scraper/<scraper>/metadata.yaml) or its systemd receiver
(receiver/systemdreceiver/metadata.yaml), whose attribute keys the agent spells as the model's registry does;
`where="hostagent"` rows are the project's own names where no receiver has one.
"""

from typing import NamedTuple

VERSION = "1.44.0"
# The release of opentelemetry-semantic-conventions generated from VERSION: `make semconv-model` unpacks it into
# .cache/semconv-model/ (apart from the one the SDK brings), and test_semconv_package.py compares the facts with it.
PACKAGE_OF_VERSION = "0.66b2"
SYSTEM = "model/system/metrics.yaml"
PROCESS = "model/process/metrics.yaml"
HW_TEMPERATURE = "model/hardware/temperature-metrics.yaml + model/hardware/common.yaml"


class Fact(NamedTuple):
    name: str
    instrument: str
    unit: str
    attributes: tuple[str, ...] = ()
    opt_in: tuple[str, ...] = ()
    where: str = SYSTEM


HW_NETWORK_FILE = "model/hardware/network-metrics.yaml + model/hardware/common.yaml"
HW_NETWORK = ("hw.id", "hw.name", "hw.parent", "hw.model", "hw.network.logical_addresses",
              "hw.network.physical_address", "hw.serial_number", "hw.vendor")
FS = ("system.device", "system.filesystem.type", "system.filesystem.mode", "system.filesystem.mountpoint")
DISK = ("system.device", "disk.io.direction")
NIC = ("network.interface.name", "network.io.direction")

MODEL = {fact.name: fact for fact in (
    Fact("system.uptime", "gauge", "s"),
    Fact("system.cpu.physical.count", "updowncounter", "{cpu}"),
    Fact("system.cpu.logical.count", "updowncounter", "{cpu}"),
    Fact("system.cpu.time", "counter", "s", ("cpu.mode",), ("cpu.logical_number",)),
    Fact("system.cpu.utilization", "gauge", "1", ("cpu.mode",), ("cpu.logical_number",)),
    Fact("system.cpu.frequency", "gauge", "Hz", ("cpu.logical_number",)),
    Fact("system.memory.usage", "updowncounter", "By", ("system.memory.state",)),
    Fact("system.memory.limit", "updowncounter", "By"),
    Fact("system.memory.utilization", "gauge", "1", ("system.memory.state",)),
    Fact("system.memory.linux.available", "updowncounter", "By"),
    Fact("system.memory.linux.shared", "updowncounter", "By"),
    Fact("system.memory.linux.slab.usage", "updowncounter", "By", ("system.memory.linux.slab.state",)),
    Fact("system.memory.linux.hugepages.limit", "updowncounter", "{page}"),
    Fact("system.memory.linux.hugepages.page_size", "updowncounter", "By"),
    Fact("system.memory.linux.hugepages.reserved", "updowncounter", "{page}"),
    Fact("system.memory.linux.hugepages.surplus", "updowncounter", "{page}"),
    Fact("system.memory.linux.hugepages.usage", "updowncounter", "{page}", ("system.memory.linux.hugepages.state",)),
    Fact("system.memory.linux.hugepages.utilization", "gauge", "1", ("system.memory.linux.hugepages.state",)),
    Fact("system.paging.usage", "updowncounter", "By", ("system.paging.state", "system.device")),
    Fact("system.paging.utilization", "gauge", "1", ("system.paging.state", "system.device")),
    Fact("system.paging.faults", "counter", "{fault}", ("system.paging.fault.type",)),
    Fact("system.paging.operations", "counter", "{operation}", ("system.paging.fault.type", "system.paging.direction")),
    Fact("system.disk.io", "counter", "By", DISK),
    Fact("system.disk.operations", "counter", "{operation}", DISK),
    Fact("system.disk.io_time", "counter", "s", ("system.device",)),
    Fact("system.disk.operation_time", "counter", "s", DISK),
    Fact("system.disk.merged", "counter", "{operation}", DISK),
    Fact("system.disk.limit", "updowncounter", "By", ("system.device",)),
    Fact("system.filesystem.usage", "updowncounter", "By", ("system.filesystem.state", *FS)),
    Fact("system.filesystem.utilization", "gauge", "1", ("system.filesystem.state", *FS)),
    Fact("system.filesystem.limit", "updowncounter", "By", FS),
    Fact("system.network.io", "counter", "By", NIC),
    Fact("system.network.packet.count", "counter", "{packet}", ("system.device", "network.io.direction")),
    Fact("system.network.packet.dropped", "counter", "{packet}", NIC),
    Fact("system.network.errors", "counter", "{error}", NIC),
    Fact("system.network.connection.count", "updowncounter", "{connection}",
         ("network.interface.name", "network.connection.state", "network.transport")),
    Fact("system.process.count", "updowncounter", "{process}", ("process.state",)),
    Fact("system.process.created", "counter", "{process}"),
    Fact("system.process.limit", "updowncounter", "{thread}"),
    Fact("process.cpu.time", "counter", "s", ("cpu.mode",), where=PROCESS),
    Fact("process.cpu.utilization", "gauge", "1", ("cpu.mode",), where=PROCESS),
    Fact("process.memory.usage", "updowncounter", "By", where=PROCESS),
    Fact("process.memory.virtual", "updowncounter", "By", where=PROCESS),
    Fact("process.thread.count", "updowncounter", "{thread}", where=PROCESS),
    Fact("process.unix.file_descriptor.count", "updowncounter", "{file_descriptor}", where=PROCESS),
    Fact("process.disk.io", "counter", "By", ("disk.io.direction",), where=PROCESS),
    Fact("process.context_switches", "counter", "{context_switch}", ("process.context_switch.type",),
         where=PROCESS),
    Fact("process.paging.faults", "counter", "{fault}", ("system.paging.fault.type",), where=PROCESS),
    Fact("process.uptime", "gauge", "s", where=PROCESS),
    *(Fact(name, "updowncounter", unit, HW_NETWORK, where=HW_NETWORK_FILE)
      for name, unit in (("hw.network.up", "1"), ("hw.network.bandwidth.limit", "By/s"))),
    Fact("hw.temperature", "gauge", "Cel", ("hw.id", "hw.name", "hw.parent", "hw.sensor_location"),
         where=HW_TEMPERATURE),
)}


CGROUP = ("linux.cgroup.path",)
IDENTITY = ("container.id", "k8s.pod.uid")  # the model's keys, where the cgroup's path carries them


def _hostmetrics(scraper: str) -> str:
    return f"hostmetrics receiver, internal/scraper/{scraper}/metadata.yaml"


def _pressure(resource: str):
    where = _hostmetrics("pressurescraper")
    yield Fact(f"system.{resource}.linux.pressure.total", "counter", "s", ("system.pressure.stall_type",), where=where)
    for window in ("10s", "1m", "5m"):
        yield Fact(f"system.{resource}.linux.pressure.{window}", "gauge", "1", ("system.pressure.stall_type",),
                   where=where)


PRECEDENTS = {fact.name: fact for fact in (
    *(Fact(f"system.cpu.load_average.{w}", "gauge", "{thread}", where=_hostmetrics("loadscraper"))
      for w in ("1m", "5m", "15m")),
    Fact("system.filesystem.inodes.usage", "updowncounter", "{inode}", ("system.filesystem.state", *FS),
         where=_hostmetrics("filesystemscraper")),
    Fact("system.disk.weighted_io_time", "counter", "s", ("system.device",), where=_hostmetrics("diskscraper")),
    Fact("system.disk.pending_operations", "updowncounter", "{operation}", ("system.device",),
         where=_hostmetrics("diskscraper")),
    Fact("system.network.conntrack.count", "updowncounter", "{entry}", where=_hostmetrics("networkscraper")),
    Fact("system.network.conntrack.max", "updowncounter", "{entry}", where=_hostmetrics("networkscraper")),
    *(fact for resource in ("cpu", "memory", "io") for fact in _pressure(resource)),
    # No model or hostmetrics name: the project's, in the model's namespaces, with the model's attribute keys
    # (file descriptors: the unit of process.unix.file_descriptor.count).
    Fact("system.linux.file_descriptor.usage", "updowncounter", "{file_descriptor}", where="hostagent"),
    Fact("system.linux.file_descriptor.limit", "updowncounter", "{file_descriptor}", where="hostagent"),
    Fact("system.network.tcp.segments", "counter", "{segment}", ("network.io.direction",), where="hostagent"),
    Fact("system.network.tcp.retransmits", "counter", "{segment}", where="hostagent"),
    Fact("system.network.tcp.listen.overflows", "counter", "{connection}", where="hostagent"),
    Fact("system.network.tcp.listen.drops", "counter", "{connection}", where="hostagent"),
    Fact("system.network.mtu", "updowncounter", "By", ("network.interface.name",), where="hostagent"),
    Fact("system.network.socket.count", "updowncounter", "{socket}", ("network.transport",), where="hostagent"),
    # cgroup v2 (no model metric): the project's, in the linux.* namespace; cpu.mode is the model's key.
    Fact("linux.cgroup.cpu.time", "counter", "s", (*CGROUP, "cpu.mode"), IDENTITY, where="hostagent"),
    Fact("linux.cgroup.cpu.throttled_time", "counter", "s", CGROUP, IDENTITY, where="hostagent"),
    Fact("linux.cgroup.memory.usage", "updowncounter", "By", CGROUP, IDENTITY, where="hostagent"),
    Fact("linux.cgroup.memory.limit", "updowncounter", "By", CGROUP, IDENTITY, where="hostagent"),
    Fact("linux.cgroup.memory.events", "counter", "{event}", (*CGROUP, "linux.cgroup.memory.event"), IDENTITY,
         where="hostagent"),
    # The pressure scraper's totals (system.<resource>.linux.pressure.total), per cgroup.
    *(Fact(f"linux.cgroup.{resource}.pressure.total", "counter", "s", (*CGROUP, "system.pressure.stall_type"),
           IDENTITY, where=_hostmetrics("pressurescraper") + ", per cgroup") for resource in ("cpu", "memory", "io")),
    Fact("systemd.unit.state", "updowncounter", "1", ("systemd.unit.active_state",),
         where="systemd receiver, receiver/systemdreceiver/metadata.yaml"),
)}

# Where the agent departs from a metric's listed attributes, and why: (metric, attribute) → reason.
DEPARTURES = {
    ("system.network.connection.count", "network.interface.name"):
        "not readable: /proc/net/tcp and udp do not say which interface a socket uses",
    ("system.network.packet.count", "system.device"):
        "the interface is network.interface.name, as on the model's other three system.network.* metrics, "
        "so that the four join",
    ("system.network.packet.count", "network.interface.name"): "see system.device",
    **{(metric, attribute): "not readable from sysfs (needs the driver's ethtool answers or PCI id tables)"
       for metric in ("hw.network.up", "hw.network.bandwidth.limit")
       for attribute in ("hw.model", "hw.network.logical_addresses", "hw.serial_number", "hw.vendor")},
    **{(metric, "network.interface.name"): "added: joins the adapter's series to system.network.*"
       for metric in ("hw.network.up", "hw.network.bandwidth.limit")},
    **{(metric, "hostagent.process_group"): "process_groups sums a configured group's processes (as "
       "process-exporter does): the group, not a process identity, tells the series apart"
       for metric in ("process.cpu.time", "process.memory.usage", "process.memory.virtual", "process.disk.io",
                      "process.context_switches", "process.paging.faults", "process.thread.count",
                      "process.unix.file_descriptor.count", "process.uptime")},
    ("systemd.unit.state", "systemd.unit.name"):
        "a point attribute: the receiver makes it a resource attribute (one resource per unit); the agent's one "
        "resource is the host",
}

# Point attributes the agent adds to every metric of the process entity, and why.
PROCESS_IDENTITY = {
    "process.pid": "the model's process identity, sent on points (docs/metrics.md)",
    "process.creation.time": "the model's process identity, sent on points (docs/metrics.md)",
    "process.executable.name": "the model's descriptive process attribute, sent on points",
}

# Enumerated attributes: the members the model lists (deprecated members left out), narrowed where a
# metric's note says which SHOULD be used.
ENUMS = {
    "cpu.mode": {"user", "system", "nice", "idle", "iowait", "interrupt", "steal"},  # model/cpu/registry.yaml
    "system.memory.state": {"used", "free", "buffers", "cached"},  # model/system/registry.yaml
    "system.memory.linux.slab.state": {"reclaimable", "unreclaimable"},
    "system.memory.linux.hugepages.state": {"used", "free"},
    "system.paging.state": {"used", "free"},
    "system.paging.fault.type": {"major", "minor"},
    "system.paging.direction": {"in", "out"},
    "system.filesystem.state": {"used", "free", "reserved"},
    "disk.io.direction": {"read", "write"},  # model/disk/registry.yaml
    "network.io.direction": {"transmit", "receive"},  # model/network/registry.yaml
    "network.transport": {"tcp", "udp", "pipe", "unix", "quic"},
    "network.connection.state": {"closed", "close_wait", "closing", "established", "fin_wait_1", "fin_wait_2",
                                 "last_ack", "listen", "syn_received", "syn_sent", "time_wait"},
    "process.state": {"running", "sleeping", "stopped", "defunct"},  # model/process/registry.yaml
    "process.context_switch.type": {"voluntary", "involuntary"},
    "system.pressure.stall_type": {"some", "full"},
}
# process.cpu.* notes: "The following values for cpu.mode SHOULD be used: user, system, wait".
METRIC_ENUMS = {
    ("process.cpu.time", "cpu.mode"): {"user", "system", "wait"},
    ("process.cpu.utilization", "cpu.mode"): {"user", "system", "wait"},
}
