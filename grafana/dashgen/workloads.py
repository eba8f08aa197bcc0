"""Workloads: one host's process groups, cgroups (containers, pods, systemd services), systemd units and
textfile metrics — the agent's opt-in process_groups, cgroup, systemd and textfile sources. Their alerts link
here with ?var-host=.
"""
from __future__ import annotations

from . import exprs as e
from .builder import Column, Target, dashboard, row, table, timeseries
from .thresholds import PROCESS_GROUP_MIN
from .variables import host_variables

H = e.ONE_HOST
GROUP = "hostagent_process_group"
CGROUP = "linux_cgroup_path"
IN_GROUP = f'{GROUP}!=""'  # process.* series of process_groups, not of top_processes
OOM_KILL = 'linux_cgroup_memory_event="oom_kill"'
NOT_ACTIVE = 'systemd_unit_active_state!="active"'
SOME = 'system_pressure_stall_type="some"'


def _process_groups() -> list[dict]:
    count = f"max by ({GROUP}) ({e.selector('hostagent.process_group.count', H)})"
    return [
        row("Process groups"),
        table("Process groups", "Each group configured in the agent's process_groups source: its processes "
              "(0: none running, HostProcessGroupDown fires), CPU (1 = one full CPU), resident memory and the age "
              "of its oldest process.", [GROUP],
              [Column("Processes", count, "none", steps=(("red", None), ("green", PROCESS_GROUP_MIN))),
               Column("CPU", e.rate_sum("process.cpu.time", H, GROUP, IN_GROUP), "percentunit"),
               Column("Memory", f"sum by ({GROUP}) ({e.selector('process.memory.usage', H, IN_GROUP)})",
                      "bytes"),
               Column("Oldest process", f"max by ({GROUP}) ({e.selector('process.uptime', H)})", "s")],
              key_names={GROUP: "Group"}, width=12, height=8),
        timeseries("Process group CPU", "CPU used by each group, exited processes' time included (1 = one full "
                   "CPU).", "percentunit",
                   [Target(e.rate_sum("process.cpu.time", H, GROUP, IN_GROUP),
                           f"{{{{{GROUP}}}}}")], width=12),
        timeseries("Process group memory", "Resident memory of each group's processes.", "bytes",
                   [Target(f"sum by ({GROUP}) ({e.selector('process.memory.usage', H, IN_GROUP)})",
                           f"{{{{{GROUP}}}}}")], width=12),
        timeseries("Process group disk I/O", "Bytes each group read from and wrote to storage per second.", "Bps",
                   [Target(e.rate_sum("process.disk.io", H, f"{GROUP}, disk_io_direction"),
                           f"{{{{{GROUP}}}}} {{{{disk_io_direction}}}}")], width=12),
    ]


def _cgroups() -> list[dict]:
    usage = f"max by ({CGROUP}) ({e.selector('linux.cgroup.memory.usage', H)})"
    limit = f"max by ({CGROUP}) ({e.selector('linux.cgroup.memory.limit', H)})"
    return [
        row("Cgroups"),
        timeseries("Cgroup CPU", "CPU used by the busiest cgroups (1 = one full CPU). Needs the agent's cgroup "
                   "source on a cgroup v2 host.", "percentunit",
                   [Target(f"topk(10, {e.rate_sum('linux.cgroup.cpu.time', H, CGROUP)})",
                           f"{{{{{CGROUP}}}}}")], width=12),
        timeseries("Cgroup memory against its limit", "Memory charged to each cgroup (page cache included) as "
                   "a share of its memory.max; cgroups without a limit are left out.", "percentunit",
                   [Target(f"topk(10, {usage} / {limit})", f"{{{{{CGROUP}}}}}")], maximum=1, width=12),
        table("Cgroups", "Each cgroup the agent reports: memory, its limit, OOM kills in the dashboard's range "
              "and memory pressure (share of time some task waited for memory).", [CGROUP],
              [Column("Memory", usage, "bytes"),
               Column("Limit", limit, "bytes"),
               Column("OOM kills", e.count_in_range("linux.cgroup.memory.events", H, CGROUP, OOM_KILL), "none"),
               Column("Memory pressure", f"max by ({CGROUP}) (rate("
                      f"{e.selector('linux.cgroup.memory.pressure.total', H, SOME)}"
                      f"{e.RATE}))", "percentunit")],
              key_names={CGROUP: "Cgroup"}, height=10),
    ]


def _systemd() -> list[dict]:
    unit = "systemd.unit.state"
    return [
        row("Systemd units"),
        timeseries("Units by state", "Number of units the agent's systemd source watches (services by default) "
                   "in each active state. Needs the systemd source enabled (systemd.enabled: true, off by default) "
                   "and the host's D-Bus system bus (its socket, under host_root in a container).", "short",
                   [Target(f"sum by (systemd_unit_active_state) ({e.selector(unit, H)})",
                           "{{systemd_unit_active_state}}")], width=12),
        table("Units not active", "Units in any state but active now (1); failed ones fire HostSystemdUnitFailed.",
              ["systemd_unit_name", "systemd_unit_active_state"],
              [Column("In this state", f"max by (systemd_unit_name, systemd_unit_active_state) "
                      f"({e.selector(unit, H, NOT_ACTIVE)}) == 1", "none")],
              key_names={"systemd_unit_name": "Unit", "systemd_unit_active_state": "State"}, width=12, height=8),
    ]


def _textfiles() -> list[dict]:
    return [
        row("Textfile metrics"),
        table("Textfiles", "Each *.prom file of the agent's textfile directory: its age (HostTextfileStale fires "
              "after a day) and the collections that skipped it as invalid, in the dashboard's range.",
              ["file_name"],
              [Column("Age", f"time() - max by (file_name) ({e.selector('hostagent.textfile.mtime', H)})",
                      "s"),
               Column("Skipped", e.count_in_range("hostagent.textfile.errors", H, "file_name"), "none",
                      steps=(("green", None), ("red", 1)))],
              key_names={"file_name": "File"}, height=6),
    ]


def build() -> dict:
    return dashboard(
        "workloads", "Workloads",
        "One host's process groups, cgroups (containers, pods, systemd services), systemd units and textfile "
        "metrics, from the agent's opt-in process_groups, cgroup, systemd and textfile sources. "
        "Alerts link here with ?var-host=<host_name>.",
        host_variables(multi_host=False),
        [*_process_groups(), *_cgroups(), *_systemd(), *_textfiles()],
    )
