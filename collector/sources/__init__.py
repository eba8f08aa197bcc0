"""The registry of sources: adding one is a module in this package plus one line here."""

from collector.naming import prometheus_name
from collector.sources.agent import AgentSource
from collector.sources.cgroup import CgroupSource
from collector.sources.conntrack import ConntrackSource
from collector.sources.cpu import CpuSource
from collector.sources.disk import DiskSource
from collector.sources.file_descriptors import FileDescriptorsSource
from collector.sources.filesystem import FilesystemSource
from collector.sources.load import LoadSource
from collector.sources.memory import MemorySource
from collector.sources.netstat import NetstatSource
from collector.sources.network import NetworkSource
from collector.sources.paging import PagingSource
from collector.sources.pressure import PressureSource
from collector.sources.process_groups import ProcessGroupsSource
from collector.sources.processes import ProcessesSource
from collector.sources.systemd import SystemdSource
from collector.sources.temperature import TemperatureSource
from collector.sources.textfile import TextfileSource
from collector.sources.top_processes import TopProcessesSource

SOURCES = {source.name: source for source in (
    CpuSource, LoadSource, MemorySource, PagingSource, DiskSource, FilesystemSource, NetworkSource, NetstatSource,
    ProcessesSource, TopProcessesSource, PressureSource, ConntrackSource, TemperatureSource,
    FileDescriptorsSource, TextfileSource, ProcessGroupsSource, CgroupSource, SystemdSource,
)}
ALL_SOURCES = (*SOURCES.values(), AgentSource)


def declared_metrics():
    """Every metric the agent can emit, in source order: the single source of truth for docs and tests."""
    return [(source.name, spec) for source in ALL_SOURCES for spec in source.metrics]


class UndeclaredMetric(LookupError):
    """A rule or a dashboard names a metric no source declares (renamed or removed in its declaration)."""


def prometheus_name_of(otlp_name: str) -> str:
    """The Prometheus name under which rules and dashboards read a declared metric, from its declaration."""
    for _, spec in declared_metrics():
        if spec.name == otlp_name:
            return prometheus_name(spec)
    raise UndeclaredMetric(f"{otlp_name} is declared by no source (collector/sources)")
