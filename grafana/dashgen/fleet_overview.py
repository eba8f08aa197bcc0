"""Fleet overview: every host at a glance, the busiest hosts per resource, firing alerts."""
from __future__ import annotations

from . import exprs as e
from .builder import Column, Target, dashboard, fixed_colours, row, stat, table, top_hosts
from .thresholds import CPU, DISK, LOAD_PER_CPU, MEMORY
from .variables import host_variables

F = e.FLEET
SEVERITY_COLOURS = {"critical": "red", "warning": "orange", "info": "blue"}
# The labels the rules put on alerts besides alertname, severity, host_name and instance: the object an alert is
# about, which tells two alerts of one name on one host apart (as the inhibition's `equal` list in
# alertmanager/alertmanager.yml does; tests check both against the rules' unit tests). In this order each alert's
# labels are neighbours, so their joined values are one space apart. job, host_id and k8s_cluster_name are left
# out: instance (the agent's service.instance.id, the gateway's scrape target) implies them.
ALERT_OBJECT_LABELS = (
    "hostagent_source",
    "system_filesystem_mountpoint", "system_device", "system_filesystem_type", "system_filesystem_mode",
    "network_interface_name", "network_io_direction", "cpu_mode", "system_paging_fault_type",
    "hostagent_process_group", "systemd_unit_name", "linux_cgroup_path", "container_id", "k8s_pod_uid", "file_name",
    "exporter", "url",
)


def _firing_since() -> str:
    """Since when each firing alert fires (ms), one series per alert, its object labels' values joined in `object`.

    label_join joins absent labels as empty strings: the spaces they leave around the values are trimmed, and an
    alert without object labels gets no `object` label.
    """
    firing = 'ALERTS_FOR_STATE and ignoring (alertstate) ALERTS{alertstate="firing"}'
    sources = ", ".join(f'"{label}"' for label in ALERT_OBJECT_LABELS)
    joined = f'label_join({firing}, "object", " ", {sources})'
    trimmed = f'label_replace({joined}, "object", "$1", "object", " *(.*?) *")'
    return f"max by (alertname, host_name, object, severity, instance) ({trimmed}) * 1000"


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
        table("Firing alerts",
              "Each firing alert: its host, the object it is about (filesystem, interface, unit, file, exporter, "
              "…), its severity, the agent or gateway that raised it and since when it fires. The host links to "
              "the host-detail dashboard.",
              ["alertname", "host_name", "object", "severity", "instance"],
              [Column("Active since", _firing_since(), "dateTimeFromNow")],
              key_names={"alertname": "Alert", "host_name": "Host", "object": "Object", "severity": "Severity",
                         "instance": "Instance"},
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
