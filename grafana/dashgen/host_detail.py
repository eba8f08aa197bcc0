"""Host detail: one host's CPU, memory, disks, filesystems, network, processes and pressure.

Alerts link here with `/d/host-detail?var-host=<host_name>`.
"""
from __future__ import annotations

from . import exprs as e
from .builder import Column, Target, dashboard, row, stat, table, timeseries
from .thresholds import CPU, DISK, FRESH_WITHIN, INODES, MEMORY
from .variables import host_variables

H = e.ONE_HOST
FS_KEY = "system_device, system_filesystem_mountpoint, system_filesystem_type"
FORECAST_WINDOW = "6h"
FORECAST_CAP_DAYS = 365


def _summary() -> list[dict]:
    return [
        row("Summary"),
        stat("Status", f"Whether the host sent data in the last {e.REPORTING_WINDOW}.", "none",
             [Target(e.reporting(H), "status")], mappings=list(e.REPORTING_MAPPINGS)),
        stat("Uptime", "Time since the host booted.", "s", [Target(e.uptime(H), "uptime")]),
        stat("CPU", "Share of CPU time not idle, all CPUs together.", "percentunit",
             [Target(e.cpu_busy(H), "cpu")], thresholds=CPU),
        stat("Memory", "Memory in use: 1 - available / total.", "percentunit",
             [Target(e.memory_used(H), "memory")], thresholds=MEMORY),
        stat("Fullest filesystem", "Utilisation of the fullest filesystem.", "percentunit",
             [Target(e.fullest_filesystem(H), "disk")], thresholds=DISK),
        stat("Logical CPUs", "Number of logical CPUs.", "short",
             [Target(f"max({e.selector('system.cpu.logical.count', H)})", "cpus")]),
    ]


def _cpu() -> list[dict]:
    cpu = "system.cpu.time"
    per_core = 'cpu_logical_number!=""'
    not_idle = 'cpu_mode!="idle"'
    return [
        row("CPU"),
        timeseries("CPU utilisation by mode",
                   "Share of all CPUs' time spent in each non-idle mode, stacked: the top of the stack is "
                   "the total utilisation. Dashed lines: the CPU alert thresholds.", "percentunit",
                   [Target(f"{e.rate_sum(cpu, H, 'cpu_mode', not_idle)} / on () group_left "
                           f"sum(rate({e.selector(cpu, H)}{e.RATE}))", "{{cpu_mode}}")],
                   thresholds=CPU, stack=True, maximum=1, width=8),
        timeseries("CPU utilisation per core",
                   "Non-idle share of each logical CPU. Needs the agent's cpu source with per_cpu: true.",
                   "percentunit", [Target(e.cpu_busy(H, "cpu_logical_number", per_core), "cpu {{cpu_logical_number}}")],
                   thresholds=CPU, maximum=1, width=8),
        timeseries("Load average",
                   "Run-queue length averaged over 1, 5 and 15 minutes, against the number of logical CPUs.",
                   "short",
                   [Target(f"max({e.selector(f'system.cpu.load_average.{w}', H)})", w) for w in ("1m", "5m", "15m")]
                   + [Target(f"max({e.selector('system.cpu.logical.count', H)})", "logical CPUs")],
                   width=8),
        timeseries("Processes by state", "Number of processes in each state.", "short",
                   [Target(f"sum by (process_state) ({e.selector('system.process.count', H)})", "{{process_state}}")],
                   width=12),
        timeseries("Pressure stall information",
                   "Share of wall-clock time in which some (or all) runnable tasks were stalled waiting for "
                   "CPU, memory or I/O (Linux PSI).", "percentunit",
                   [Target(e.rate_sum(f"system.{resource}.linux.pressure.total", H,
                                      "system_pressure_stall_type"), f"{resource} {{{{system_pressure_stall_type}}}}")
                    for resource in ("cpu", "memory", "io")],
                   width=6),
        timeseries("Pressure, kernel averages", "The kernel's own 10-second, 1-minute and 5-minute averages of "
                   "the share of time tasks were stalled (/proc/pressure avg10, avg60, avg300), as the agent last "
                   "read them.", "percentunit",
                   [Target(f"max by (system_pressure_stall_type) "
                           f"({e.selector(f'system.{resource}.linux.pressure.{window}', H)})",
                           f"{resource} {{{{system_pressure_stall_type}}}} {window}")
                    for resource in ("cpu", "memory", "io") for window in ("10s", "1m", "5m")],
                   width=6),
    ]


def _memory() -> list[dict]:
    usage = f"sum by (system_memory_state) ({e.selector('system.memory.usage', H)})"
    total = {"matcher": {"id": "byName", "options": "total"},
             "properties": [{"id": "custom.stacking", "value": {"mode": "none", "group": "A"}},
                            {"id": "custom.fillOpacity", "value": 0},
                            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}
    return [
        row("Memory"),
        timeseries("Memory usage by state", "Bytes of memory used, free, in buffers and in the page cache, "
                   "stacked; the dashed line is the total.", "bytes",
                   [Target(usage, "{{system_memory_state}}"),
                    Target(f"max({e.selector('system.memory.limit', H)})", "total")],
                   stack=True, overrides=[total], width=8),
        timeseries("Memory utilisation", "Memory in use: 1 - available / total. Dashed lines: the memory "
                   "alert thresholds.", "percentunit", [Target(e.memory_used(H), "used")],
                   thresholds=MEMORY, maximum=1, width=8),
        timeseries("Swap usage", "Swap space used and free, per swap device. Empty when the host has no swap.",
                   "bytes",
                   [Target(f"sum by (system_paging_state) ({e.selector('system.paging.usage', H)})",
                           "{{system_paging_state}}")],
                   stack=True, width=8),
        timeseries("Page faults", "Minor and major page faults per second.", "ops",
                   [Target(e.rate_sum("system.paging.faults", H, "system_paging_fault_type"),
                           "{{system_paging_fault_type}}")], width=12),
        timeseries("Swap operations", "Pages swapped in and out per second.", "ops",
                   [Target(e.rate_sum("system.paging.operations", H, "system_paging_direction"),
                           "{{system_paging_direction}}")], width=12),
        timeseries("Kernel and shared memory", "Slab caches (reclaimable ones are freed under pressure, "
                   "unreclaimable ones are not) and shared memory (mostly tmpfs).", "bytes",
                   [Target(f"sum by (system_memory_linux_slab_state) "
                           f"({e.selector('system.memory.linux.slab.usage', H)})",
                           "slab {{system_memory_linux_slab_state}}"),
                    Target(f"max({e.selector('system.memory.linux.shared', H)})", "shared")], width=12),
        timeseries("Hugepages", "Pages of the hugepage pool used and free, and those reserved by mappings "
                   "(part of free). Empty when no pool is configured.", "short",
                   [Target(f"sum by (system_memory_linux_hugepages_state) "
                           f"({e.selector('system.memory.linux.hugepages.usage', H)})",
                           "{{system_memory_linux_hugepages_state}}"),
                    Target(f"max({e.selector('system.memory.linux.hugepages.reserved', H)})", "reserved")],
                   width=12),
    ]


def _disk() -> list[dict]:
    by = "system_device, disk_io_direction"
    legend = "{{system_device}} {{disk_io_direction}}"
    operations = e.rate_sum("system.disk.operations", H, by)
    busy = e.rate_sum("system.disk.operation_time", H, by)
    return [
        row("Disk"),
        timeseries("Disk throughput", "Bytes read and written per second, per device.", "Bps",
                   [Target(e.rate_sum("system.disk.io", H, by), legend)], width=6),
        timeseries("Disk IOPS", "Read and write operations completed per second, per device.", "iops",
                   [Target(operations, legend)], width=6),
        timeseries("Disk latency", "Average time an operation took (time spent on operations / operations "
                   "completed); gaps where a device did no operations.", "s",
                   [Target(f"{busy} / ({operations} > 0)", legend)], width=6),
        timeseries("Disk utilisation", "Share of time each device was busy with I/O (100 % = saturated for "
                   "devices that serve one request at a time).", "percentunit",
                   [Target(e.rate_sum("system.disk.io_time", H, "system_device"),
                           "{{system_device}}")], maximum=1, width=6),
        timeseries("Disk queue", "Average number of operations in flight (rate of the weighted I/O time) and "
                   "the number in flight when sampled, per device.", "short",
                   [Target(e.rate_sum("system.disk.weighted_io_time", H, "system_device"),
                           "{{system_device}} average"),
                    Target(f"sum by (system_device) ({e.selector('system.disk.pending_operations', H)})",
                           "{{system_device}} now")], width=8),
        timeseries("Merged operations", "Adjacent reads and writes the kernel merged into one per second.",
                   "ops", [Target(e.rate_sum("system.disk.merged", H, by), legend)], width=8),
        timeseries("Disk size", "Size of each device.", "bytes",
                   [Target(f"max by (system_device) ({e.selector('system.disk.limit', H)})",
                           "{{system_device}}")], width=8),
    ]


def _filesystem_columns() -> list[Column]:
    def by_fs(metric: str, *extra: str, agg: str = "sum") -> str:
        return f"{agg} by ({FS_KEY}) ({e.selector(metric, H, *extra)})"

    free = 'system_filesystem_state="free"'
    shrinking = (f"clamp_min(-sum by ({FS_KEY}) (deriv({e.selector('system.filesystem.usage', H, free)}"
                 f"[{FORECAST_WINDOW}])), 0)")
    inodes_used = by_fs("system.filesystem.inodes.usage", 'system_filesystem_state="used"')
    return [
        Column("Size", by_fs("system.filesystem.limit", agg="max"), "bytes"),
        Column("Used", by_fs("system.filesystem.usage", 'system_filesystem_state="used"'), "bytes"),
        Column("Utilisation", by_fs("system.filesystem.utilization", agg="max"), "percentunit", DISK),
        Column("Inodes used", f"{inodes_used} / ({by_fs('system.filesystem.inodes.usage')} > 0)", "percentunit",
               INODES),
        # Free space over the rate it shrank at in the window; a filesystem that is not filling up
        # divides by zero (+Inf) and is shown as the cap.
        Column("Days until full",
               f"clamp_max({by_fs('system.filesystem.usage', free)} / {shrinking} / 86400, {FORECAST_CAP_DAYS})",
               "d", steps=(("red", None), ("orange", 7), ("green", 30)),
               mappings=({"type": "range", "options": {"from": FORECAST_CAP_DAYS, "to": None,
                                                       "result": {"text": "not filling up", "index": 0}}},)),
    ]


def _filesystem() -> list[dict]:
    return [
        row("Filesystems"),
        timeseries("Filesystem utilisation", "Used share of each mounted filesystem. Dashed lines: the disk "
                   "alert thresholds.", "percentunit",
                   [Target(f"max by (system_filesystem_mountpoint) "
                           f"({e.selector('system.filesystem.utilization', H)})",
                           "{{system_filesystem_mountpoint}}")],
                   thresholds=DISK, maximum=1, width=10),
        table("Filesystems", f"Size, use and inode use of each filesystem, and a forecast of the days until "
              f"it is full from its trend over the last {FORECAST_WINDOW} (capped at {FORECAST_CAP_DAYS}).",
              ["system_filesystem_mountpoint", "system_device", "system_filesystem_type"],
              _filesystem_columns(),
              key_names={"system_filesystem_mountpoint": "Mountpoint", "system_device": "Device",
                         "system_filesystem_type": "Type"}, width=14, height=8),
    ]


def _network() -> list[dict]:
    by = "network_interface_name, network_io_direction"
    legend = "{{network_interface_name}} {{network_io_direction}}"
    return [
        row("Network"),
        timeseries("Network throughput", "Bytes received and transmitted per second, per interface.", "Bps",
                   [Target(e.rate_sum("system.network.io", H, by), legend)], width=6),
        timeseries("Network packets", "Packets received and transmitted per second, per interface.", "pps",
                   [Target(e.rate_sum("system.network.packet.count", H, by), legend)], width=6),
        timeseries("Network errors and drops", "Receive and transmit errors and dropped packets per second, "
                   "per interface.", "pps",
                   [Target(e.rate_sum("system.network.errors", H, by), f"errors {legend}"),
                    Target(e.rate_sum("system.network.packet.dropped", H, by), f"dropped {legend}")],
                   width=6),
        timeseries("Connections by state", "Open sockets per transport and state. Needs the agent's network "
                   "source with connections: true.", "short",
                   [Target(f"sum by (network_transport, network_connection_state) "
                           f"({e.selector('system.network.connection.count', H)})",
                           "{{network_transport}} {{network_connection_state}}")], width=6),
        timeseries("TCP retransmits", "Share of the TCP segments sent that were retransmissions: loss or "
                   "congestion on the path.", "percentunit",
                   [Target(e.tcp_retransmit_ratio(H), "retransmitted")], width=6),
        timeseries("TCP listen queue", "Connections listening sockets dropped per second; overflows: the "
                   "application did not accept fast enough.", "ops",
                   [Target(f"sum(rate({e.selector('system.network.tcp.listen.overflows', H)}{e.RATE}))",
                           "overflows"),
                    Target(f"sum(rate({e.selector('system.network.tcp.listen.drops', H)}{e.RATE}))",
                           "drops")], width=6),
        timeseries("Sockets in use", "Sockets open per transport (cheap to read; the per-state breakdown "
                   "needs connections: true).", "short",
                   [Target(f"sum by (network_transport) ({e.selector('system.network.socket.count', H)})",
                           "{{network_transport}}")], width=6),
        table("Network interfaces", "Link (carrier) of each interface that is administratively up, the speed "
              "its driver negotiated and its MTU.", ["network_interface_name"],
              [Column("Link", f"max by (network_interface_name) ({e.selector('hw.network.up', H)})", "none",
                      steps=(("red", None), ("green", 1))),
               Column("Speed", f"max by (network_interface_name) "
                               f"({e.selector('hw.network.bandwidth.limit', H)})", "Bps"),
               # a plain number: 1500, not "1.46 KiB"
               Column("MTU", f"max by (network_interface_name) ({e.selector('system.network.mtu', H)})",
                      "none")],
              key_names={"network_interface_name": "Interface"}, width=6, height=8),
    ]


def _processes() -> list[dict]:
    key = "process_executable_name, process_pid"
    per_pid = 'process_pid!=""'  # process.* series of top_processes, not the process_groups' (per group)
    cpu = e.rate_sum("process.cpu.time", H, key, per_pid)
    # The processes in the top N of the latest exports only: over OTLP and remote write no staleness marker ends the
    # series of a process that left it, which a bare selector would show for 5 minutes (Prometheus' lookback).
    memory = f"sum by ({key}) (last_over_time({e.selector('process.memory.usage', H, per_pid)}[{FRESH_WITHIN}]))"
    return [
        row("Top processes"),
        timeseries("Top processes by CPU", "CPU used by the busiest processes (1 = one full CPU). Needs the "
                   "agent's top_processes source.", "percentunit",
                   [Target(f"topk(10, {cpu})", "{{process_executable_name}} ({{process_pid}})")], width=12),
        table("Top processes", "The processes the agent reports (its top_processes source, off by default), those "
              f"in its top N within the last {FRESH_WITHIN}: CPU (1 = one full CPU) and resident memory.",
              ["process_executable_name", "process_pid"],
              [Column("CPU", f"{cpu} and {memory}", "percentunit"),
               Column("Memory", memory, "bytes")],
              key_names={"process_executable_name": "Process", "process_pid": "PID"}, width=12, height=8),
    ]


def build() -> dict:
    return dashboard(
        "host-detail", "Host detail",
        "Everything the agent reports about one host. Alerts link here with ?var-host=<host_name>.",
        host_variables(multi_host=False),
        [*_summary(), *_cpu(), *_memory(), *_disk(), *_filesystem(), *_network(), *_processes()],
    )
