"""The agent's configuration: frozen dataclasses, validated once at load.

Precedence, highest first: ``HOSTAGENT_<SECTION>__<KEY>`` environment variables, the standard
``OTEL_*`` variables (as the Python SDK reads them), the YAML file, the defaults below.

Every problem, in the file or in a variable, is one ConfigError line: where (the file, with line and column
for YAML, or the variable), the key, what is expected and what was found.
"""

import os
import re
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from collector.resource import ResourceConfig
from collector.sources import SOURCES
from collector.units import ByteSize, Duration, show_amount

ENV_PREFIX = "HOSTAGENT_"
CONFIG_FILE_VARIABLE = "HOSTAGENT_CONFIG"  # names the file itself (collector --config), not an option
FILE = {"file": True}
PEM_CERTIFICATE = {"file": True, "pem": "certificate"}
PEM_KEY = {"file": True, "pem": "private key"}
# The range of every duration, count and size whose field sets none of its own (docs: README, Configuration).
DEFAULT_RANGES = {Duration: (Duration(0.1), Duration(24 * 3600)), int: (1, 10_000), ByteSize: (0, 64 * 2**30)}
# An HTTP header name is an RFC 9110 token; values are printable ASCII, what HTTP/1.1 and gRPC metadata carry.
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
TOKEN_CHARACTERS = "letters, digits and !#$%&'*+-.^_`|~"
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]+")
URL_CREDENTIALS = re.compile(r"(?<=//)[^/?#]*@")  # a URL's user:password@ (or user@)
# Headers the transport sets itself, refused in exporter.headers, headers_file and OTEL_EXPORTER_OTLP_*HEADERS
# (names are case-insensitive): a second or contrary value breaks every export. HTTP/1.1 frames the request with
# Host, Content-Length, Content-Type and Content-Encoding (collector/http11.py, collector/transport.py); a
# Transfer-Encoding would contradict the Content-Length, and the hop-by-hop fields (Connection, Keep-Alive,
# Proxy-Connection, TE, Trailer, Upgrade) change what the connection is. gRPC owns content-type, te and grpc-*
# (reserved by its specification; grpcio drops some of them without a word) and HTTP/2 forbids the
# connection-specific ones (RFC 9113, 8.2.2).
TRANSPORT_HEADERS = ("host", "content-length", "content-type", "content-encoding", "transfer-encoding", "connection",
                     "keep-alive", "proxy-connection", "te", "trailer", "upgrade")
TRANSPORT_HEADER_PREFIX = "grpc-"
# An OTEL_RESOURCE_ATTRIBUTES value as W3C Baggage writes it: printable ASCII but space " , ; \ (percent-encoded).
BAGGAGE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
# An OTEL_* duration: a number in the variable's unit, as the SDK reads it with float() (which also takes 1e3, nan).
OTEL_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# `sources`: each key a source, with that source's options class.
SOURCE_OPTIONS = {"options_per_key": {name: source.Options for name, source in SOURCES.items()}, "key": "source"}


# A configuration nests 5 levels deep; a document deeper than this is not one (and PyYAML's recursion ends at ~500).
MAX_NESTING = 100
_OPENING = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
            yaml.FlowSequenceStartToken)
_CLOSING = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


class ConfigError(Exception):
    """A configuration problem, phrased for the person who wrote the configuration, on one line."""


@dataclass(frozen=True)
class ExporterConfig:
    # None: http://localhost:4318/v1/metrics for http/protobuf, http://localhost:4317 for grpc.
    endpoint: str | None = None
    # More gateways, in order: a request `endpoint` cannot take now goes to the next one (docs/reliability.md).
    failover_endpoints: tuple[str, ...] = ()
    protocol: str = field(default="http/protobuf", metadata={"choices": ("http/protobuf", "grpc")})
    interval: Duration = field(default=Duration(10))
    timeout: Duration = field(default=Duration(10), metadata={"max": Duration(300)})
    compression: str = field(default="gzip", metadata={"choices": ("gzip", "deflate", "none")})
    headers: dict[str, str] = field(default_factory=dict, repr=False, metadata={"headers": True})
    headers_file: str | None = field(default=None, metadata={"file": True, "headers": True})
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
        return without_credentials(self.url)

    def problems(self):
        """(option, problem) for each endpoint the chosen protocol cannot use, and for a client certificate
        without its key or a key without its certificate."""
        for key, url in [("endpoint", self.endpoint), *(("failover_endpoints", u) for u in self.failover_endpoints)]:
            if url is not None and (problem := endpoint_problem(url, self.protocol)):
                yield key, problem
        if self.client_key and not self.client_certificate:
            yield "client_key", "expected client_certificate too, the certificate of this key"
        elif self.client_certificate and (problem := client_pair_problem(self)):
            yield problem

    @property
    def gateways(self) -> list["ExporterConfig"]:
        """This config once per gateway: `endpoint`, then each of `failover_endpoints`."""
        return [self, *(replace(self, endpoint=url, failover_endpoints=()) for url in self.failover_endpoints)]


@dataclass(frozen=True)
class BacklogConfig:
    directory: str | None = field(default=None, metadata={"directory_to_make": True})
    max_bytes: ByteSize = field(default=ByteSize(16 * 2**20))
    max_age: Duration = field(default=Duration(3600), metadata={"min": 1, "max": Duration(7 * 24 * 3600)})


@dataclass(frozen=True)
class HealthConfig:
    enabled: bool = True
    listen: str = field(default="127.0.0.1:13134", metadata={"listen": True})
    # /readyz fails when no export succeeded within this many export intervals.
    ready_intervals: int = field(default=3, metadata={"max": 1000})


@dataclass(frozen=True)
class Config:
    exporter: ExporterConfig = field(default_factory=ExporterConfig)
    backlog: BacklogConfig = field(default_factory=BacklogConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    resource: ResourceConfig = field(default_factory=ResourceConfig)
    # a directory with proc/stat readable under it: the host's / (or in a container where it is mounted)
    host_root: str = field(default="/", metadata={"directory": True, "host_root": True})
    log_level: str = field(default="info", metadata={"choices": ("debug", "info", "warning", "error")})
    sources: dict = field(default_factory=lambda: _defaults(SOURCE_OPTIONS), metadata=SOURCE_OPTIONS)

    @property
    def enabled_sources(self) -> dict:
        return {name: options for name, options in self.sources.items() if options.enabled}


def without_credentials(url: str) -> str:
    """The URL without any user:password part, which must never reach a log or an error message (a regular
    expression rather than urlsplit, which refuses some malformed URLs that must still be shown)."""
    return URL_CREDENTIALS.sub("", url, count=1)


def load(path: str | os.PathLike | None = None, environ: typing.Mapping[str, str] = os.environ) -> Config:
    label = str(path) if path else "defaults"
    raw = _read_file(path) if path else {}
    _check_resource_attributes(environ)
    origins, blocked = {}, []
    try:
        for key_path, value, variable in [*_otel_overrides(environ, raw), *_agent_overrides(environ)]:
            if (in_the_way := _set(raw, key_path, value)) is None:
                origins[key_path] = variable
            else:
                blocked.append((variable, in_the_way))
        config = _build(Config, raw, ())
    except _Invalid as invalid:
        raise ConfigError(f"{_origin(invalid.path, origins, label)}: {_show_path(invalid.path)}: "
                          f"{invalid.message}") from None
    # Blamed only now: a section the file itself gets wrong (`exporter: []`) is the file's error, not the variable's.
    for variable, invalid in blocked:
        raise ConfigError(f"{variable}: {_show_path(invalid.path)}: {invalid.message}")
    return config


class _Invalid(Exception):
    def __init__(self, path: tuple[str, ...], message: str):
        self.path, self.message = path, message


def _origin(path, origins, label):
    """The variable that set this key, a section above it, or a key below it (an unknown name in the middle of
    a variable's path); else the file."""
    for n in range(len(path), 0, -1):
        if path[:n] in origins:
            return origins[path[:n]]
    return next((variable for key_path, variable in origins.items() if key_path[:len(path)] == path), label)


def _show_path(path) -> str:
    return ".".join(map(_show_name, path))


def _show_name(name: str) -> str:
    """A key or file name as is, unless it holds a line break or another control character."""
    return name if name.isprintable() else repr(name)


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys instead of letting the last one win unnoticed."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, typing.Hashable) and key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}",
                                                            key_node.start_mark)
                if isinstance(key, typing.Hashable):
                    seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except ValueError as error:  # a timestamp such as 2001-13-01: reported with its line and column
            raise yaml.constructor.ConstructorError(None, None, str(error), node.start_mark) from None


def parse_yaml(text: str):
    """The YAML value of `text`; ValueError with a one-line reason (and line and column) when it is not YAML."""
    try:
        if deepest := _too_deep(text):
            raise ValueError(f"line {deepest.line + 1}, column {deepest.column + 1}: nested more "
                             f"than {MAX_NESTING} levels deep")
        return yaml.load(text, Loader=_Loader)  # a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise ValueError(f"line {mark.line + 1}, column {mark.column + 1}: not valid YAML: "
                         f"{error.problem or error.context}") from None
    except yaml.reader.ReaderError as error:
        raise ValueError(f"{_line_column(text, error.position)}: not valid YAML: unacceptable character "
                         f"#x{error.character:04x}: {error.reason}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"not valid YAML: {type(error).__name__}: {error}") from None


def _too_deep(text: str) -> yaml.Mark | None:
    """Where `text` nests deeper than MAX_NESTING, found by the scanner, which is iterative: PyYAML's parser and
    composer recurse, and fail about 500 levels deep with a RecursionError that has no line and column."""
    depth = 0
    for token in yaml.scan(text, Loader=_Loader):
        if isinstance(token, _OPENING):
            depth += 1
            if depth > MAX_NESTING:
                return token.start_mark
        elif isinstance(token, _CLOSING):
            depth -= 1
    return None


def _line_column(text: str, position: int) -> str:
    line_start = text.rfind("\n", 0, position) + 1
    return f"line {text.count(chr(10), 0, position) + 1}, column {position - line_start + 1}"


def _read_file(path) -> dict:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        where = _line_column(data.decode("utf-8", "replace"), len(data[:error.start].decode("utf-8", "replace")))
        raise ConfigError(f"{path}: {where}: expected UTF-8 text, found byte 0x{data[error.start]:02x}") from None
    try:
        raw = parse_yaml(text)
    except ValueError as error:
        raise ConfigError(f"{path}: {error}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level: expected a mapping of options, got {_show(raw)}")
    return raw


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
        values[name] = _convert(value, hints[name], known[name].metadata, (*path, name))
    built = cls(**values)
    # Options whose validity depends on another option of the same section are checked once it is built.
    for key, problem in getattr(built, "problems", tuple)():
        raise _Invalid(path if key is None else (*path, key), problem)
    return built


def _defaults(metadata) -> dict:
    return {name: options() for name, options in metadata["options_per_key"].items()}


def _build_per_key(data, metadata, path):
    """A mapping whose keys are known names, each with its own options class; a name left out keeps its defaults."""
    classes, noun = metadata["options_per_key"], metadata["key"]
    if not isinstance(data, dict):
        raise _Invalid(path, f"expected a mapping of {noun} names, got {_show(data)}")
    built = _defaults(metadata)
    for name, options in data.items():
        if name not in classes:
            raise _Invalid((*path, str(name)), f"unknown {noun}; known {noun}s: {', '.join(classes)}")
        built[name] = _build(classes[name], {} if options is None else options, (*path, name))
    return built


def _convert(value, hint, metadata, path):
    if "options_per_key" in metadata:
        return _build_per_key(value, metadata, path)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None:
            return None
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if is_dataclass(hint):
        return _build(hint, value, path)
    if typing.get_origin(hint) is dict and is_dataclass(item := typing.get_args(hint)[1]):
        if not isinstance(value, dict):
            raise _Invalid(path, f"expected a mapping of names, got {_show(value)}")
        named = {}
        for name, options in value.items():
            if str(name) in named:  # YAML's 1 and "1" are two keys, one name
                first = next(key for key in value if str(key) == str(name))
                raise _Invalid(path, f"{_show(first)} and {_show(name)} are the same name; expected distinct names")
            named[str(name)] = _build(item, options or {}, (*path, str(name)))
        return named
    try:
        converted = _SCALARS.get(hint, _collection)(value, hint)
        _check(converted, hint, metadata)
    except (TypeError, ValueError, ArithmeticError) as error:
        raise _Invalid(path, str(error)) from None
    return converted


def _check(value, hint, metadata):
    """Raises ValueError saying what is wrong with an option's converted value."""
    if hint in DEFAULT_RANGES:
        low, high = metadata.get("min", DEFAULT_RANGES[hint][0]), metadata.get("max", DEFAULT_RANGES[hint][1])
        if not low <= value <= high:  # also refuses NaN
            raise ValueError(f"expected {show_amount(low, hint)} to {show_amount(high, hint)}, "
                             f"got {show_amount(value, hint)}")
    if "choices" in metadata and value not in metadata["choices"]:
        raise ValueError(f"expected one of {', '.join(metadata['choices'])}; got {_show(value)}")
    if metadata.get("listen") and (problem := _listen_problem(value)):
        raise ValueError(problem)
    if metadata.get("file") and not _exists(value, Path.is_file):
        raise ValueError(f"file {_show_name(value)} does not exist or is not a regular file")
    if "pem" in metadata and (problem := _pem_problem(value, metadata["pem"])):
        raise ValueError(f"file {_show_name(value)} {problem}")
    if metadata.get("directory") and not _exists(value, Path.is_dir):
        raise ValueError(f"directory {_show_name(value)} does not exist")
    if metadata.get("host_root") and (problem := _host_root_problem(value)):
        raise ValueError(f"expected the root of a host's filesystem, with a readable proc/stat; {problem}")
    if metadata.get("directory_to_make") and value and (problem := _directory_to_make_problem(value)):
        raise ValueError(f"expected a directory (made when missing); {problem}")
    if metadata.get("headers"):
        check_headers(read_headers_file(value) if isinstance(value, str) else value)
    for pattern in value if metadata.get("regex") else ():
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as error:
            raise ValueError(f"invalid regular expression {pattern!r}: {error}") from None


def _exists(path: str, kind) -> bool:
    try:
        return kind(Path(path))
    except (OSError, ValueError):  # a name too long for the filesystem, a NUL byte
        return False


def _host_root_problem(root: str) -> str | None:
    """Why `root` is not a host's root: its proc/stat, which every host has, cannot be read."""
    stat = Path(root, "proc", "stat")
    try:
        with stat.open("rb") as file:
            file.read(1)
    except OSError as error:
        return f"{_show_name(str(stat))}: {error.strerror}"
    return None


def _directory_to_make_problem(path: str) -> str | None:
    """Why the agent could not make or use the directory `path`: it, or the first of its parents that exists, is
    not a directory (the directory itself may be made at run time, on a volume mounted later)."""
    if "\0" in path:
        return f"{_show_name(path)} holds a NUL character"
    existing = next(p for p in (Path(path), *Path(path).parents) if _exists(p, Path.exists))
    return None if existing.is_dir() else f"{_show_name(str(existing))} is not a directory"


def _listen_problem(listen: str) -> str | None:
    host, _, port = listen.rpartition(":")
    if (re.fullmatch(r"\[[0-9A-Fa-f:.]+\]|[\w.-]*", host) and re.fullmatch(r"[0-9]{1,5}", port)
            and int(port) <= 65535):
        return None
    return f"expected host:port (port 0 to 65535) such as 127.0.0.1:13134, got {_show(listen)}"


def endpoint_problem(url: str, protocol: str) -> str | None:
    """What makes `url` unusable as the OTLP exporter's endpoint for `protocol` (OTLP exporter specification:
    a URL with scheme http or https and a host, optionally a port; for gRPC nothing more), or None."""
    grpc = protocol == "grpc"
    expected = (f"expected a URL with scheme http or https, a host{', no path' if grpc else ''} and optionally "
                f"a port, such as {'http://gateway:4317' if grpc else 'http://gateway:4318/v1/metrics'}")
    shown = repr(without_credentials(url))
    if not url.isprintable() or any(c.isspace() for c in url):
        return f"{expected}; got {shown}, which holds spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number from 0 to 65535
    except ValueError as error:
        return f"{expected}; got {shown} ({error})"
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        return f"{expected}; got {shown}"
    if parts.fragment or (grpc and (parts.path not in ("", "/") or parts.query)):
        return f"{expected}; got {shown}"
    if grpc and (parts.username or parts.password):
        # grpcio takes no user:password in its target and repeats the target, credentials included, in its errors.
        masked = URL_CREDENTIALS.sub("***@", url, count=1)
        return (f"{expected}; got {masked!r}, which holds credentials (user@ or user:password@; for grpc, send "
                "them in exporter.headers, e.g. authorization)")
    return None


BROKEN_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _entries(text: str):
    """(which entry, key, value) of each entry of ``key1=value1,key2=value2``, as written; ValueError for an entry
    that is not key=value."""
    for number, entry in enumerate(text.split(","), 1):
        key, equals, value = entry.partition("=")
        which = f"entry {number} of {text.count(',') + 1}"
        if not equals or not unquote(key, errors="strict").strip():
            raise ValueError(f"{which} is not key=value")
        if BROKEN_PERCENT.search(entry):  # what follows the % is not shown: it may be part of a credential
            raise ValueError(f"{which}: a % not followed by two hex digits (percent-encoding)")
        yield which, key, value


def parse_key_values(text: str) -> dict[str, str]:
    """``key1=value1,key2=value2`` with percent-encoded keys and values, as OTEL_EXPORTER_OTLP_HEADERS is written
    (OpenTelemetry specification); ValueError for a malformed entry."""
    return {unquote(key, errors="strict").strip(): unquote(value, errors="strict").strip()
            for _, key, value in _entries(text)}


def check_resource_attributes(text: str) -> None:
    """OTEL_RESOURCE_ATTRIBUTES as the specification writes it (W3C Baggage without properties): token keys and
    values of baggage characters, percent-encoded UTF-8 for the rest; an empty value is allowed. ValueError if not."""
    for which, key, value in _entries(text):
        key, value = key.strip(), value.strip()
        if not TOKEN.fullmatch(key):
            raise ValueError(f"{which}: expected a key made of {TOKEN_CHARACTERS}, got {key!r}")
        if not BAGGAGE_VALUE.fullmatch(value):
            raise ValueError(f"{which}: {key}: expected a value of printable ASCII without spaces, \", ; or \\ "
                             f"(percent-encode those and any other character), got {value!r}")
        unquote(value, errors="strict")


def read_headers_file(path: str) -> dict[str, str]:
    """``key=value`` lines, blank lines and ``#`` comments: keeps credentials out of the configuration file, the
    process list and logs."""
    headers = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"file {_show_name(path)} cannot be read as UTF-8 text: {error}") from None
    for number, line in enumerate(lines, 1):
        if line.strip() and not line.lstrip().startswith("#"):
            key, equals, value = line.partition("=")
            if not equals:
                raise ValueError(f"file {_show_name(path)}, line {number}: expected key=value")
            if problem := _transport_header_problem(key.strip()):
                raise ValueError(f"file {_show_name(path)}, line {number}: {problem}")
            headers[key.strip()] = value.strip()
    return headers


def _transport_header_problem(name: str) -> str | None:
    lowered = name.lower()
    if lowered in TRANSPORT_HEADERS or lowered.startswith(TRANSPORT_HEADER_PREFIX):
        return (f"header {name}: expected none of the headers the transport sets itself (request framing): "
                f"{', '.join(TRANSPORT_HEADERS)}, {TRANSPORT_HEADER_PREFIX}*")
    return None


def check_headers(headers: dict) -> None:
    """Header values are never shown: they are usually credentials."""
    for name, value in headers.items():
        if not isinstance(name, str) or not TOKEN.fullmatch(name):
            raise ValueError(f"expected header names made of {TOKEN_CHARACTERS}, got {name!r}")
        if problem := _transport_header_problem(name):
            raise ValueError(problem)
        if not isinstance(value, str) or not HEADER_VALUE.fullmatch(value):
            found = "another string" if isinstance(value, str) else _show(value)
            raise ValueError(f"header {name}: expected a non-empty value of printable ASCII, got {found}")


def _pem_problem(path: str, kind: str) -> str | None:
    """Why `path` cannot serve as a PEM certificate or private key; checked here so that a bad file is an error
    at start, not a failed TLS handshake at every export."""
    import ssl  # here: an agent without certificates to check (plain HTTP) never loads it, 4 MiB of RSS

    try:
        if kind == "certificate":
            ssl.create_default_context(cafile=path)  # parses every certificate in the file
        elif not _holds_private_key(path):
            return "holds no PEM private key"
    except ssl.SSLError as error:
        return f"holds no valid PEM certificate ({error.reason or error})"
    except OSError as error:
        return f"cannot be read: {error.strerror}"
    return None


def _holds_private_key(path: str) -> bool:
    return re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", Path(path).read_bytes()) is not None


class EncryptedKey(Exception):
    """A private key that needs a passphrase, which a service has nobody to type."""


def refuse_passphrase():
    """Asked instead of OpenSSL's prompt on the terminal, which would hang a service started from one."""
    raise EncryptedKey


def client_pair_problem(exporter: ExporterConfig) -> tuple[str, str] | None:
    """(option, problem) when the client certificate and its key cannot be loaded together as the transports load
    them: checked here so that it is a configuration error, not a failed export (or, for grpcio, an abort)."""
    import ssl  # only when a client certificate is set, as in _pem_problem

    certificate, key = exporter.client_certificate, exporter.client_key
    if key is None and exporter.protocol == "grpc":
        return "client_certificate", "for grpc, expected client_key too (grpc takes the key from its own file)"
    try:
        if key is None and not _holds_private_key(certificate):
            return ("client_certificate", f"file {_show_name(certificate)} holds no PEM private key: expected "
                                          f"client_key, or the key in this file")
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(certificate, key, password=refuse_passphrase)
    except EncryptedKey:
        option, path = ("client_certificate", certificate) if key is None else ("client_key", key)
        return option, f"file {_show_name(path)} holds an encrypted private key: expected it unencrypted (readable " \
                       f"by the agent's user only)"
    except ssl.SSLError as error:
        if key is None:
            return ("client_certificate", f"file {_show_name(certificate)}: the private key in it is not the key "
                                          f"of its certificate ({error.reason or error})")
        return ("client_key", f"file {_show_name(key)} is not the key of client_certificate "
                              f"{_show_name(certificate)} ({error.reason or error})")
    return None


def _strict(value, kind, expected):
    # bool is an int in Python; a YAML "yes" must not become an interval of 1 s.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise TypeError(f"expected {expected}, got {_show(value)}")
    return value


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
        return dict(value)
    raise TypeError(f"unsupported option type {hint}")


_SCALARS = {
    bool: lambda value, _: _strict(value, bool, "true or false"),
    int: lambda value, _: _strict(value, int, "an integer"),
    str: lambda value, _: _strict(value, str, "a string"),
    Duration: lambda value, _: Duration.parse(value),
    ByteSize: lambda value, _: ByteSize.parse(value),
}


def _show(value) -> str:
    return f"{type(value).__name__} {value!r}"


def _set(raw: dict, key_path: tuple[str, ...], value) -> _Invalid | None:
    """Puts `value` at `key_path`, making the sections on the way; else the problem: a value on the way that is
    not a section."""
    node = raw
    for depth, key in enumerate(key_path[:-1], 1):
        if node.get(key) is None:
            node[key] = {}
        elif not isinstance(node[key], dict):
            return _Invalid(key_path, f"{_show_path(key_path[:depth])} is not a section; it is {_show(node[key])}")
        node = node[key]
    node[key_path[-1]] = value
    return None


def _agent_overrides(environ):
    for variable, text in sorted(environ.items()):
        # An empty variable counts as unset, as the OpenTelemetry specification says of its own.
        if variable.startswith(ENV_PREFIX) and variable != CONFIG_FILE_VARIABLE and text.strip():
            key_path = tuple(variable[len(ENV_PREFIX):].lower().split("__"))
            yield key_path, _variable_value(text), f"environment variable {variable}"


def _variable_value(text: str):
    if re.fullmatch(r"[-+]?[0-9]{1,100}", text.strip()):
        return int(text)  # decimal: YAML 1.1 would read 010 as octal 8
    try:
        return parse_yaml(text)
    except ValueError:  # not YAML: the text itself, checked as the option's value
        return text


# Standard OTLP exporter variables, signal-specific first, as opentelemetry-python reads them.
_OTEL_EXPORTER_VARIABLES = {
    "PROTOCOL": "protocol", "HEADERS": "headers", "CERTIFICATE": "certificate",
    "CLIENT_CERTIFICATE": "client_certificate", "CLIENT_KEY": "client_key",
    "COMPRESSION": "compression", "TIMEOUT": "timeout", "INSECURE": "insecure",
}


def _otel_overrides(environ, raw):
    def value_of(variable):  # an empty variable counts as unset (specification)
        return environ.get(variable, "").strip()

    def lookup(suffix):
        for variable in (f"OTEL_EXPORTER_OTLP_METRICS_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}"):
            if value_of(variable):
                return variable, value_of(variable)
        return None, None

    for suffix, key in _OTEL_EXPORTER_VARIABLES.items():
        variable, text = lookup(suffix)
        if variable:
            yield ("exporter", key), _otel_value(key, text, variable), f"environment variable {variable}"
    if value_of("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        yield (("exporter", "endpoint"), value_of("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
               "environment variable OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    elif base := value_of("OTEL_EXPORTER_OTLP_ENDPOINT"):
        variable = "environment variable OTEL_EXPORTER_OTLP_ENDPOINT"
        file_section = raw.get("exporter")
        protocol = (value_of(f"{ENV_PREFIX}EXPORTER__PROTOCOL") or lookup("PROTOCOL")[1]
                    or (file_section.get("protocol") if isinstance(file_section, dict) else None))
        if problem := endpoint_problem(base, protocol):
            raise ConfigError(f"{variable}: exporter.endpoint: {problem}")
        # The HTTP exporter appends the signal path to the generic endpoint; gRPC uses it as is.
        yield ("exporter", "endpoint"), base if protocol == "grpc" else base.rstrip("/") + "/v1/metrics", variable
    if text := value_of("OTEL_METRIC_EXPORT_INTERVAL"):
        variable = "environment variable OTEL_METRIC_EXPORT_INTERVAL (milliseconds)"
        milliseconds = _otel_number(text, variable, "exporter.interval", "milliseconds such as 60000 or 2500.5")
        yield ("exporter", "interval"), milliseconds / 1000, variable


def _otel_value(key, text, variable):
    if key == "headers":
        try:
            return parse_key_values(text)
        except ValueError as error:
            raise ConfigError(f"environment variable {variable}: exporter.headers: expected comma-separated "
                              f"key=value entries, percent-encoded; {error}") from None
    if key == "insecure":  # anything but true or false is a mistake: it decides whether certificates are checked
        if text.lower() not in ("true", "false"):
            raise ConfigError(f"environment variable {variable}: exporter.insecure: expected true or false, "
                              f"got {text!r}")
        return text.lower() == "true"
    if key == "timeout":  # in seconds, as opentelemetry-python reads it (the specification says milliseconds)
        return _otel_number(text, f"environment variable {variable}", "exporter.timeout",
                            "seconds such as 10 or 2.5")
    return text


def _otel_number(text, variable, key, expected) -> float:
    if not OTEL_NUMBER.fullmatch(text):
        raise ConfigError(f"{variable}: {key}: expected a number of {expected}, got {text!r}")
    return float(text)


def _check_resource_attributes(environ):
    """OTEL_RESOURCE_ATTRIBUTES is read by the SDK, which skips what it cannot parse: checked here instead."""
    if text := environ.get("OTEL_RESOURCE_ATTRIBUTES", "").strip():
        try:
            check_resource_attributes(text)
        except ValueError as error:
            raise ConfigError(f"environment variable OTEL_RESOURCE_ATTRIBUTES: resource attributes: expected "
                              f"comma-separated key=value entries, percent-encoded; {error}") from None
