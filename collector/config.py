"""The agent's configuration: frozen dataclasses, validated once at load.

Precedence, highest first: ``HOSTAGENT_<SECTION>__<KEY>`` environment variables, the standard
``OTEL_*`` variables (as the Python SDK reads them), the YAML file, the defaults below.
"""

import os
import re
import ssl
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml

from collector.resource import ResourceConfig
from collector.sources import SOURCES
from collector.units import ByteSize, Duration

ENV_PREFIX = "HOSTAGENT_"
CONFIG_FILE_VARIABLE = "HOSTAGENT_CONFIG"  # names the file itself (collector --config), not an option
FILE = {"file": True}
PEM_CERTIFICATE = {"file": True, "pem": "certificate"}
PEM_KEY = {"file": True, "pem": "private key"}


class ConfigError(Exception):
    """A configuration problem, phrased for the person who wrote the configuration."""


@dataclass(frozen=True)
class ExporterConfig:
    # None: http://localhost:4318/v1/metrics for http/protobuf, http://localhost:4317 for grpc.
    endpoint: str | None = None
    protocol: str = field(default="http/protobuf", metadata={"choices": ("http/protobuf", "grpc")})
    interval: Duration = field(default=Duration(10), metadata={"min": 0.1})
    timeout: Duration = field(default=Duration(10), metadata={"min": 0.1})
    compression: str = field(default="gzip", metadata={"choices": ("gzip", "deflate", "none")})
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    headers_file: str | None = field(default=None, metadata=FILE)
    # Plaintext gRPC, or HTTPS without verifying the gateway's certificate: only when asked for.
    insecure: bool = False
    certificate: str | None = field(default=None, metadata=PEM_CERTIFICATE)
    client_certificate: str | None = field(default=None, metadata=PEM_CERTIFICATE)
    client_key: str | None = field(default=None, metadata=PEM_KEY)

    @property
    def url(self) -> str:
        if self.endpoint:
            return self.endpoint
        return "http://localhost:4317" if self.protocol == "grpc" else "http://localhost:4318/v1/metrics"

    @property
    def url_for_logs(self) -> str:
        """The endpoint without any user:password part, which must never reach a log."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@dataclass(frozen=True)
class BacklogConfig:
    directory: str | None = None
    max_bytes: ByteSize = field(default=ByteSize(16 * 2**20), metadata={"min": 0})
    max_age: Duration = field(default=Duration(3600), metadata={"min": 1})


@dataclass(frozen=True)
class HealthConfig:
    enabled: bool = True
    listen: str = field(default="127.0.0.1:13134", metadata={"pattern": r"^\[?[\w.:-]*\]?:\d{1,5}$"})
    # /readyz fails when no export succeeded within this many export intervals.
    ready_intervals: int = field(default=3, metadata={"min": 1})


@dataclass(frozen=True)
class Config:
    exporter: ExporterConfig = field(default_factory=ExporterConfig)
    backlog: BacklogConfig = field(default_factory=BacklogConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    resource: ResourceConfig = field(default_factory=ResourceConfig)
    host_root: str = field(default="/", metadata={"directory": True})
    log_level: str = field(default="info", metadata={"choices": ("debug", "info", "warning", "error")})
    sources: dict = field(default_factory=lambda: {name: s.Options() for name, s in SOURCES.items()})

    @property
    def enabled_sources(self) -> dict:
        return {name: options for name, options in self.sources.items() if options.enabled}


def load(path: str | os.PathLike | None = None, environ: typing.Mapping[str, str] = os.environ) -> Config:
    raw, origins = {}, {}
    label = str(path) if path else "defaults"
    if path:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as error:
            raise ConfigError(f"{path}: cannot read the configuration file: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of options at the top level")
    for key_path, value, variable in [*_otel_overrides(environ), *_agent_overrides(environ)]:
        _set(raw, key_path, value)
        origins[key_path] = variable
    try:
        return _build(Config, raw, ())
    except _Invalid as invalid:
        origin = next((origins[invalid.path[:n]] for n in range(len(invalid.path), 0, -1)
                       if invalid.path[:n] in origins), label)
        raise ConfigError(f"{origin}: {'.'.join(invalid.path) or 'top level'}: {invalid.message}") from None


class _Invalid(Exception):
    def __init__(self, path: tuple[str, ...], message: str):
        self.path, self.message = path, message


def _build(cls, data, path):
    if not isinstance(data, dict):
        raise _Invalid(path, f"expected a mapping, got {_show(data)}")
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            raise _Invalid((*path, str(key)), f"unknown option; expected one of: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        if cls is Config and name == "sources":
            values[name] = _build_sources(value, (*path, name))
        else:
            values[name] = _convert(value, hints[name], known[name].metadata, (*path, name))
    return cls(**values)


def _build_sources(data, path):
    if not isinstance(data, dict):
        raise _Invalid(path, f"expected a mapping of source names, got {_show(data)}")
    built = {name: source.Options() for name, source in SOURCES.items()}
    for name, options in data.items():
        if name not in SOURCES:
            raise _Invalid((*path, str(name)), f"unknown source; known sources: {', '.join(SOURCES)}")
        built[name] = _build(SOURCES[name].Options, options or {}, (*path, name))
    return built


def _convert(value, hint, metadata, path):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None:
            return None
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if is_dataclass(hint):
        return _build(hint, value, path)
    if typing.get_origin(hint) is dict and is_dataclass(item := typing.get_args(hint)[1]):
        if not isinstance(value, dict):
            raise _Invalid(path, f"expected a mapping of names, got {_show(value)}")
        return {str(name): _build(item, options or {}, (*path, str(name))) for name, options in value.items()}
    try:
        converted = _SCALARS.get(hint, _collection)(value, hint)
    except (TypeError, ValueError) as error:
        raise _Invalid(path, str(error)) from None
    _check(converted, metadata, path)
    return converted


def _check(value, metadata, path):
    if "min" in metadata and value < metadata["min"]:
        raise _Invalid(path, f"must be at least {metadata['min']}, got {value}")
    if "max" in metadata and value > metadata["max"]:
        raise _Invalid(path, f"must be at most {metadata['max']}, got {value}")
    if "choices" in metadata and value not in metadata["choices"]:
        raise _Invalid(path, f"expected one of {', '.join(metadata['choices'])}; got {_show(value)}")
    if "pattern" in metadata and not re.match(metadata["pattern"], value):
        raise _Invalid(path, f"expected host:port such as 127.0.0.1:13134, got {_show(value)}")
    if metadata.get("file") and not Path(value).is_file():
        raise _Invalid(path, f"file {value} does not exist or is not a regular file")
    if "pem" in metadata and (problem := _pem_problem(value, metadata["pem"])):
        raise _Invalid(path, f"file {value} {problem}")
    if metadata.get("directory") and not Path(value).is_dir():
        raise _Invalid(path, f"directory {value} does not exist")
    for pattern in value if metadata.get("regex") else ():
        try:
            re.compile(pattern)
        except re.error as error:
            raise _Invalid(path, f"invalid regular expression {pattern!r}: {error}") from None


def _pem_problem(path: str, kind: str) -> str | None:
    """Why `path` cannot serve as a PEM certificate or private key; checked here so that a bad file is an error
    at start, not a failed TLS handshake at every export."""
    try:
        if kind == "certificate":
            ssl.create_default_context(cafile=path)  # parses every certificate in the file
        elif not re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", Path(path).read_bytes()):
            return "holds no PEM private key"
    except ssl.SSLError as error:
        return f"holds no valid PEM certificate ({error.reason or error})"
    except OSError as error:
        return f"cannot be read: {error.strerror}"
    return None


def _strict(kind, expected):
    def convert(value, _hint):
        # bool is an int in Python; a YAML "yes" must not become an interval of 1 s.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise TypeError(f"expected {expected}, got {_show(value)}")
        return value
    return convert


def _collection(value, hint):
    origin = typing.get_origin(hint)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"expected a list of strings, got {_show(value)}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {_show(value)}")
        return {str(k): str(v) for k, v in value.items()}
    raise TypeError(f"unsupported option type {hint}")


_SCALARS = {
    bool: _strict(bool, "true or false"),
    int: _strict(int, "an integer"),
    str: _strict(str, "a string"),
    Duration: lambda value, _: Duration.parse(value),
    ByteSize: lambda value, _: ByteSize.parse(value),
}


def _show(value) -> str:
    return f"{type(value).__name__} {value!r}"


def _set(raw: dict, key_path: tuple[str, ...], value) -> None:
    node = raw
    for key in key_path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[key_path[-1]] = value


def _agent_overrides(environ):
    for variable, text in sorted(environ.items()):
        if variable.startswith(ENV_PREFIX) and variable != CONFIG_FILE_VARIABLE:
            key_path = tuple(variable[len(ENV_PREFIX):].lower().split("__"))
            try:
                value = yaml.safe_load(text) if text else None
            except yaml.YAMLError:
                value = text
            yield key_path, value, f"environment variable {variable}"


# Standard OTLP exporter variables, signal-specific first, as opentelemetry-python reads them.
_OTEL_EXPORTER_VARIABLES = {
    "PROTOCOL": "protocol", "HEADERS": "headers", "CERTIFICATE": "certificate",
    "CLIENT_CERTIFICATE": "client_certificate", "CLIENT_KEY": "client_key",
    "COMPRESSION": "compression", "TIMEOUT": "timeout", "INSECURE": "insecure",
}


def _otel_overrides(environ):
    def lookup(suffix):
        for variable in (f"OTEL_EXPORTER_OTLP_METRICS_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}"):
            if environ.get(variable):
                return variable, environ[variable].strip()
        return None, None

    for suffix, key in _OTEL_EXPORTER_VARIABLES.items():
        variable, text = lookup(suffix)
        if variable:
            yield ("exporter", key), _otel_value(key, text), f"environment variable {variable}"
    if environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        yield (("exporter", "endpoint"), environ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"].strip(),
               "environment variable OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    elif environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        base = environ["OTEL_EXPORTER_OTLP_ENDPOINT"].strip()
        _, protocol = lookup("PROTOCOL")
        # The HTTP exporter appends the signal path to the generic endpoint; gRPC uses it as is.
        endpoint = base if protocol == "grpc" else base.rstrip("/") + "/v1/metrics"
        yield ("exporter", "endpoint"), endpoint, "environment variable OTEL_EXPORTER_OTLP_ENDPOINT"
    if environ.get("OTEL_METRIC_EXPORT_INTERVAL"):
        text = environ["OTEL_METRIC_EXPORT_INTERVAL"].strip()
        value = int(text) / 1000 if text.isdigit() else text
        yield ("exporter", "interval"), value, "environment variable OTEL_METRIC_EXPORT_INTERVAL (milliseconds)"


def _otel_value(key, text):
    if key == "headers":
        pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
        return {unquote(k).strip(): unquote(v).strip() for k, v in pairs}
    if key == "insecure":
        return text.lower() == "true"
    if key == "timeout":  # opentelemetry-python reads this in seconds (the specification says ms)
        return float(text) if text.replace(".", "", 1).isdigit() else text
    return text
