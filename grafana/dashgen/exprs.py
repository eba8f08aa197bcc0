"""PromQL shared by the dashboards. Every expression runs unchanged on Prometheus and VictoriaMetrics.

`m` is the label-matcher list that scopes agent metrics to the dashboard's variables: FLEET
(several hosts) or ONE_HOST (the host-detail dashboard).
"""
from __future__ import annotations

from collector.sources import prometheus_name_of

from .thresholds import SILENCE

FLEET = 'job=~"$job", host_name=~"$host"'
ONE_HOST = 'job=~"$job", host_name="$host"'
RATE = "[$__rate_interval]"
# One agent's series: its host and its service.instance.id (the `instance` label).
AGENT = "host_name, instance"
# A host is "reporting" when it sent anything in this window (the HostStoppedReporting alert's).
REPORTING_WINDOW = SILENCE


def selector(metric: str, m: str, *extra: str) -> str:
    """The series of a declared metric (by its OTLP name) that `m` and `extra` match."""
    return f"{prometheus_name_of(metric)}{{{', '.join((m, *extra))}}}"


def per_host(metric: str, m: str) -> str:
    """The metric's value per host (max: one agent per host, but never two series for one host)."""
    return f"max by (host_name) ({selector(metric, m)})"


def rate_sum(metric: str, m: str, by: str, *extra: str) -> str:
    return f"sum by ({by}) (rate({selector(metric, m, *extra)}{RATE}))"


def count_in_range(metric: str, m: str, by: str, *extra: str) -> str:
    """How much a counter went up in the dashboard's range, as a whole number, per `by`.

    Not increase(): Prometheus extrapolates it (4.56 for 5) and takes a series' first sample as its start, missing
    what a counter created at 1 (a file's first skip) counted. The last value minus the last one before the range;
    a series born in the range counts whole; after a reset in it (a restart), what it counted since.
    """
    series = selector(metric, m, *extra)
    last = f"last_over_time({series}[$__range])"
    before = f"last_over_time({series}[$__range] offset $__range)"
    return f"max by ({by}) (({last} - {before} >= 0 unless resets({series}[$__range]) > 0) or {last})"


def cpu_busy(m: str, by: str = "host_name", *extra: str) -> str:
    idle = rate_sum("system.cpu.time", m, by, 'cpu_mode="idle"', *extra)
    total = rate_sum("system.cpu.time", m, by, *extra)
    return f"1 - {idle} / {total}"


def memory_used(m: str) -> str:
    return f"1 - {per_host('system.memory.linux.available', m)} / {per_host('system.memory.limit', m)}"


def fullest_filesystem(m: str) -> str:
    return per_host("system.filesystem.utilization", m)


def network(m: str, direction: str) -> str:
    return rate_sum("system.network.io", m, "host_name", f'network_io_direction="{direction}"')


def tcp_retransmit_ratio(m: str) -> str:
    retransmitted = rate_sum("system.network.tcp.retransmits", m, "host_name")
    sent = rate_sum("system.network.tcp.segments", m, "host_name", 'network_io_direction="transmit"')
    return f"{retransmitted} / ({sent} > 0)"


def disk_io(m: str) -> str:
    return rate_sum("system.disk.io", m, "host_name")


def load_per_cpu(m: str) -> str:
    return f"{per_host('system.cpu.load_average.5m', m)} / {per_host('system.cpu.logical.count', m)}"


def uptime(m: str) -> str:
    return per_host("system.uptime", m)


def _present(m: str, window: str, by: str = "host_name") -> str:
    return f"max by ({by}) (present_over_time({selector('system.uptime', m)}[{window}]))"


def reporting(m: str) -> str:
    """1 for hosts heard from in the last REPORTING_WINDOW, 0 for hosts only seen earlier in the range."""
    return f"{_present(m, REPORTING_WINDOW)} or {_present(m, '$__range')} * 0"


def hosts_reporting(m: str) -> str:
    return f"count({_present(m, REPORTING_WINDOW)}) or vector(0)"


def agents_reporting(m: str) -> str:
    """Agents, not hosts: two agents on one host differ in `instance` (their service.instance.id)."""
    return f"count({_present(m, REPORTING_WINDOW, AGENT)}) or vector(0)"


def hosts_silent(m: str) -> str:
    return f"count({_present(m, '$__range')} unless {_present(m, REPORTING_WINDOW)}) or vector(0)"


REPORTING_MAPPINGS = (
    {"type": "value", "options": {"1": {"text": "reporting", "color": "green", "index": 0},
                                  "0": {"text": "not reporting", "color": "red", "index": 1}}},
)
