"""Static check of otel-config/gateway.yaml, the OpenTelemetry Collector (contrib) gateway.

`problems(config)` returns one readable line per defect; an empty list means the config passes.
The config is the parsed YAML with `${env:NAME:-default}` left in place (`resolve` expands them).
"""
from __future__ import annotations

import re
from typing import Any, Iterator

# Component types used or allowed here, each checked against the otelcol-contrib release manifest
# (opentelemetry-collector-releases, distributions/otelcol-contrib/manifest.yaml) and the
# component's README. kind -> type -> Go module.
CONTRIB_COMPONENTS: dict[str, dict[str, str]] = {
    "receivers": {
        "otlp": "go.opentelemetry.io/collector/receiver/otlpreceiver",
    },
    "processors": {
        "memory_limiter": "go.opentelemetry.io/collector/processor/memorylimiterprocessor",
        "batch": "go.opentelemetry.io/collector/processor/batchprocessor",
        "transform": "github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor",
        "resource": "github.com/open-telemetry/opentelemetry-collector-contrib/processor/resourceprocessor",
        "filter": "github.com/open-telemetry/opentelemetry-collector-contrib/processor/filterprocessor",
    },
    "exporters": {
        "prometheusremotewrite":
            "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter",
        "otlp": "go.opentelemetry.io/collector/exporter/otlpexporter",
        "otlphttp": "go.opentelemetry.io/collector/exporter/otlphttpexporter",
    },
    "extensions": {
        "health_check": "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension",
        "file_storage": "github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage",
    },
}

# How each exporter keeps its queue on disk. The exporterhelper ones take `sending_queue.storage`
# (a storage extension); prometheusremotewrite has no `sending_queue` at all, only its `wal`.
PERSISTENCE = {"prometheusremotewrite": "wal", "otlp": "sending_queue", "otlphttp": "sending_queue"}

# The label scheme of docs/gateway.md as resource attribute keys (labels after dots -> '_').
IDENTITY_KEYS = {"job", "instance", "host.name", "host.id", "os.type", "k8s.node.name", "k8s.cluster.name"}
SCOPE_BLANKING = ('set(scope.name, "")', 'set(scope.version, "")', 'delete_matching_keys(scope.attributes, ".*")')

# Listen ports and remote-write endpoints of the brief (the `make run` defaults).
PORTS = {"otlp grpc": 4317, "otlp http": 4318, "health_check": 13133, "telemetry": 8888}
WRITE_ENDPOINTS = {"prometheus": ":9090/api/v1/write", "victoriametrics": ":8428/api/v1/write"}

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


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def problems(config: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for check in (_placeholders, _components, _pipelines, _exporters, _same_translation, _identity, _ports):
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


def _components(config: dict[str, Any]) -> Iterator[str]:
    service = config.get("service") or {}
    used = {kind: set() for kind in CONTRIB_COMPONENTS}
    used["extensions"].update(service.get("extensions") or [])
    for name, pipeline in _pipelines_of(config).items():
        for kind in ("receivers", "processors", "exporters"):
            for component_id in pipeline.get(kind) or []:
                used[kind].add(component_id)
                if component_id not in _section(config, kind):
                    yield f"pipeline {name}: {kind[:-1]} {component_id} is not defined"
    for component_id in used["extensions"] - set(_section(config, "extensions")):
        yield f"service.extensions: {component_id} is not defined"
    for kind, known in CONTRIB_COMPONENTS.items():
        for component_id in _section(config, kind):
            if component_type(component_id) not in known:
                yield f"{kind}: {component_id} is not a component of the contrib distribution"
            if component_id not in used[kind]:
                yield f"{kind}: {component_id} is defined but never used"


def _pipelines(config: dict[str, Any]) -> Iterator[str]:
    pipelines = _pipelines_of(config)
    if not any(name.split("/")[0] == "metrics" for name in pipelines):
        yield "service.pipelines: no metrics pipeline"
    for name, pipeline in pipelines.items():
        processors = [component_type(p) for p in pipeline.get("processors") or []]
        for kind in ("receivers", "exporters"):
            if not pipeline.get(kind):
                yield f"pipeline {name}: no {kind}"
        if processors[:1] != ["memory_limiter"]:
            yield f"pipeline {name}: memory_limiter must be the first processor"
        if "batch" not in processors:
            yield f"pipeline {name}: no batch processor"


def _exporters(config: dict[str, Any]) -> Iterator[str]:
    extensions = _section(config, "extensions")
    enabled = set((config.get("service") or {}).get("extensions") or [])
    wal_dirs: dict[str, str] = {}
    for exporter_id, settings in _section(config, "exporters").items():
        settings = settings or {}
        kind = component_type(exporter_id)
        if not (settings.get("retry_on_failure") or {}).get("enabled"):
            yield f"exporter {exporter_id}: retry_on_failure is not enabled"
        style = PERSISTENCE.get(kind)
        if style == "wal":
            yield from _wal_problems(exporter_id, settings, wal_dirs)
        elif style == "sending_queue":
            yield from _storage_problems(exporter_id, settings, extensions, enabled)
        else:
            yield f"exporter {exporter_id}: no known persistent queue for type {kind}"


def _same_translation(config: dict[str, Any]) -> Iterator[str]:
    """Every prometheusremotewrite exporter has the same settings apart from where it writes."""
    per_backend = {exporter_id: {key: value for key, value in (settings or {}).items() if key not in ("endpoint", "wal")}
                   for exporter_id, settings in _section(config, "exporters").items()
                   if component_type(exporter_id) == "prometheusremotewrite"}
    first_id, first = next(iter(per_backend.items()), (None, None))
    for exporter_id, settings in per_backend.items():
        if settings != first:
            yield f"exporter {exporter_id}: settings differ from {first_id} (the backends would get different series)"


def _wal_problems(exporter_id: str, settings: dict[str, Any], wal_dirs: dict[str, str]) -> Iterator[str]:
    if "sending_queue" in settings:
        yield f"exporter {exporter_id}: prometheusremotewrite has no sending_queue (invalid key); use wal"
    directory = (settings.get("wal") or {}).get("directory")
    if not directory:
        yield f"exporter {exporter_id}: no wal.directory, so its queue is lost on restart"
    elif directory in wal_dirs:
        yield f"exporter {exporter_id}: wal.directory {directory} is also used by {wal_dirs[directory]}"
    else:
        wal_dirs[directory] = exporter_id
    if (settings.get("remote_write_queue") or {}).get("enabled", True):
        yield f"exporter {exporter_id}: remote_write_queue is enabled: an in-memory queue before the wal"
    if not (settings.get("resource_to_telemetry_conversion") or {}).get("enabled"):
        yield f"exporter {exporter_id}: resource_to_telemetry_conversion is not enabled (no host_name label)"
    if (settings.get("target_info") or {}).get("enabled", True):
        yield f"exporter {exporter_id}: target_info is enabled (the label scheme has no target_info)"


def _storage_problems(exporter_id: str, settings: dict[str, Any], extensions: dict[str, Any],
                      enabled: set[str]) -> Iterator[str]:
    queue = settings.get("sending_queue") or {}
    storage = queue.get("storage")
    if queue.get("enabled") is False or not storage:
        yield f"exporter {exporter_id}: sending_queue has no storage, so it is not persistent"
    elif component_type(storage) != "file_storage" or storage not in extensions:
        yield f"exporter {exporter_id}: sending_queue.storage {storage} is not a defined file_storage extension"
    elif storage not in enabled:
        yield f"exporter {exporter_id}: sending_queue.storage {storage} is not in service.extensions"


def _identity(config: dict[str, Any]) -> Iterator[str]:
    processors = _section(config, "processors")
    for name, pipeline in _pipelines_of(config).items():
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
    for backend, suffix in WRITE_ENDPOINTS.items():
        endpoint = (_section(config, "exporters").get(f"prometheusremotewrite/{backend}") or {}).get("endpoint", "")
        if not resolve(str(endpoint)).endswith(suffix):
            yield f"exporter prometheusremotewrite/{backend}: default endpoint {endpoint!r} does not end in {suffix}"
