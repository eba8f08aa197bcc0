"""Design check of otel-config/gateway.yaml, the OpenTelemetry Collector gateway.

`problems(config)` returns one readable line per defect; an empty list means the config passes.
The config is the parsed YAML with `${env:NAME:-default}` left in place (`resolve` expands them).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from collector.config import ExporterConfig

# Which component types exist, which keys they take and whether the environment placeholders resolve is for the
# collector itself to say (`validate`, tests/gateway/test_gateway_config.py). This checks the project's design.

# `validate` (v0.160.0) does not reject an unknown key in these two exporters' settings (a misspelled one is
# silently ignored), so their keys are checked here: the ones this config and docs/gateway.md use.
EXPORTER_KEYS = {
    "otlphttp": {"endpoint", "metrics_endpoint", "compression", "timeout", "retry_on_failure", "sending_queue", "tls",
                 "headers"},
    "prometheusremotewrite": {"endpoint", "timeout", "resource_to_telemetry_conversion", "target_info",
                              "retry_on_failure", "remote_write_queue", "tls", "headers"},
}

# The agents' pipeline and the loopback pipeline Prometheus' queue drains into (docs/gateway.md).
AGENT_PIPELINE = "metrics"
QUEUE_EXPORTER = "otlphttp"
TRANSLATING_EXPORTER = "prometheusremotewrite"
# The one backend that translates OTLP itself (-opentelemetry.usePrometheusNaming): its queue sends there directly.
OTLP_BACKEND, OTLP_PATH = "victoriametrics", "/opentelemetry/v1/metrics"

# The label scheme of docs/gateway.md as resource attribute keys (labels after dots -> '_').
IDENTITY_KEYS = {"job", "instance", "host.name", "host.id", "os.type", "k8s.node.name", "k8s.cluster.name"}
SCOPE_BLANKING = ('set(scope.name, "")', 'set(scope.version, "")', 'delete_matching_keys(scope.attributes, ".*")')

# The environment variable that turns fsync of the queues on (docs/gateway.md, "What survives what").
FSYNC_SETTING = "OTELCOL_STORAGE_FSYNC"

# Listen ports and backend endpoints of the brief (the `make run` defaults).
PORTS = {"otlp grpc": 4317, "otlp http": 4318, "health_check": 13133, "telemetry": 8888}
BACKEND_ENDPOINTS = {f"{TRANSLATING_EXPORTER}/prometheus": ":9090/api/v1/write",
                     f"{QUEUE_EXPORTER}/{OTLP_BACKEND}": f":8428{OTLP_PATH}"}

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_ENV_WITH_DEFAULT = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*):-(.*)")
_KEEP_KEYS = re.compile(r'keep_keys\(resource\.attributes,\s*\[(.*)\]\)')


def resolve(value: str, env: dict[str, str] | None = None) -> str:
    """`value` with every `${env:NAME:-default}` replaced by env[NAME], else by the default."""
    env = env or {}

    def one(match: re.Match[str]) -> str:
        found = _ENV_WITH_DEFAULT.fullmatch(match.group(1))
        return env.get(found.group(1), found.group(2)) if found else match.group(0)
    return _PLACEHOLDER.sub(one, value)


def env_names(config: Any) -> set[str]:
    """Every NAME of a `${env:NAME:-default}` in the config."""
    return {found.group(1) for text in _strings(config) for raw in _PLACEHOLDER.findall(text)
            if (found := _ENV_WITH_DEFAULT.fullmatch(raw))}


def without_relays(config: dict[str, Any]) -> dict[str, Any]:
    """The config without the loopback relay between Prometheus' queue and its remote-write exporter: what is left
    listens and sends only where a deployment says."""
    relays = {receiver_id for name, pipeline in _pipelines_of(config).items() if name != AGENT_PIPELINE
              for receiver_id in pipeline.get("receivers") or []}
    return {**config,
            "receivers": {k: v for k, v in _section(config, "receivers").items() if k not in relays},
            "exporters": {k: v for k, v in _section(config, "exporters").items()
                          if component_type(k) != QUEUE_EXPORTER or k == f"{QUEUE_EXPORTER}/{OTLP_BACKEND}"}}


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def problems(config: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for check in (_placeholders, _exporter_keys, _agent_pipeline, _agent_connections, _storage, _queues, _relays,
                  _translation, _same_settings, _identity, _ports):
        found.extend(check(config))
    return found


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _section(config: dict[str, Any], kind: str) -> dict[str, Any]:
    return config.get(kind) or {}


def _pipelines_of(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    return (config.get("service") or {}).get("pipelines") or {}


def _placeholders(config: dict[str, Any]) -> Iterator[str]:
    for text in _strings(config):
        for raw in _PLACEHOLDER.findall(text):
            if not _ENV_WITH_DEFAULT.fullmatch(raw):
                yield f"placeholder ${{{raw}}} is not of the form ${{env:NAME:-default}}"


def _exporter_keys(config: dict[str, Any]) -> Iterator[str]:
    for kind, known in EXPORTER_KEYS.items():
        for exporter_id, settings in _exporters_of(config, kind).items():
            for key in sorted(set(settings) - known):
                yield f"exporter {exporter_id}: unknown key {key} (validate would not say so)"


def _agent_pipeline(config: dict[str, Any]) -> Iterator[str]:
    pipeline = _pipelines_of(config).get(AGENT_PIPELINE) or {}
    if (pipeline.get("processors") or [])[:1] != ["memory_limiter"]:
        yield f"pipeline {AGENT_PIPELINE}: memory_limiter must be the first processor"
    if not pipeline.get("exporters"):
        yield f"pipeline {AGENT_PIPELINE}: no exporters"
    for exporter_id in pipeline.get("exporters") or []:
        if component_type(exporter_id) != QUEUE_EXPORTER:
            yield (f"pipeline {AGENT_PIPELINE}: exporter {exporter_id} is not a {QUEUE_EXPORTER} queue "
                   "(agents must get their answer only once the data is on disk)")


def _agent_connections(config: dict[str, Any]) -> Iterator[str]:
    """An agent keeps its connection open between exports and a Service balances connections, not requests: the
    gateway must close one idle for less than the agents' interval, or agents stay where a rolling update put them."""
    http = ((_section(config, "receivers").get("otlp") or {}).get("protocols") or {}).get("http") or {}
    interval = ExporterConfig().interval
    if "idle_timeout" not in http or _seconds(resolve(str(http["idle_timeout"]))) >= interval:
        yield (f"receiver otlp: http idle_timeout {http.get('idle_timeout', '1m (the default)')} is not below the "
               f"agents' export interval ({interval:g}s): agents never reconnect, replicas never rebalance")


def _storage(config: dict[str, Any]) -> Iterator[str]:
    """The queues' file_storage: fsync a site setting, off unless asked (it costs the gateway about a quarter of its
    data points per core; docs/gateway.md, "What survives what"), a corrupted queue file set aside rather than
    a crash loop, and the disk given back after an outage: bbolt never shrinks its file by itself, so without
    compaction a queue file stays as large as the longest outage made it."""
    for storage_id, settings in _section(config, "extensions").items():
        if component_type(storage_id) != "file_storage":
            continue
        settings = settings or {}
        if settings.get("fsync") != f"${{env:{FSYNC_SETTING}:-false}}":
            yield f"extension {storage_id}: fsync must be the site setting ${{env:{FSYNC_SETTING}:-false}}"
        if settings.get("recreate") is not True:
            yield f"extension {storage_id}: recreate must be true (else a corrupted queue file is a crash loop)"
        compaction = settings.get("compaction") or {}
        for when, what in (("on_start", "at a restart"), ("on_rebound", "once a queue has drained while running")):
            if compaction.get(when) is not True:
                yield f"extension {storage_id}: compaction.{when} must be true (else no disk is given back {what})"


def _queues(config: dict[str, Any]) -> Iterator[str]:
    extensions = _section(config, "extensions")
    enabled = set((config.get("service") or {}).get("extensions") or [])
    for exporter_id, settings in _exporters_of(config, QUEUE_EXPORTER).items():
        queue = settings.get("sending_queue") or {}
        storage = queue.get("storage")
        if queue.get("enabled") is False or not storage:
            yield f"exporter {exporter_id}: sending_queue has no storage, so it is not persistent"
        elif component_type(storage) != "file_storage" or storage not in extensions:
            yield f"exporter {exporter_id}: sending_queue.storage {storage} is not a defined file_storage extension"
        elif storage not in enabled:
            yield f"exporter {exporter_id}: sending_queue.storage {storage} is not in service.extensions"
        retry = settings.get("retry_on_failure") or {}
        if not retry.get("enabled") or retry.get("max_elapsed_time") not in ("0s", 0):
            yield (f"exporter {exporter_id}: retry_on_failure must be enabled with max_elapsed_time 0s "
                   "(retry until the backend is back)")


def _relays(config: dict[str, Any]) -> Iterator[str]:
    """Each queue sends to the loopback receiver of a pipeline that ends in one translating exporter, except the
    queue of the backend that takes OTLP itself, which sends to its OTLP endpoint."""
    receivers = _section(config, "receivers")
    for exporter_id, settings in _exporters_of(config, QUEUE_EXPORTER).items():
        if exporter_id == f"{QUEUE_EXPORTER}/{OTLP_BACKEND}":
            if "endpoint" in settings or not resolve(str(settings.get("metrics_endpoint", ""))).endswith(OTLP_PATH):
                yield f"exporter {exporter_id}: must send to metrics_endpoint …{OTLP_PATH} (its OTLP ingestion)"
            continue
        endpoint = resolve(str(settings.get("endpoint", ""))).removeprefix("http://")
        fed = [(name, pipeline) for name, pipeline in _pipelines_of(config).items()
               for receiver_id in pipeline.get("receivers") or []
               if resolve(str(((receivers.get(receiver_id) or {}).get("protocols") or {})
                               .get("http", {}).get("endpoint", ""))) == endpoint]
        if len(fed) != 1:
            yield f"exporter {exporter_id}: its endpoint {endpoint} is the receiver of {len(fed)} pipelines, not 1"
            continue
        name, pipeline = fed[0]
        if not endpoint.startswith("127.0.0.1:"):
            yield f"pipeline {name}: its receiver listens on {endpoint}, not on loopback"
        if [component_type(e) for e in pipeline.get("exporters") or []] != [TRANSLATING_EXPORTER]:
            yield f"pipeline {name}: must end in exactly one {TRANSLATING_EXPORTER} exporter"


def _translation(config: dict[str, Any]) -> Iterator[str]:
    for exporter_id, settings in _exporters_of(config, TRANSLATING_EXPORTER).items():
        if (settings.get("retry_on_failure") or {}).get("enabled", True):
            yield f"exporter {exporter_id}: retry_on_failure is enabled (the queue retries; two retriers send twice)"
        if "wal" in settings:
            yield f"exporter {exporter_id}: has a wal (unbounded, blocked by a refused request: use the queue)"
        if (settings.get("remote_write_queue") or {}).get("enabled", True):
            yield f"exporter {exporter_id}: remote_write_queue is enabled: an in-memory queue after the disk queue"
        if not (settings.get("resource_to_telemetry_conversion") or {}).get("enabled"):
            yield f"exporter {exporter_id}: resource_to_telemetry_conversion is not enabled (no host_name label)"
        if (settings.get("target_info") or {}).get("enabled", True):
            yield f"exporter {exporter_id}: target_info is enabled (the label scheme has no target_info)"
    queue_timeouts = {_seconds(s.get("timeout", "5s")) for s in _exporters_of(config, QUEUE_EXPORTER).values()}
    for exporter_id, settings in _exporters_of(config, TRANSLATING_EXPORTER).items():
        if queue_timeouts and _seconds(settings.get("timeout", "5s")) >= min(queue_timeouts):
            yield (f"exporter {exporter_id}: timeout must be shorter than the queues' (else a slow backend gets "
                   "a request again while the first copy is still being written)")


def _same_settings(config: dict[str, Any]) -> Iterator[str]:
    """Exporters of one type have the same settings apart from where they send: both backends get the same series."""
    for kind in (QUEUE_EXPORTER, TRANSLATING_EXPORTER):
        per_backend = {exporter_id: {key: value for key, value in settings.items()
                                     if key not in ("endpoint", "metrics_endpoint")}
                       for exporter_id, settings in _exporters_of(config, kind).items()}
        first_id, first = next(iter(per_backend.items()), (None, None))
        for exporter_id, settings in per_backend.items():
            if settings != first:
                yield (f"exporter {exporter_id}: settings differ from {first_id} "
                       "(the backends would be treated differently)")


def _exporters_of(config: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {exporter_id: settings or {} for exporter_id, settings in _section(config, "exporters").items()
            if component_type(exporter_id) == kind}


def _seconds(duration: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", str(duration)).groups()
    return float(number) * {"ms": 0.001, "s": 1, "m": 60}[unit]


def _identity(config: dict[str, Any]) -> Iterator[str]:
    processors = _section(config, "processors")
    for name, pipeline in [(AGENT_PIPELINE, _pipelines_of(config).get(AGENT_PIPELINE) or {})]:
        statements = [statement
                      for processor_id in pipeline.get("processors") or []
                      if component_type(processor_id) == "transform"
                      for group in (processors.get(processor_id) or {}).get("metric_statements") or []
                      for statement in (group.get("statements") if isinstance(group, dict) else [group])]
        kept = [set(re.findall(r'"([^"]+)"', m.group(1))) for s in statements if (m := _KEEP_KEYS.search(s))]
        if kept != [IDENTITY_KEYS]:
            yield (f"pipeline {name}: resource attributes are not reduced to exactly {sorted(IDENTITY_KEYS)}"
                   f" by one keep_keys (found {[sorted(k) for k in kept]})")
        for needed in SCOPE_BLANKING:
            if needed not in statements:
                yield f"pipeline {name}: missing {needed} (otel_scope_* labels would appear)"


def _port(address: str) -> int | None:
    tail = resolve(str(address)).rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _ports(config: dict[str, Any]) -> Iterator[str]:
    protocols = (_section(config, "receivers").get("otlp") or {}).get("protocols") or {}
    reader = next(iter(((config.get("service") or {}).get("telemetry") or {})
                       .get("metrics", {}).get("readers") or []), {})
    prometheus = ((reader.get("pull") or {}).get("exporter") or {}).get("prometheus") or {}
    actual = {
        "otlp grpc": _port((protocols.get("grpc") or {}).get("endpoint", "")),
        "otlp http": _port((protocols.get("http") or {}).get("endpoint", "")),
        "health_check": _port((_section(config, "extensions").get("health_check") or {}).get("endpoint", "")),
        "telemetry": _port(f":{prometheus.get('port', '')}"),
    }
    for what, port in PORTS.items():
        if actual[what] != port:
            yield f"{what}: default port is {actual[what]}, the brief says {port}"
    for exporter_id, suffix in BACKEND_ENDPOINTS.items():
        settings = _section(config, "exporters").get(exporter_id) or {}
        endpoint = settings.get("endpoint", settings.get("metrics_endpoint", ""))
        if not resolve(str(endpoint)).endswith(suffix):
            yield f"exporter {exporter_id}: default endpoint {endpoint!r} does not end in {suffix}"
