"""What the CLI prints: metric references (markdown, JSON) and snapshots of one collection."""

import json
from collections import defaultdict
from collections.abc import Mapping

from collector import SEMCONV_VERSION
from collector.naming import OPTIONAL_RESOURCE_LABELS, RESOURCE_LABELS, prometheus_label, prometheus_name
from collector.sources import ALL_SOURCES, SOURCES
from collector.spec import MetricSpec, Point
from collector.usage import Use

# How the agent reads the model where it leaves a choice.
CONFORMANCE_NOTES = (
    "Where the model leaves a choice, the agent makes this one:",
    "- `cpu.mode`: the kernel's hard (`irq`) and soft (`softirq`) interrupt time are added into the one "
    "`interrupt` mode the model lists; guest time is already inside `user` and `nice`.",
    "- Processes (`top_processes`): the model identifies a process entity by `process.pid` and "
    "`process.creation.time` (ISO 8601, UTC). One agent reports many processes through one OTLP resource "
    "(the host's), and Prometheus keeps resource attributes only in `target_info`: so both travel as point "
    "attributes, with `process.executable.name` beside them: the base name of `/proc/<pid>/exe`'s target, as "
    "the model asks on Linux (a replaced binary's ` (deleted)` left out); where that link cannot be read (another "
    "user's process without root or `CAP_SYS_PTRACE`, a kernel thread, a zombie) the kernel's process name, "
    "extended from the command line where the kernel cut it at 15 characters (psutil's `name()`). "
    "`process.cpu.*` carry `cpu.mode` `user` and `system` (the kernel's per-process I/O wait is not CPU time). "
    "`process.memory.usage` (here and per group) is the resident size of `/proc/<pid>/statm`, psutil's and "
    "`VmRSS`'s: since Linux 6.2 `/proc/<pid>/stat`'s `rss` is the unsummed per-CPU counter, up to hundreds of KiB "
    "low; it only ranks the processes by memory, and stands in for a process that exited before its `statm` was read. "
    "`process.cpu.utilization` is the model's difference in `process.cpu.time` since the last measurement over the "
    "elapsed time and the online CPUs: since the previous collection, the first one's since the source was built "
    "(a baseline read at start-up); for a process not read before, since its start, when its CPU time was 0, over "
    "its age (`/proc/uptime` less its start), so a process started between collections ranks by what it used.",
    "- Process groups (`process_groups`): the `process.*` metrics summed over each configured group's processes "
    "(as process-exporter does; `process.uptime` is the oldest member's), told apart by `hostagent.process_group` "
    "instead of a process identity; `process.cpu.time` carries `cpu.mode` `user` and `system` as above. "
    "A process's group is decided at every collection (process-exporter decides it once): a group's counters add "
    "what a process used while it matched, never its history again when it matches anew. "
    "With both sources on, a process can be in a top process's series and in its group's: a sum over "
    "`process_*` selects one of them, `{hostagent_process_group!=\"\"}` or `{process_pid!=\"\"}`.",
    "- `systemd.unit.state` follows the Collector's systemd receiver, with `systemd.unit.name` on each point "
    "rather than on a resource per unit: the agent's one resource is the host.",
    "- `system.memory.usage`: `used` is the limit minus free, buffers and cached, so that the four states add "
    "up to the limit; the model's MemTotal − MemAvailable is `system.memory.linux.available`'s complement.",
    "- Attributes the model lists that are not sent: `network.interface.name` on "
    "`system.network.connection.count` (/proc/net/tcp does not say which interface a socket uses); "
    "`hw.model`, `hw.vendor`, `hw.serial_number`, `hw.network.logical_addresses` on `hw.network.*` (sysfs "
    "does not name them). `system.network.packet.count` names the interface `network.interface.name`, as "
    "the model's three other `system.network.*` metrics do, not `system.device`, so that the four join; "
    "`hw.network.*` carry it too, beside `hw.id`.",
    "- `system.filesystem.utilization` has one point per filesystem, `system.filesystem.state=used`: used / "
    "(used + free), as df shows it.",
    "- Resource attributes, read locally as the collector's resourcedetection `system` detector offers them: "
    "`service.*`, `host.name`, `host.id`, `host.arch`, `os.type`, `os.description`, `os.name`, `os.version`, "
    "`cloud.provider` and `cloud.platform` (from the firmware's DMI strings, no metadata call); opt-in, with the "
    "`resource` options: `host.cpu.*` and `host.ip`/`host.mac`. No `container.id`: the agent describes the "
    "host, not the container it runs in.",
    "- `host.id` is the machine id also on a cloud VM, where the model asks for the provider's instance id: only "
    "the metadata service gives that for certain, and the agent makes no network call (nor does the "
    "resourcedetection `system` detector). To send the instance id, name it: "
    "`OTEL_RESOURCE_ATTRIBUTES=host.id=<instance id>` wins over what is detected (the `host_id` label, and "
    "`instance`, which is derived from it, change with it). On EC2 instances built on Nitro the firmware holds "
    "the instance id locally, in `/sys/class/dmi/id/board_asset_tag`; the agent does not read it.",
    "- Names the model does not define are kept only where it has none, and then follow the OpenTelemetry "
    "Collector's hostmetrics receiver where it has one (each such metric says so below); attribute keys "
    "are the model's registry names where it has the attribute, else the precedent's "
    "(`system.pressure.stall_type`: the hostmetrics receiver; `systemd.unit.*`: the Collector's systemd receiver) "
    "or the agent's own (`hostagent.*`, `linux.cgroup.*`).",
)


# Changes to series and labels that rules, dashboards and users' queries must follow: (before, now, why).
NAMING_CHANGES = (
    ("`system_linux_pressure_stall_time_seconds_total{linux_pressure_resource, linux_pressure_scope}`",
     "`system_{cpu,memory,io}_linux_pressure_seconds_total{system_pressure_stall_type}`, and the "
     "kernel's averages as `system_{cpu,memory,io}_linux_pressure_{10s,1m,5m}_ratio`",
     "the hostmetrics receiver's names (no semconv metric)"),
    ("`system_network_conntrack_limit`", "`system_network_conntrack_max`", "the hostmetrics receiver's name"),
    ("`cpu_mode=\"softirq\"`", "added into `cpu_mode=\"interrupt\"`", "not a `cpu.mode` member"),
    ("`process_*{process_pid, process_executable_name}`", "plus `process_creation_time`; "
     "`process_cpu_utilization_ratio` per `cpu_mode`", "the model's process identity and required `cpu.mode`"),
    ("`system_filesystem_utilization_ratio`", "plus `system_filesystem_state=\"used\"`", "the model's attribute"),
    ("`system_paging_usage_bytes`, `system_paging_utilization_ratio`", "one series per swap device "
     "(`system_device`); none without swap", "the model's attribute"),
    ("`system_network_connection_count{network_connection_state=\"close\"}`", "`…=\"closed\"`",
     "the model's member"),
    ("`system_paging_operations_total{system_paging_direction}`", "plus `system_paging_fault_type=\"major\"`",
     "the model's attribute"),
    ("`hw_temperature_celsius{hw_type=\"temperature\"}`", "no `hw_type`; `hw_sensor_location` and `hw_parent` "
     "where the kernel names them; `hw_id` built from the parent device's name", "the model's attributes"),
    ("`process_executable_name`: the kernel's process name (`comm`, extended from the command line)",
     "the base name of `/proc/<pid>/exe`'s target (`python3.11`, not `python3`; `postgres`, not a title such as "
     "`postgres: walwr`); the kernel's name where the link cannot be read",
     "the model's `process.executable.name` on Linux"),
    ("`instance` (`service.instance.id`): UUIDv5 of `<host.id>/<service.name>` in a namespace of the agent's own",
     "the same name in the model's namespace `4d63009a-8d0f-11ee-aad7-4c796ed8e320`: every host's `instance` "
     "changes once, at the upgrade. Its series and recorded series start anew under the new value (rates and "
     "1-day baselines refill); silences and saved queries naming an `instance` need the new one. "
     "`HostStoppedReporting` matches on `host_id` and `host_name`: the old value's end pages nobody",
     "`service.instance.id`'s note: an inherent ID SHOULD be the source of a UUIDv5 in that namespace"),
)


def _enabled_by_default(source_name: str) -> bool:
    return source_name not in SOURCES or SOURCES[source_name].Options().enabled


def _attributes(spec: MetricSpec) -> str:
    return ", ".join([f"`{a}`" for a in spec.attributes] + [f"`{a}` (optional)" for a in spec.optional_attributes])


def sources_json(declared) -> str:
    return json.dumps([{
        "source": source, "name": spec.name, "instrument": spec.instrument.value, "unit": spec.unit,
        "description": spec.description, "attributes": list(spec.attributes),
        "optional_attributes": list(spec.optional_attributes), "condition": spec.condition,
        "default": _enabled_by_default(source),
        "prometheus_name": prometheus_name(spec),
        "prometheus_labels": [prometheus_label(a) for a in spec.attributes],
        "prometheus_optional_labels": [prometheus_label(a) for a in spec.optional_attributes],
    } for source, spec in declared], indent=2)


def sources_table(declared) -> str:
    rows = [f"{source:16} {spec.name:40} {spec.instrument.value:14} {spec.unit}" for source, spec in declared]
    return "\n".join([f"{'SOURCE':16} {'METRIC':40} {'INSTRUMENT':14} UNIT", *rows])


def _prometheus(spec: MetricSpec) -> str:
    labels = [f"`{prometheus_label(a)}`" for a in spec.attributes] + [
        f"`{prometheus_label(a)}` (optional)" for a in spec.optional_attributes]
    return f"`{prometheus_name(spec)}`" + (f" {{{', '.join(labels)}}}" if labels else "")


def metrics_markdown(declared, uses: Mapping[str, list[Use]] | None = None) -> str:
    """The metric reference; with `uses` (collector/usage.py), each metric also lists the recording rules, alerts
    and dashboard panels that read it."""
    lines = [
        "# Metrics", "",
        "Generated by `collector sources --format markdown` from the declarations in `collector/sources/`;",
        f"names follow the OpenTelemetry semantic conventions v{SEMCONV_VERSION} where they define one.", "",
        *CONFORMANCE_NOTES, "",
    ]
    if uses is not None:
        lines += ["Each metric's Prometheus series (docs/naming.md) and what reads it: the recording rules and "
                  "alerts in `rules/*.rules.yml` and the panels of `grafana/dashboards/*.json` whose queries name "
                  "the series, or a series recorded from it (*via*).", ""]
    modules = {source.name: source.__module__.replace(".", "/") + ".py" for source in ALL_SOURCES}
    by_source = defaultdict(list)
    for source, spec in declared:
        by_source[source].append(spec)
    for source, specs in by_source.items():
        default = "on by default" if _enabled_by_default(source) else "opt-in"
        columns = ["Metric", "Instrument", "Unit", "Attributes", "Description", "Prometheus series"] + (
            ["Used by"] if uses is not None else [])
        lines += [f"## `{source}` ({default}): `{modules[source]}`", "",
                  "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for spec in specs:
            note = f" *Present {spec.condition}.*" if spec.condition else ""
            if spec.precedent:
                note += f" *Not in the semantic conventions; name from {spec.precedent}.*"
            cells = [f"`{spec.name}`", spec.instrument.value, f"`{spec.unit}`", _attributes(spec),
                     f"{spec.description}{note}", _prometheus(spec)]
            if uses is not None:
                cells.append("<br>".join(map(str, uses.get(prometheus_name(spec), []))))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def naming_markdown(declared) -> str:
    lines = [
        "# Naming contract: OTLP → Prometheus", "",
        "Generated by `collector sources --format naming`. Both gateways (the OpenTelemetry Collector and vmagent)",
        "deliver exactly these series names and labels to Prometheus and to VictoriaMetrics; rules and dashboards use",
        "them.",
        "",
        f"Every series also carries the resource labels {', '.join(f'`{label}`' for label in RESOURCE_LABELS)}",
        "(`job` = `service.name`, `instance` = `service.instance.id`) and, when the agent runs in Kubernetes,",
        f"{', '.join(f'`{label}`' for label in OPTIONAL_RESOURCE_LABELS)}.", "",
        "| OTLP name | Instrument | Unit | Attributes | Prometheus series | Labels |", "|---|---|---|---|---|---|",
    ]
    for _, spec in declared:
        labels = ", ".join([f"`{prometheus_label(a)}`" for a in spec.attributes]
                           + [f"`{prometheus_label(a)}` (optional)" for a in spec.optional_attributes])
        lines.append(f"| `{spec.name}` | {spec.instrument.value} | `{spec.unit}` | {_attributes(spec)} "
                     f"| `{prometheus_name(spec)}` | {labels} |")
    lines += ["", f"## What changed (semantic conventions v{SEMCONV_VERSION})", "",
              "| Before | Now | Why |", "|---|---|---|",
              *(f"| {before} | {now} | {why} |" for before, now, why in NAMING_CHANGES)]
    return "\n".join(lines) + "\n"


def snapshot_json(points: list[Point], units: dict[str, str], timestamp: str, resource: dict[str, object]) -> str:
    return json.dumps({"timestamp": timestamp, "resource": resource,
                       "points": [{"metric": p.metric, "unit": units[p.metric], "attributes": dict(p.attributes),
                                   "value": p.value} for p in points]}, indent=2)


def snapshot_table(points_by_source: dict[str, list[Point]], units: dict[str, str], timestamp: str,
                   resource: dict[str, object]) -> str:
    lines = [f"collected at {timestamp}", "resource: " + ", ".join(f"{k}={v}" for k, v in resource.items())]
    for source, points in points_by_source.items():
        if not points:
            continue
        lines.append(f"== {source}")
        for point in points:
            labels = ", ".join(f"{k}={v}" for k, v in point.attributes.items())
            lines.append(f"  {point.metric:38} {human(point.value, units[point.metric]):>14}  {labels}")
    return "\n".join(lines)


def human(value: float, unit: str) -> str:
    if unit == "By":
        for prefix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(value) < 1024 or prefix == "TiB":
                return f"{value:.0f} B" if prefix == "B" else f"{value:.1f} {prefix}"
            value /= 1024
    if unit == "1":
        return f"{value * 100:.1f} %"
    if unit == "s":
        if 0 < abs(value) < 1:
            return f"{value * 1000:.2f} ms"  # a source's collection takes milliseconds
        return f"{value / 3600:.1f} h" if value >= 3600 else f"{value:.2f} s"
    if unit == "Hz":
        return f"{value / 1e9:.2f} GHz"
    if unit == "Cel":
        return f"{value:.1f} °C"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"
