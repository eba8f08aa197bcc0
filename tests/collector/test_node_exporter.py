"""The agent's values against node_exporter's on this machine, for the quantities both report.

node_exporter is scraped, then the agent's sources collect at once: gauges must agree within a small
tolerance (the host keeps moving between the two reads), counters must not be behind node_exporter's.
Instantaneous queue lengths (system.disk.pending_operations vs node_disk_io_now) swing by tens between two
reads on a shared machine: they are checked on the fixture tree only.
"""

import re
from pathlib import Path

import pytest

from bench.cost import NodeExporter
from collector.host import Host
from collector.sources import SOURCES
from pipeline.testing import free_port, running

COLLECTORS = ("meminfo", "diskstats", "processes", "netstat", "sockstat", "netclass", "pressure")
SOURCES_COMPARED = ("memory", "disk", "processes", "netstat", "network", "pressure")
SERIES = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


class SomeCollectors(NodeExporter):
    def argv(self) -> list[str]:
        return [*super().argv(), "--collector.disable-defaults", *(f"--collector.{c}" for c in COLLECTORS)]


def parse_exposition(text: str) -> dict[tuple[str, frozenset], float]:
    samples = {}
    for line in text.splitlines():
        if match := SERIES.match(line):
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
            samples[(match["name"], labels)] = float(match["value"])
    return samples


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """node_exporter's samples and the agent's points, read one right after the other."""
    with running(SomeCollectors(free_port(), tmp_path_factory.mktemp("node_exporter"))) as exporter:
        theirs = parse_exposition(exporter.scrape().decode())
    host = Host("/")
    ours = [p for name in SOURCES_COMPARED for p in SOURCES[name](host, SOURCES[name].Options()).collect()]
    return theirs, ours


def node(samples, series, labels=None):
    return samples[(series, frozenset((labels or {}).items()))]


def agent(points, metric, attributes):
    [value] = [p.value for p in points if p.metric == metric and attributes.items() <= dict(p.attributes).items()]
    return value


SLAB, HUGEPAGES = "system.memory.linux.slab.state", "system.memory.linux.hugepages.state"
MOVING_BYTES = {"rel": 0.05, "abs": 1 << 20}  # memory the host allocates between the two reads
GAUGES = [  # (agent metric, its attributes, node_exporter series, tolerance)
    ("system.memory.linux.shared", {}, "node_memory_Shmem_bytes", MOVING_BYTES),
    ("system.memory.linux.slab.usage", {SLAB: "reclaimable"}, "node_memory_SReclaimable_bytes", MOVING_BYTES),
    ("system.memory.linux.slab.usage", {SLAB: "unreclaimable"}, "node_memory_SUnreclaim_bytes", MOVING_BYTES),
    ("system.memory.linux.hugepages.limit", {}, "node_memory_HugePages_Total", {}),
    ("system.memory.linux.hugepages.page_size", {}, "node_memory_Hugepagesize_bytes", {}),
    ("system.memory.linux.hugepages.reserved", {}, "node_memory_HugePages_Rsvd", {}),
    ("system.memory.linux.hugepages.surplus", {}, "node_memory_HugePages_Surp", {}),
    ("system.memory.linux.hugepages.usage", {HUGEPAGES: "free"}, "node_memory_HugePages_Free", {}),
]


@pytest.mark.parametrize("metric, attributes, series, tolerance", GAUGES, ids=[row[2] for row in GAUGES])
def test_gauges_agree_with_node_exporter(both, metric, attributes, series, tolerance):
    theirs, ours = both
    assert agent(ours, metric, attributes) == pytest.approx(node(theirs, series), **tolerance)


def test_process_limit_is_the_smaller_of_node_exporters_two_limits(both):
    theirs, ours = both
    assert agent(ours, "system.process.limit", {}) == min(node(theirs, "node_processes_max_processes"),
                                                         node(theirs, "node_processes_max_threads"))


def test_weighted_io_time_agrees_with_node_exporter_for_every_device_the_agent_reports(both):
    theirs, ours = both
    devices = {p.attributes["system.device"] for p in ours if p.metric == "system.disk.weighted_io_time"}
    assert devices, "no disk on this machine passes the default filter"
    for device in devices:
        labels, ours_device = {"device": device}, {"system.device": device}
        weighted = agent(ours, "system.disk.weighted_io_time", ours_device)
        # a counter read after node_exporter's: not behind it (but for float rounding), only a moment ahead
        assert -1e-6 < weighted - node(theirs, "node_disk_io_time_weighted_seconds_total", labels) < 5


SEGMENTS, SECONDS = 10_000, 5.0  # how far this shared machine moves a counter between the two reads
COUNTERS = [  # (agent metric, its attributes, node_exporter series, how far ahead the agent may be)
    ("system.network.tcp.segments", {"network.io.direction": "receive"}, "node_netstat_Tcp_InSegs", SEGMENTS),
    ("system.network.tcp.segments", {"network.io.direction": "transmit"}, "node_netstat_Tcp_OutSegs", SEGMENTS),
    ("system.network.tcp.retransmits", {}, "node_netstat_Tcp_RetransSegs", SEGMENTS),
    ("system.network.tcp.listen.overflows", {}, "node_netstat_TcpExt_ListenOverflows", SEGMENTS),
    ("system.network.tcp.listen.drops", {}, "node_netstat_TcpExt_ListenDrops", SEGMENTS),
]
if Path("/proc/pressure").is_dir():  # node_exporter's pressure collector: waiting = some, stalled = full
    COUNTERS += [
        ("system.cpu.linux.pressure.total", {"system.pressure.stall_type": "some"},
         "node_pressure_cpu_waiting_seconds_total", SECONDS),
        *((f"system.{resource}.linux.pressure.total", {"system.pressure.stall_type": stall_type},
           f"node_pressure_{resource}_{word}_seconds_total", SECONDS)
          for resource in ("memory", "io") for stall_type, word in (("some", "waiting"), ("full", "stalled"))),
    ]


@pytest.mark.parametrize("metric, attributes, series, ahead", COUNTERS, ids=[row[2] for row in COUNTERS])
def test_counters_are_not_behind_node_exporter(both, metric, attributes, series, ahead):
    theirs, ours = both
    # read after node_exporter's scrape: equal (but for float rounding), or a moment ahead
    assert -1e-6 < agent(ours, metric, attributes) - node(theirs, series) <= ahead


@pytest.mark.parametrize("transport, protocol", [("tcp", "TCP"), ("udp", "UDP")])
def test_sockets_in_use_agree_with_node_exporter(both, transport, protocol):
    theirs, ours = both
    ipv6 = theirs.get((f"node_sockstat_{protocol}6_inuse", frozenset()), 0)  # no series without IPv6
    assert agent(ours, "system.network.socket.count", {"network.transport": transport}) == pytest.approx(
        node(theirs, f"node_sockstat_{protocol}_inuse") + ipv6, abs=20)


def test_link_state_speed_and_mtu_agree_with_node_exporter_for_every_interface_the_agent_reports(both):
    theirs, ours = both
    interfaces = {p.attributes["network.interface.name"] for p in ours if p.metric == "system.network.mtu"}
    assert interfaces, "no interface on this machine passes the default filter"
    for name in interfaces:
        device = {"device": name}
        assert agent(ours, "system.network.mtu", {"network.interface.name": name}) == node(
            theirs, "node_network_mtu_bytes", device)
        for metric, series in (("hw.network.up", "node_network_carrier"),
                               ("hw.network.bandwidth.limit", "node_network_speed_bytes")):
            present = [p.value for p in ours if p.metric == metric and p.attributes["hw.id"] == name]
            expected = theirs.get((series, frozenset(device.items())))
            # node_exporter reports speed -1 where the agent leaves it out (unknown)
            assert present == ([expected] if expected is not None and expected >= 0 else []), (metric, name)
