"""Fleet overview: every host at a glance, the busiest hosts per resource, firing alerts."""
from __future__ import annotations

from . import exprs as e
from .builder import Column, Target, dashboard, fixed_colours, row, stat, table, top_hosts
from .thresholds import CPU, DISK, LOAD_PER_CPU, MEMORY
from .variables import host_variables

F = e.FLEET
SEVERITY_COLOURS = {"critical": "red", "warning": "orange", "info": "blue"}


def _summary() -> list[dict]:
    return [
        row("Summary"),
        stat("Hosts reporting", f"Hosts that sent data in the last {e.REPORTING_WINDOW}.", "none",
             [Target(e.hosts_reporting(F), "reporting")]),
        stat("Hosts not reporting",
             f"Hosts seen in the dashboard's time range that sent nothing in the last {e.REPORTING_WINDOW}.",
             "none", [Target(e.hosts_silent(F), "not reporting")],
             mappings=[{"type": "range", "options": {"from": 1, "to": None, "result": {"color": "red", "index": 0}}}]),
        stat("Firing alerts by severity",
             "Alerts in state firing, counted per severity label (the ALERTS series written by the rule "
             "evaluator). Empty when nothing fires.", "none",
             [Target('count by (severity) (ALERTS{alertstate="firing"})', "{{severity}}")],
             no_value="none firing", overrides=fixed_colours(SEVERITY_COLOURS), width=6),
        table("Firing alerts", "Each firing alert with its host; the host links to the host-detail dashboard.",
              ["alertname", "host_name", "severity"],
              [Column("Active since",
                      "max by (alertname, host_name, severity) "
                      '(ALERTS_FOR_STATE and ignoring (alertstate) ALERTS{alertstate="firing"}) * 1000',
                      "dateTimeFromNow")],
              key_names={"host_name": "Host", "alertname": "Alert", "severity": "Severity"},
              link_hosts=True, width=10, height=4),
    ]


def _hosts_table() -> dict:
    return table(
        "Hosts",
        "One row per host: whether it is reporting, its uptime and current use of each resource. "
        "CPU, memory and disk cells turn orange and red at the alert thresholds. Click a host for its detail.",
        ["host_name"],
        [
            Column("Status", e.reporting(F), "none", steps=(("red", None), ("green", 1)),
                   mappings=e.REPORTING_MAPPINGS),
            Column("Uptime", e.uptime(F), "s"),
            Column("CPU", e.cpu_busy(F), "percentunit", CPU),
            Column("Memory", e.memory_used(F), "percentunit", MEMORY),
            Column("Fullest filesystem", e.fullest_filesystem(F), "percentunit", DISK),
            Column("Load (5m) per CPU", e.load_per_cpu(F), "short", steps=(("green", None), ("orange", LOAD_PER_CPU))),
            Column("Disk I/O", e.disk_io(F), "Bps"),
            Column("Network in", e.network(F, "receive"), "Bps"),
            Column("Network out", e.network(F, "transmit"), "Bps"),
        ],
        key_names={"host_name": "Host"}, link_hosts=True, height=12,
    )


def _top() -> list[dict]:
    return [
        row("Busiest hosts"),
        top_hosts("Top hosts by CPU", "Share of CPU time not idle, all CPUs of the host together.",
                  "percentunit", e.cpu_busy(F), thresholds=CPU, maximum=1),
        top_hosts("Top hosts by memory", "Memory in use: 1 - available / total.",
                  "percentunit", e.memory_used(F), thresholds=MEMORY, maximum=1),
        top_hosts("Top hosts by disk usage", "Utilisation of each host's fullest filesystem.",
                  "percentunit", e.fullest_filesystem(F), thresholds=DISK, maximum=1),
        top_hosts("Top hosts by network traffic", "Bytes received plus transmitted per second, all interfaces.",
                  "Bps", e.rate_sum("system.network.io", F, "host_name")),
    ]


def build() -> dict:
    return dashboard(
        "fleet-overview", "Fleet overview",
        "Every host sending telemetry through the pipeline: status, resource use, busiest hosts and alerts.",
        host_variables(multi_host=True),
        [*_summary(), row("Hosts"), _hosts_table(), *_top()],
    )
