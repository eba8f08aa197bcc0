"""Pipeline health: the agents' collection and export, the gateway's queues, the backends' ingestion.

The gateway panels query both gateways' own metrics (vmagent_* and otelcol_*): whichever gateway
runs, and is scraped into the backends, fills them.
"""
from __future__ import annotations

import re
from pathlib import Path

from . import exprs as e
from .builder import Target, dashboard, row, stat, timeseries
from .variables import host_variables

F = e.FLEET
# Per agent, not per host: more than one agent may report one host (each with its own service.instance.id).
BY_AGENT = e.AGENT
AGENT_LEGEND = "{{host_name}} {{instance}}"
# Everything the agents send, whatever its name (textfile metrics have any), but what the rule evaluators derive
# from it with the same job and host_name: recording rules' level:metric:operation names, ALERTS, ALERTS_FOR_STATE.
AGENT_SERIES = '__name__!~"ALERTS.*|.*:.*"'


VMAGENT_FLAGS = Path(__file__).resolve().parents[2] / "otel-config" / "vmagent" / "vmagent.flags"
_REMOTE_WRITE_URL = re.compile(r"-remoteWrite\.url=%\{(\w+)_WRITE_URL\}")


def vmagent_backends(flags: Path = VMAGENT_FLAGS) -> list[str]:
    """The backends of the vmagent gateway's -remoteWrite.url flags, in their order (PROMETHEUS_WRITE_URL →
    prometheus). vmagent hides the URLs: it labels each one's metrics url="<n>:secret-url", n its place from 1."""
    return [match.group(1).lower() for line in flags.read_text().splitlines()
            if (match := _REMOTE_WRITE_URL.fullmatch(line.strip()))]


def _by_backend(expr: str) -> str:
    """`expr` (by url) with a `backend` label naming each remote-write URL's backend."""
    for place, backend in enumerate(vmagent_backends(), start=1):
        expr = f'label_replace({expr}, "backend", "{backend}", "url", "{place}:.*")'
    return expr


def _per_agent(metric: str) -> str:
    return f"max by ({BY_AGENT}) ({e.selector(metric, F)})"


def _agents() -> list[dict]:
    collections = "hostagent.source.collections"
    by_source = f"{BY_AGENT}, hostagent_source"
    failure = 'hostagent_outcome="failure"'
    return [
        row("Agents"),
        stat("Agents reporting", f"Agents that sent data in the last {e.REPORTING_WINDOW}.", "none",
             [Target(e.agents_reporting(F), "agents")]),
        stat("Export failures", "Failed export requests per second, all selected agents together.", "reqps",
             [Target(f"sum({e.rate_sum('hostagent.export.requests', F, BY_AGENT, failure)})", "failures")]),
        timeseries("Source collection errors",
                   "Failed collections per second for each agent source.", "cps",
                   [Target(e.rate_sum(collections, F, by_source, 'hostagent_outcome="error"'),
                           f"{AGENT_LEGEND} {{{{hostagent_source}}}}")], width=8, height=6),
        timeseries("Source collection duration", "How long each source's last collection took.", "s",
                   [Target(f"max by ({by_source}) ({e.selector('hostagent.source.duration', F)})",
                           f"{AGENT_LEGEND} {{{{hostagent_source}}}}")], width=8, height=6),
        timeseries("Export requests", "Export requests per second by outcome (success, failure).", "reqps",
                   [Target(e.rate_sum("hostagent.export.requests", F, f"{BY_AGENT}, hostagent_outcome"),
                           f"{AGENT_LEGEND} {{{{hostagent_outcome}}}}")], width=8, height=6),
        timeseries("Exported data points", "Data points exported per second by outcome.", "cps",
                   [Target(e.rate_sum("hostagent.export.data_points", F, f"{BY_AGENT}, hostagent_outcome"),
                           f"{AGENT_LEGEND} {{{{hostagent_outcome}}}}")], width=6),
        timeseries("Backlog size", "Bytes of export requests queued by the agent while the gateway is unreachable.",
                   "bytes", [Target(_per_agent("hostagent.backlog.size"), AGENT_LEGEND)], width=6),
        timeseries("Backlog age", "Age of the oldest queued export request.", "s",
                   [Target(_per_agent("hostagent.backlog.age"), AGENT_LEGEND)], width=6),
        timeseries("Backlog replayed and dropped",
                   "Queued requests replayed once the gateway answered again, and requests dropped because "
                   "the backlog was full or too old.", "reqps",
                   [Target(e.rate_sum(f"hostagent.backlog.{kind}", F, BY_AGENT), f"{AGENT_LEGEND} {kind}")
                    for kind in ("replayed", "dropped")], width=6),
        timeseries("Agent CPU", "CPU used by the agent process (1 = one full CPU).", "percentunit",
                   [Target(e.rate_sum("hostagent.cpu.time", F, BY_AGENT), AGENT_LEGEND)],
                   width=12),
        timeseries("Agent memory", "Resident memory of the agent process.", "bytes",
                   [Target(_per_agent("hostagent.memory.usage"), AGENT_LEGEND)],
                   width=12),
    ]


def _gateway() -> list[dict]:
    by_exporter = "sum by (exporter)"
    return [
        row("Gateway"),
        timeseries("Gateway queue",
                   "Data waiting to be sent to each backend: vmagent's persistent queue (bytes) or the "
                   "OpenTelemetry Collector's persistent queue per backend (requests).", "bytes",
                   [Target(_by_backend("sum by (url) (vmagent_remotewrite_pending_data_bytes)"), "vmagent {{backend}}"),
                    Target(f"{by_exporter} (otelcol_exporter_queue_size)", "otelcol {{exporter}}")],
                   overrides=[{"matcher": {"id": "byFrameRefID", "options": "B"},
                               "properties": [{"id": "unit", "value": "short"}]}], width=8),
        timeseries("Gateway send failures",
                   "Failed sends to the backends per second: vmagent's remote-write retries and dropped "
                   "packets (what the VmagentRemoteWriteFailing alert counts), or the Collector's failed "
                   "metric points.", "cps",
                   [Target(_by_backend("sum by (url) (rate(vmagent_remotewrite_retries_count_total"
                                       "[$__rate_interval]))"), "vmagent retries {{backend}}"),
                    Target(_by_backend("sum by (url) (rate(vmagent_remotewrite_packets_dropped_total"
                                       "[$__rate_interval]))"), "vmagent dropped {{backend}}"),
                    # The collector creates the failure counter with the first failure: 0 until then.
                    Target(f"{by_exporter} (rate(otelcol_exporter_send_failed_metric_points[$__rate_interval])"
                           " or rate(otelcol_exporter_sent_metric_points[$__rate_interval]) * 0)",
                           "otelcol {{exporter}}")], width=8),
        timeseries("Gateway accepted data points", "Data points received from the agents per second.", "cps",
                   [Target('sum(rate(vmagent_rows_inserted_total{type="opentelemetry"}[$__rate_interval]))',
                           "vmagent"),
                    # The agents' receiver only: otlp/prometheus is the loopback relay to the remote-write exporter.
                    Target('sum by (receiver) (rate(otelcol_receiver_accepted_metric_points{receiver="otlp"}'
                           '[$__rate_interval]))', "otelcol {{receiver}}")], width=8),
    ]


def _backends() -> list[dict]:
    return [
        row("Backends"),
        # Over an explicit window: a bare selector counts a series that stopped (a short-lived top process's) for
        # 5 minutes in Prometheus (its lookback), not in VictoriaMetrics. last_over_time, unlike present_over_time,
        # keeps the metric name: without it, Prometheus 2 fails on two metrics that share their labels.
        timeseries("Series per host",
                   "Series each host sent within the rate interval (at least four export intervals): every "
                   "source's, textfile metrics included; recording-rule results and ALERTS left out. Both backends "
                   "count them over the same window: switch the data source to compare, they should match.", "short",
                   [Target(f"count by (host_name) (last_over_time({{{AGENT_SERIES}, {F}}}{e.RATE}))",
                           "{{host_name}}")], width=12),
        timeseries("Backend ingestion",
                   "Samples per second appended by the backend itself, from its self-monitoring metrics "
                   "(Prometheus' TSDB head, VictoriaMetrics' inserted rows); empty unless the backends are "
                   "scraped.", "cps",
                   [Target("sum(rate(prometheus_tsdb_head_samples_appended_total[$__rate_interval]))", "Prometheus"),
                    Target("sum(rate(vm_rows_inserted_total[$__rate_interval]))", "VictoriaMetrics")], width=12),
    ]


def build() -> dict:
    return dashboard(
        "pipeline-health", "Pipeline health",
        "Is telemetry flowing? Agent sources and exports, the gateway's queues and the backends' ingestion.",
        host_variables(multi_host=True),
        [*_agents(), *_gateway(), *_backends()],
    )
