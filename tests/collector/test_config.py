"""Configuration: defaults, the shipped example, environment precedence, and every kind of bad input."""

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from collector.config import (
    DEFAULT_RANGES,
    BacklogConfig,
    Config,
    ConfigError,
    ExporterConfig,
    HealthConfig,
    load,
    read_headers_file,
    show_amount,
)
from collector.sources import SOURCES
from collector.transport import build_transport
from collector.units import ByteSize, Duration
from tests.reliability.tls import CertificateAuthority

EXAMPLE = Path(__file__).parents[2] / "collector" / "example-config.yaml"
KNOWN_SOURCES = ", ".join(SOURCES)


def options_of(section) -> str:
    """The options an error message lists for a section: its fields, in declaration order."""
    return ", ".join(field.name for field in dataclasses.fields(section))



def write(tmp_path, text, name="agent.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_no_file_means_every_default():
    config = load(None, environ={})
    assert config == Config()
    assert config.exporter.url == "http://localhost:4318/v1/metrics"
    assert config.sources["filesystem"].interval == 30
    assert not config.sources["top_processes"].enabled


def test_the_shipped_example_loads_and_documents_exactly_the_defaults():
    assert load(EXAMPLE, environ={}) == Config()


def test_the_shipped_example_mentions_every_option():
    text = yaml.safe_load(EXAMPLE.read_text())

    def keys(cls):
        return [f.name for f in dataclasses.fields(cls)]
    for section in ("exporter", "backlog", "health"):
        assert set(text[section]) == set(keys(type(getattr(Config(), section)))), section
    for name, source in SOURCES.items():
        assert set(text["sources"][name]) == set(keys(source.Options)), name


LONG = "a" * 300  # a path component longer than any filesystem allows (ENAMETOOLONG, not ENOENT)
BAD_FILES = [
    ("exporter: [1, 2\n", "line 2, column 1: not valid YAML: expected ',' or ']', but got '<stream end>'"),
    ("exporter:\n\tinterval: 1s\n",
     "line 2, column 1: not valid YAML: found character '\\t' that cannot start any token"),
    ("exporter:\n  interval: 1s\n  timeout: 2s\n  interval: 3s\n",
     "line 4, column 3: not valid YAML: duplicate key 'interval'"),
    ("log_level: debug\nlog_level: info\n", "line 2, column 1: not valid YAML: duplicate key 'log_level'"),
    ("\nlog_level: \x07\n", "line 2, column 12: not valid YAML: unacceptable character #x0007: special characters "
     "are not allowed"),
    ("a: 1\x00\n", "line 1, column 5: not valid YAML: unacceptable character #x0000: special characters "
     "are not allowed"),
    ("when: 2001-13-01\n", "line 1, column 7: not valid YAML: month must be in 1..12"),
    ("exporter:\n  interval: 5s\nhost_root: 2001-02-30\n",
     "line 3, column 12: not valid YAML: day is out of range for month"),
    (b"exporter:\n  interval: 1s\n  timeout: 1s # \xff\xfe\n",
     "line 3, column 17: expected UTF-8 text, found byte 0xff"),
    ("log_level: info\n\nhost_root: /\x07\n", "line 3, column 13: not valid YAML: unacceptable character #x0007: "
     "special characters are not allowed"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "line 1, column 1: expected UTF-8 text, found byte 0x89"),
    ("- just\n- a list\n", "top level: expected a mapping of options, got list ['just', 'a list']"),
    ("0\n", "top level: expected a mapping of options, got int 0"),
    ("exporter:\n  intervall: 10s\n",
     f"exporter.intervall: unknown option; expected one of: {options_of(ExporterConfig)}"),
    ("exporter:\n  interval: soon\n", "exporter.interval: expected a duration such as 10s, 500ms or 5m, got 'soon'"),
    # a unit the agent does not read, or a second amount, is refused, not read as the number before it
    ("exporter:\n  interval: 7d\n", "exporter.interval: expected a duration such as 10s, 500ms or 5m, got '7d'"),
    ("exporter:\n  interval: 1h30m\n",
     "exporter.interval: expected a duration such as 10s, 500ms or 5m, got '1h30m'"),
    ("backlog:\n  max_age: 10sec\n", "backlog.max_age: expected a duration such as 10s, 500ms or 5m, got '10sec'"),
    ("exporter:\n  interval: -5\n", "exporter.interval: expected 0.1s to 24h, got -5s"),
    ("exporter:\n  interval: 0.09\n", "exporter.interval: expected 0.1s to 24h, got 0.09s"),
    ("exporter:\n  interval: 99999999h\n", "exporter.interval: expected 0.1s to 24h, got 99999999h"),
    ("exporter:\n  interval: .nan\n", "exporter.interval: expected 0.1s to 24h, got nans"),
    ("exporter:\n  interval: " + "9" * 400 + "\n", "exporter.interval: int too large to convert to float"),
    ("exporter:\n  timeout: 301s\n", "exporter.timeout: expected 0.1s to 5m, got 301s"),
    ("exporter:\n  protocol: http/json\n",
     "exporter.protocol: expected one of http/protobuf, grpc; got str 'http/json'"),
    ("exporter:\n  failover_endpoints: [http://a:4318/v1/metrics, gateway-b:4318]\n",
     "exporter.failover_endpoints: expected a URL with scheme http or https, a host and optionally a port, such as "
     "http://gateway:4318/v1/metrics; got 'gateway-b:4318'"),
    ("sources:\n  process_groups:\n    enabled: true\n    groups: [nginx]\n",
     "sources.process_groups.groups: expected a mapping of names, got list ['nginx']"),
    ("exporter:\n  endpoint: gateway:4318\n", "exporter.endpoint: expected a URL with scheme http or https, a host "
     "and optionally a port, such as http://gateway:4318/v1/metrics; got 'gateway:4318'"),
    ("exporter:\n  endpoint: ftp://gateway/v1/metrics\n", "exporter.endpoint: expected a URL with scheme http or "
     "https, a host and optionally a port, such as http://gateway:4318/v1/metrics; got 'ftp://gateway/v1/metrics'"),
    ("exporter:\n  endpoint: http:///v1/metrics\n", "exporter.endpoint: expected a URL with scheme http or https, "
     "a host and optionally a port, such as http://gateway:4318/v1/metrics; got 'http:///v1/metrics'"),
    ("exporter:\n  endpoint: http://gw:99999/v1/metrics\n", "exporter.endpoint: expected a URL with scheme http or "
     "https, a host and optionally a port, such as http://gateway:4318/v1/metrics; got "
     "'http://gw:99999/v1/metrics' (Port out of range 0-65535)"),
    ("exporter:\n  endpoint: https://user:secret@gw:4318/v1/metrics#x\n", "exporter.endpoint: expected a URL with "
     "scheme http or https, a host and optionally a port, such as http://gateway:4318/v1/metrics; got "
     "'https://gw:4318/v1/metrics#x'"),
    ("exporter:\n  endpoint: 'http://gw :4318'\n", "exporter.endpoint: expected a URL with scheme http or https, a "
     "host and optionally a port, such as http://gateway:4318/v1/metrics; got 'http://gw :4318', which holds "
     "spaces or control characters"),
    ("exporter:\n  protocol: grpc\n  endpoint: http://gw:4317/v1/metrics\n", "exporter.endpoint: expected a URL "
     "with scheme http or https, a host, no path and optionally a port, such as http://gateway:4317; got "
     "'http://gw:4317/v1/metrics'"),
    # grpcio takes no user:password in its target and repeats the target, credentials included, in its errors.
    ("exporter:\n  protocol: grpc\n  endpoint: https://alice:s3cret@gw:4317\n", "exporter.endpoint: expected a "
     "URL with scheme http or https, a host, no path and optionally a port, such as http://gateway:4317; got "
     "'https://***@gw:4317', which holds credentials (user@ or user:password@; for grpc, send them in "
     "exporter.headers, e.g. authorization)"),
    ("exporter:\n  protocol: grpc\n  endpoint: http://token@gw:4317\n", "exporter.endpoint: expected a URL with "
     "scheme http or https, a host, no path and optionally a port, such as http://gateway:4317; got "
     "'http://***@gw:4317', which holds credentials (user@ or user:password@; for grpc, send them in "
     "exporter.headers, e.g. authorization)"),
    ("exporter:\n  headers: {X-Token: }\n", "exporter.headers: header X-Token: expected a non-empty value of "
     "printable ASCII, got NoneType None"),
    ("exporter:\n  headers: {X-Token: ''}\n", "exporter.headers: header X-Token: expected a non-empty value of "
     "printable ASCII, got another string"),
    ("exporter:\n  headers: {'X Token': abc}\n", "exporter.headers: expected header names made of letters, digits "
     "and !#$%&'*+-.^_`|~, got 'X Token'"),
    ("exporter:\n  certificate: /nonexistent/ca.pem\n",
     "exporter.certificate: file /nonexistent/ca.pem does not exist or is not a regular file"),
    (f"exporter:\n  certificate: /tmp/{LONG}\n",
     f"exporter.certificate: file /tmp/{LONG} does not exist or is not a regular file"),
    ("backlog:\n  max_bytes: 65GiB\n", "backlog.max_bytes: expected 0B to 64GiB, got 65GiB"),
    ("backlog:\n  max_age: 169h\n", "backlog.max_age: expected 1s to 168h, got 169h"),
    ("a: " + "[" * 5000 + "\n", "line 1, column 103: nested more than 100 levels deep"),
    ("sources:\n" + "".join("  " * n + f"k{n}:\n" for n in range(1, 600)),
     "line 101, column 201: nested more than 100 levels deep"),
    ("backlog:\n  max_bytes: 0.9\n", "backlog.max_bytes: expected a whole number of bytes, got 0.9"),
    ("sources:\n  textfile:\n    max_file_size: 1.9\n",
     "sources.textfile.max_file_size: expected a whole number of bytes, got 1.9"),
    ("sources:\n  textfile:\n    max_file_size: 1.5B\n",
     "sources.textfile.max_file_size: expected a whole number of bytes, got '1.5B'"),
    ("backlog:\n  max_bytes: 1.0001KiB\n", "backlog.max_bytes: expected a whole number of bytes, got '1.0001KiB'"),
    ("backlog:\n  max_bytes: .inf\n", "backlog.max_bytes: expected a size such as 64MiB or 1GB, got inf"),
    ("sources:\n  process_groups:\n    groups:\n      1: {executable: [a]}\n      \"1\": {executable: [b]}\n",
     "sources.process_groups.groups: int 1 and str '1' are the same name; expected distinct names"),
    ("health:\n  enabled: yes please\n", "health.enabled: expected true or false, got str 'yes please'"),
    ("health:\n  listen: localhost\n",
     "health.listen: expected host:port (port 0 to 65535) such as 127.0.0.1:13134, got str 'localhost'"),
    ("health:\n  listen: 127.0.0.1:65536\n",
     "health.listen: expected host:port (port 0 to 65535) such as 127.0.0.1:13134, got str '127.0.0.1:65536'"),
    ("health:\n  ready_intervals: true\n", "health.ready_intervals: expected an integer, got bool True"),
    ("health:\n  ready_intervals: 2.0\n", "health.ready_intervals: expected an integer, got float 2.0"),
    ("sources:\n  gpu: {}\n", f"sources.gpu: unknown source; known sources: {KNOWN_SOURCES}"),
    ("sources:\n  cpu: false\n", "sources.cpu: expected a mapping, got bool False"),
    ("sources: [cpu]\n", "sources: expected a mapping of source names, got list ['cpu']"),
    ("sources:\n  disk:\n    exclude: [1]\n", "sources.disk.exclude: expected a list of strings, got list [1]"),
    ("exporter:\n  headers: [a]\n", "exporter.headers: expected a mapping, got list ['a']"),
    ("exporter:\n  headers: {X-Tenant: 5}\n", "exporter.headers: header X-Tenant: expected a non-empty value of "
     "printable ASCII, got int 5"),
    ("exporter:\n  endpoint: http://gw:0/v1/metrics\n", "exporter.endpoint: expected a URL with scheme http or "
     "https, a host and optionally a port, such as http://gateway:4318/v1/metrics; got 'http://gw:0/v1/metrics'"),
    ("exporter:\n  endpoint: 'http://u:p@[::1'\n", "exporter.endpoint: expected a URL with scheme http or https, a "
     "host and optionally a port, such as http://gateway:4318/v1/metrics; got 'http://[::1' (Invalid IPv6 URL)"),
    ("exporter:\n  <<: {interval: 5s}\n  interval: 7s\n  timeout: 1s\n  timeout: 2s\n",
     "line 5, column 3: not valid YAML: duplicate key 'timeout'"),
    ("sources:\n  disk:\n    exclude: ['(unclosed']\n", "sources.disk.exclude: invalid regular expression "
     "'(unclosed': missing ), unterminated subpattern at position 0"),
    ("sources:\n  disk:\n    max_devices: 10001\n", "sources.disk.max_devices: expected 1 to 10000, got 10001"),
    ("sources:\n  top_processes:\n    count: 51\n", "sources.top_processes.count: expected 1 to 50, got 51"),
    ("sources:\n  top_processes:\n    by: io\n", "sources.top_processes.by: expected one of cpu, memory; got str 'io'"),
    ("sources:\n  cpu:\n    interval: true\n", "sources.cpu.interval: expected a duration such as 10s, 500ms or 5m"),
    ("host_root: /nonexistent-root\n", "host_root: directory /nonexistent-root does not exist"),
    (f"host_root: /{LONG}\n", f"host_root: directory /{LONG} does not exist"),
    ("host_root: \"/tmp\\0x\"\n", "host_root: directory '/tmp\\x00x' does not exist"),
    ('"a\\nb": 1\n', f"'a\\nb': unknown option; expected one of: {options_of(Config)}"),
    ("sources:\n  process_groups:\n    groups:\n      web:\n        # executable: [nginx]\n"
     "      py: {executable: [x]}\n",
     "sources.process_groups.groups.web: expected at least one of executable, cmdline, user, systemd_unit, cgroup "
     "(a group without one would take every process)"),
    ("sources:\n  process_groups:\n    groups:\n      web: {executable: [], user: []}\n",
     "sources.process_groups.groups.web: expected at least one of executable, cmdline, user, systemd_unit, cgroup "
     "(a group without one would take every process)"),
    ("backlog:\n  directory: /dev/null\n",
     "backlog.directory: expected a directory (made when missing); /dev/null is not a directory"),
    ("backlog:\n  directory: /dev/null/backlog\n",
     "backlog.directory: expected a directory (made when missing); /dev/null is not a directory"),
    ("backlog:\n  directory: \"/tmp/a\\0b\"\n",
     "backlog.directory: expected a directory (made when missing); '/tmp/a\\x00b' holds a NUL character"),
]


@pytest.mark.parametrize("content, expected", BAD_FILES)
def test_bad_input_is_one_line_naming_the_file_the_key_what_is_expected_and_what_was_found(tmp_path, content,
                                                                                         expected):
    path = tmp_path / "agent.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError) as error:
        load(path, environ={})
    assert str(error.value) == f"{path}: {expected}"


def test_a_host_root_without_a_readable_proc_stat_is_an_error_naming_host_root_and_where_it_was_set(tmp_path):
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    expected = (f"host_root: expected the root of a host's filesystem, with a readable proc/stat; "
                f"{root}/proc/stat: No such file or directory")
    path = write(tmp_path, f"host_root: {root}\n")
    with pytest.raises(ConfigError) as error:
        load(path, environ={})
    assert str(error.value) == f"{path}: {expected}"
    with pytest.raises(ConfigError) as error:
        load(None, environ={"HOSTAGENT_HOST_ROOT": str(root)})
    assert str(error.value) == f"environment variable HOSTAGENT_HOST_ROOT: {expected}"
    (root / "proc" / "stat").mkdir()
    with pytest.raises(ConfigError) as error:
        load(path, environ={})
    assert str(error.value).endswith(f"; {root}/proc/stat: Is a directory")
    (root / "proc" / "stat").rmdir()
    (root / "proc" / "stat").write_text("cpu  1 2 3 4\n")
    assert load(path, environ={}).host_root == str(root)
    assert load(None, environ={}).host_root == "/"


def test_a_headers_file_with_a_line_that_is_not_key_value_is_an_error(tmp_path):
    headers = write(tmp_path, "# credentials\nX-Api-Key=abc\nBearer abc\n", "headers")
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, f"exporter:\n  headers_file: {headers}\n"), environ={})
    assert str(error.value) == f"{tmp_path / 'agent.yaml'}: exporter.headers_file: file {headers}, line 3: " \
                               f"expected key=value"
    headers.write_text("X-Api-Key=abc==\n  # a comment = not a header\n\nX-Tenant = t1\n")
    config = load(write(tmp_path, f"exporter:\n  headers_file: {headers}\n"), environ={}).exporter
    assert read_headers_file(config.headers_file) == {"X-Api-Key": "abc==", "X-Tenant": "t1"}
    headers.write_bytes(b"X-Api-Key=\xff\n")
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, f"exporter:\n  headers_file: {headers}\n"), environ={})
    assert str(error.value).startswith(f"{tmp_path / 'agent.yaml'}: exporter.headers_file: file {headers} cannot be "
                                       f"read as UTF-8 text: 'utf-8' codec can't decode byte 0xff")


def test_tls_files_must_hold_pem_certificates_and_a_private_key(tmp_path):
    ca = CertificateAuthority(tmp_path / "ca")
    client = ca.issue("client", server=False)
    good = {"certificate": ca.bundle, "client_certificate": client.certificate, "client_key": client.key}
    document = "exporter:\n" + "".join(f"  {key}: {path}\n" for key, path in good.items())
    exporter = load(write(tmp_path, document), environ={}).exporter
    assert (exporter.certificate, exporter.client_key) == (str(ca.bundle), str(client.key))
    not_pem = write(tmp_path, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n", "x.pem")
    for key, expected in [("certificate", "holds no valid PEM certificate (["),  # then OpenSSL's reason
                          ("client_certificate", "holds no valid PEM certificate (["),
                          ("client_key", "holds no PEM private key")]:
        with pytest.raises(ConfigError) as error:
            load(write(tmp_path, f"exporter:\n  {key}: {not_pem}\n"), environ={})
        assert str(error.value).startswith(f"{tmp_path / 'agent.yaml'}: exporter.{key}: file {not_pem} {expected}")



def test_an_encrypted_client_key_is_a_configuration_error_not_a_passphrase_prompt(tmp_path):
    client = CertificateAuthority(tmp_path / "ca").issue("client", server=False)
    key = serialization.load_pem_private_key(client.key.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"secret")))
    path = write(tmp_path, f"exporter:\n  client_certificate: {client.certificate}\n  client_key: {encrypted}\n")
    with pytest.raises(ConfigError) as error:
        load(path, environ={})
    assert str(error.value) == f"{path}: exporter.client_key: file {encrypted} holds an encrypted private key: " \
                               f"expected it unencrypted (readable by the agent's user only)"


def test_a_client_certificate_needs_its_own_key_and_a_key_needs_its_certificate(tmp_path):
    ca = CertificateAuthority(tmp_path / "ca")
    client, other = ca.issue("client", server=False), ca.issue("other", server=False)
    path = tmp_path / "agent.yaml"
    for document, expected in [
        (f"client_certificate: {client.certificate}",
         f"exporter.client_certificate: file {client.certificate} holds no PEM private key: expected client_key, or "
         f"the key in this file"),
        (f"client_certificate: {client.certificate}\n  client_key: {other.key}",
         f"exporter.client_key: file {other.key} is not the key of client_certificate {client.certificate} "
         f"(KEY_VALUES_MISMATCH)"),
        (f"client_key: {client.key}", "exporter.client_key: expected client_certificate too, the certificate of "
                                      "this key"),
    ]:
        with pytest.raises(ConfigError) as error:
            load(write(tmp_path, f"exporter:\n  {document}\n"), environ={})
        assert str(error.value) == f"{path}: {expected}"
    with pytest.raises(ConfigError) as error:
        load(None, environ={"OTEL_EXPORTER_OTLP_CLIENT_KEY": str(client.key)})
    assert str(error.value) == "environment variable OTEL_EXPORTER_OTLP_CLIENT_KEY: exporter.client_key: expected " \
                               "client_certificate too, the certificate of this key"
    mismatched = write(tmp_path, client.certificate.read_text() + other.key.read_text(), "mismatched.pem")
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, f"exporter:\n  client_certificate: {mismatched}\n"), environ={})
    assert str(error.value) == f"{path}: exporter.client_certificate: file {mismatched}: the private key in it is " \
                               f"not the key of its certificate (KEY_VALUES_MISMATCH)"
    both = write(tmp_path, client.certificate.read_text() + client.key.read_text(), "client.pem")
    assert load(write(tmp_path, f"exporter:\n  client_certificate: {both}\n"), environ={}).exporter.client_key is None
    with pytest.raises(ConfigError) as error:  # grpcio aborts the process when given a certificate without its key
        load(write(tmp_path, f"exporter:\n  protocol: grpc\n  client_certificate: {both}\n"), environ={})
    assert str(error.value) == f"{path}: exporter.client_certificate: for grpc, expected client_key too (grpc takes " \
                               f"the key from its own file)"

@pytest.mark.parametrize("value, shown", [
    (Duration(86400), "24h"), (Duration(3600), "1h"), (Duration(60), "1m"), (Duration(90), "90s"),
    (Duration(0.1), "0.1s"), (Duration(99999999 * 3600), "99999999h"),
    (ByteSize(2**30), "1GiB"), (ByteSize(2**20), "1MiB"), (ByteSize(3 * 2**20 + 2**10), "3073KiB"),
    (ByteSize(1024), "1KiB"), (ByteSize(1023), "1023B"), (10_000, "10000"),
])
def test_amounts_are_shown_in_the_largest_unit_that_divides_them(value, shown):
    assert show_amount(value, type(value)) == shown


@pytest.mark.parametrize("written, size", [
    ("512", 512), ("512B", 512), ("1KB", 1000), ("1KiB", 1024), ("1.5 KiB", 1536), ("2MB", 2_000_000),
    ("2MiB", 2 * 2**20), ("3GB", 3_000_000_000), ("3GiB", 3 * 2**30), ("2.0", 2), ("0.1KB", 100),
    ("0.3MB", 300_000), ("1.0e+3", 1000)])
def test_sizes_are_read_in_decimal_and_binary_units(tmp_path, written, size):
    assert load(write(tmp_path, f"backlog:\n  max_bytes: {written}\n"), environ={}).backlog.max_bytes == size
    assert load(None, environ={"HOSTAGENT_BACKLOG__MAX_BYTES": written}).backlog.max_bytes == size


@pytest.mark.parametrize("written, seconds", [
    ("90", 90), ("1500ms", 1.5), ("45s", 45), ("2.5 s", 2.5), ("5m", 300), ("2h", 7200)])
def test_durations_are_read_in_milliseconds_seconds_minutes_and_hours(tmp_path, written, seconds):
    assert load(write(tmp_path, f"backlog:\n  max_age: {written}\n"), environ={}).backlog.max_age == seconds
    assert load(None, environ={"HOSTAGENT_BACKLOG__MAX_AGE": written}).backlog.max_age == seconds


@pytest.mark.parametrize("written", ["7d", "1h30m", "10sec", "5ms5", "2 h x"])
def test_a_duration_is_one_amount_in_one_unit_the_agent_reads(written):
    with pytest.raises(ValueError, match=f"got '{written}'"):
        Duration.parse(written)


def test_merge_keys_and_the_values_the_specification_allows(tmp_path):
    config = load(write(tmp_path, "exporter:\n  <<: {interval: 5s, timeout: 3s}\n  interval: 7s\n"
                                  "health:\n  listen: '[::ABCD]:65535'\n"
                                  "sources:\n  cpu:\n  network:\n    exclude: ^eth\n"), environ={
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic dXNlcjpwYXNz==, X-Tenant = t%201",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw:4317/"})
    assert (config.exporter.interval, config.exporter.timeout) == (7, 3)
    assert config.exporter.headers == {"Authorization": "Basic dXNlcjpwYXNz==", "X-Tenant": "t 1"}
    assert (config.exporter.url, config.health.listen) == ("https://gw:4317/", "[::ABCD]:65535")
    assert (config.sources["cpu"], config.sources["network"].exclude) == (SOURCES["cpu"].Options(), ("^eth",))
    assert load(None, environ={"HOSTAGENT_HEALTH__LISTEN": "[fe80::1]:0"}).health.listen == "[fe80::1]:0"


@pytest.mark.parametrize("where", ["directory", "missing", "too long"])
def test_a_file_that_cannot_be_read_is_one_line(tmp_path, where):
    path = {"directory": tmp_path, "missing": tmp_path / "missing.yaml", "too long": tmp_path / LONG}[where]
    reason = {"directory": "Is a directory", "missing": "No such file or directory",
              "too long": "File name too long"}[where]
    with pytest.raises(ConfigError) as error:
        load(path, environ={})
    assert str(error.value) == f"{path}: cannot read the configuration file: {reason}"


def ranged_options():
    """(YAML path, type, lowest, highest) of every duration, count and size option."""
    sections = {"exporter": ExporterConfig, "backlog": BacklogConfig, "health": HealthConfig,
                **{f"sources.{name}": source.Options for name, source in SOURCES.items()}}
    for section, cls in sections.items():
        hints = typing.get_type_hints(cls)
        for option in dataclasses.fields(cls):
            kind = next((t for t in DEFAULT_RANGES if t in (hints[option.name], *typing.get_args(hints[option.name]))),
                        None)
            if kind:
                low, high = (option.metadata.get(k, default)
                             for k, default in zip(("min", "max"), DEFAULT_RANGES[kind]))
                yield f"{section}.{option.name}", kind, low, high


def test_the_readme_states_every_range():
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    assert "durations are 0.1s to 24h and counts 1 to 10000" in readme
    for dotted, kind, low, high in ranged_options():
        if (low, high) != DEFAULT_RANGES[kind] and not dotted.endswith(".interval"):
            assert f"`{dotted}` ({show_amount(low, kind)} to {show_amount(high, kind)})" in readme, dotted


def document(dotted, value):
    *sections, key = dotted.split(".")
    return "".join(f"{'  ' * depth}{name}:\n" for depth, name in enumerate(sections)) + \
        f"{'  ' * len(sections)}{key}: {value}\n"


@pytest.mark.parametrize("dotted, kind, low, high", list(ranged_options()))
def test_every_range_includes_its_bounds_and_nothing_beyond(tmp_path, dotted, kind, low, high):
    assert high < float("inf")
    step = 1 if kind in (int, ByteSize) else 0.001
    for value in (low, high):
        config = load(write(tmp_path, document(dotted, value)), environ={})
        section = config
        for key in dotted.split("."):
            section = section[key] if isinstance(section, dict) else getattr(section, key)
        assert section == value and type(section) is kind, dotted
    for value in (low - step, high + step):
        with pytest.raises(ConfigError, match=rf"{dotted}: expected \S+ to \S+, got "):
            load(write(tmp_path, document(dotted, value)), environ={})


def test_otel_variables_override_the_file(tmp_path):
    path = write(tmp_path, "exporter:\n  endpoint: http://file:4318/v1/metrics\n  interval: 30s\n")
    config = load(path, environ={
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://gateway:9999/custom",
        "OTEL_METRIC_EXPORT_INTERVAL": "2500",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,X-Tenant=t1",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "4",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
    }).exporter
    assert (config.url, config.interval, config.timeout, config.compression) == (
        "http://gateway:9999/custom", 2.5, 4.0, "none")
    assert config.headers == {"Authorization": "Bearer abc", "X-Tenant": "t1"}



@pytest.mark.parametrize("variable, text, key, expected", [
    ("OTEL_METRIC_EXPORT_INTERVAL", "5000.0", "interval", 5.0),
    ("OTEL_METRIC_EXPORT_INTERVAL", "2500.5", "interval", 2.5005),
    ("OTEL_METRIC_EXPORT_INTERVAL", " 60000 ", "interval", 60.0),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "2.5", "timeout", 2.5),
])
def test_otel_durations_are_numbers_in_the_unit_the_sdk_reads(variable, text, key, expected):
    assert getattr(load(None, environ={variable: text}).exporter, key) == pytest.approx(expected)

def test_generic_otel_endpoint_gets_the_signal_path_for_http_only():
    assert load(None, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://gw:4318/"}).exporter.url == \
        "http://gw:4318/v1/metrics"
    grpc = load(None, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://gw:4317",
                               "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}).exporter
    assert (grpc.url, grpc.protocol) == ("http://gw:4317", "grpc")


def test_agent_variables_override_otel_variables_and_the_file(tmp_path):
    path = write(tmp_path, "sources:\n  filesystem:\n    interval: 30s\n")
    config = load(path, environ={
        "HOSTAGENT_SOURCES__FILESYSTEM__INTERVAL": "2m",
        "HOSTAGENT_SOURCES__TOP_PROCESSES__ENABLED": "true",
        "HOSTAGENT_HEALTH__LISTEN": "0.0.0.0:13134",
        "OTEL_METRIC_EXPORT_INTERVAL": "5000",
        "HOSTAGENT_EXPORTER__INTERVAL": "7s",
    })
    assert config.sources["filesystem"].interval == 120
    assert config.sources["top_processes"].enabled
    assert config.health.listen == "0.0.0.0:13134"
    assert config.exporter.interval == 7



def test_an_empty_agent_variable_counts_as_unset_and_numbers_are_decimal(tmp_path):
    path = write(tmp_path, "sources:\n  filesystem:\n    interval: 45s\n")
    config = load(path, environ={"HOSTAGENT_SOURCES__FILESYSTEM__INTERVAL": "", "HOSTAGENT_HOST_ROOT": " ",
                                 "HOSTAGENT_EXPORTER__INTERVAL": "010", "HOSTAGENT_HEALTH__READY_INTERVALS": "010"})
    assert (config.sources["filesystem"].interval, config.host_root) == (45, "/")
    assert (config.exporter.interval, config.health.ready_intervals) == (10, 10)

def test_the_config_file_variable_is_not_taken_for_an_option(tmp_path):
    path = write(tmp_path, "log_level: debug\n")
    assert load(path, environ={"HOSTAGENT_CONFIG": str(path)}).log_level == "debug"


def test_a_bad_environment_variable_is_named_instead_of_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^environment variable HOSTAGENT_SOURCES__CPU__PER_CPU: "
                                          r"sources.cpu.per_cpu: expected true or false"):
        load(write(tmp_path, "{}\n"), environ={"HOSTAGENT_SOURCES__CPU__PER_CPU": "maybe"})
    with pytest.raises(ConfigError, match=r"^environment variable OTEL_METRIC_EXPORT_INTERVAL \(milliseconds\): "
                                          r"exporter.interval"):
        load(None, environ={"OTEL_METRIC_EXPORT_INTERVAL": "often"})


def test_headers_are_kept_out_of_the_printed_configuration():
    config = load(None, environ={"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=secret-token"})
    assert "secret-token" not in repr(config)


URL_EXPECTED = "expected a URL with scheme http or https, a host and optionally a port, such as " \
    "http://gateway:4318/v1/metrics"
BAD_RESOURCE_ATTRIBUTES = ("environment variable OTEL_RESOURCE_ATTRIBUTES: resource attributes: expected "
                           "comma-separated key=value entries, percent-encoded; ")
BROKEN_PERCENT = "a % not followed by two hex digits (percent-encoding)"
BAD_ENVIRONMENTS = [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "gateway:4318"},
     f"environment variable OTEL_EXPORTER_OTLP_ENDPOINT: exporter.endpoint: {URL_EXPECTED}; got 'gateway:4318'"),
    ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "ftp://gateway/v1/metrics"},
     "environment variable OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: exporter.endpoint: "
     f"{URL_EXPECTED}; got 'ftp://gateway/v1/metrics'"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://gw:4317/otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "environment variable OTEL_EXPORTER_OTLP_ENDPOINT: exporter.endpoint: expected a URL with scheme http or "
     "https, a host, no path and optionally a port, such as http://gateway:4317; got 'http://gw:4317/otlp'"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,Bearer xyz"},
     "environment variable OTEL_EXPORTER_OTLP_HEADERS: exporter.headers: expected comma-separated key=value "
     "entries, percent-encoded; entry 2 of 2 is not key=value"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "a=1,,b=2"},
     "environment variable OTEL_EXPORTER_OTLP_HEADERS: exporter.headers: expected comma-separated key=value "
     "entries, percent-encoded; entry 2 of 3 is not key=value"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "Authorization="},
     "environment variable OTEL_EXPORTER_OTLP_HEADERS: exporter.headers: header Authorization: expected a "
     "non-empty value of printable ASCII, got another string"),
    ({"OTEL_EXPORTER_OTLP_METRICS_HEADERS": "X-Tenant=%FF"},
     "environment variable OTEL_EXPORTER_OTLP_METRICS_HEADERS: exporter.headers: expected comma-separated "
     "key=value entries, percent-encoded; 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    ({"OTEL_EXPORTER_OTLP_INSECURE": "yes"},
     "environment variable OTEL_EXPORTER_OTLP_INSECURE: exporter.insecure: expected true or false, got 'yes'"),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "1e3"}, "environment variable OTEL_EXPORTER_OTLP_TIMEOUT: exporter.timeout: "
     "expected a number of seconds such as 10 or 2.5, got '1e3'"),
    ({"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "10s"}, "environment variable OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: "
     "exporter.timeout: expected a number of seconds such as 10 or 2.5, got '10s'"),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "301"},
     "environment variable OTEL_EXPORTER_OTLP_TIMEOUT: exporter.timeout: expected 0.1s to 5m, got 301s"),
    ({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "environment variable OTEL_EXPORTER_OTLP_COMPRESSION: "
     "exporter.compression: expected one of gzip, deflate, none; got str 'zstd'"),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "\u00b2"}, "environment variable OTEL_METRIC_EXPORT_INTERVAL (milliseconds): "
     "exporter.interval: expected a number of milliseconds such as 60000 or 2500.5, got '\u00b2'"),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "10s"}, "environment variable OTEL_METRIC_EXPORT_INTERVAL (milliseconds): "
     "exporter.interval: expected a number of milliseconds such as 60000 or 2500.5, got '10s'"),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "-1"}, "environment variable OTEL_METRIC_EXPORT_INTERVAL (milliseconds): "
     "exporter.interval: expected a number of milliseconds such as 60000 or 2500.5, got '-1'"),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "99999999999"}, "environment variable OTEL_METRIC_EXPORT_INTERVAL "
     "(milliseconds): exporter.interval: expected 0.1s to 24h, got 99999999.999s"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "team"}, f"{BAD_RESOURCE_ATTRIBUTES}entry 1 of 1 is not key=value"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "team=a,my key=x"}, f"{BAD_RESOURCE_ATTRIBUTES}entry 2 of 2: expected a key made of "
     "letters, digits and !#$%&'*+-.^_`|~, got 'my key'"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "team=site reliability"}, f"{BAD_RESOURCE_ATTRIBUTES}entry 1 of 1: team: expected a "
     "value of printable ASCII without spaces, \", ; or \\ (percent-encode those and any other character), got "
     "'site reliability'"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "team=a%zz"}, f"{BAD_RESOURCE_ATTRIBUTES}entry 1 of 1: {BROKEN_PERCENT}"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer s3cr%t0ken"}, "environment variable "
     "OTEL_EXPORTER_OTLP_HEADERS: exporter.headers: expected comma-separated key=value entries, percent-encoded; "
     f"entry 1 of 1: {BROKEN_PERCENT}"),
    ({"HOSTAGENT_EXPORTER__TIMEOUT": "9" * 5000}, "environment variable HOSTAGENT_EXPORTER__TIMEOUT: "
     "exporter.timeout: expected 0.1s to 5m, got infs"),  # too many digits for an int: read as a float
    ({"HOSTAGENT_SOURCES__CPUU__ENABLED": "true"}, "environment variable HOSTAGENT_SOURCES__CPUU__ENABLED: "
     f"sources.cpuu: unknown source; known sources: {KNOWN_SOURCES}"),
    ({"HOSTAGENT_EXPORTER__INTERVALL": "5s"}, "environment variable HOSTAGENT_EXPORTER__INTERVALL: "
     f"exporter.intervall: unknown option; expected one of: {options_of(ExporterConfig)}"),
    ({"HOSTAGENT_EXPORTER__INTERVAL": "99999999h"}, "environment variable HOSTAGENT_EXPORTER__INTERVAL: "
     "exporter.interval: expected 0.1s to 24h, got 99999999h"),
    ({"HOSTAGENT_HEALTH__LISTEN__PORT": "1"}, "environment variable HOSTAGENT_HEALTH__LISTEN__PORT: "
     "health.listen: expected a string, got dict {'port': 1}"),
    ({"HOSTAGENT_SOURCES__CPU": "{per_cpu: maybe}"}, "environment variable HOSTAGENT_SOURCES__CPU: "
     "sources.cpu.per_cpu: expected true or false, got str 'maybe'"),
    ({"HOSTAGENT_EXPORTER": "{interval: 99999999h}", "HOSTAGENT_HEALTH__READY_INTERVALS": "2"},
     "environment variable HOSTAGENT_EXPORTER: exporter.interval: expected 0.1s to 24h, got 99999999h"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "%FF=1"}, "environment variable OTEL_EXPORTER_OTLP_HEADERS: exporter.headers: "
     "expected comma-separated key=value entries, percent-encoded; 'utf-8' codec can't decode byte 0xff in "
     "position 0: invalid start byte"),
    ({"HOSTAGENT_LOG_LEVEL": "{a: 1, a: 2}"}, "environment variable HOSTAGENT_LOG_LEVEL: log_level: expected one of "
     "debug, info, warning, error; got str '{a: 1, a: 2}'"),
]


@pytest.mark.parametrize("environ, expected", BAD_ENVIRONMENTS)
def test_a_bad_environment_variable_is_one_line_naming_the_variable(tmp_path, environ, expected):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, "log_level: info\n"), environ=environ)
    assert str(error.value) == expected


def test_a_variable_reaching_into_an_option_the_file_sets_is_blamed(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, "host_root: /\n"), environ={"HOSTAGENT_HOST_ROOT__X": "1"})
    assert str(error.value) == "environment variable HOSTAGENT_HOST_ROOT__X: host_root.x: host_root is not a " \
                               "section; it is str '/'"


@pytest.mark.parametrize("content, environ, expected", [
    ("exporter: []\n", {"OTEL_EXPORTER_OTLP_TIMEOUT": "5"}, "exporter: expected a mapping, got list []"),
    ("sources:\n  cpu: [1]\n", {"HOSTAGENT_SOURCES__CPU__PER_CPU": "true"},
     "sources.cpu: expected a mapping, got list [1]"),
    ("sources: 5\n", {"HOSTAGENT_SOURCES__CPU__PER_CPU": "true"},
     "sources: expected a mapping of source names, got int 5"),
])
def test_a_section_the_file_gets_wrong_is_blamed_on_the_file_whatever_the_variables_set(tmp_path, content, environ,
                                                                                        expected):
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as error:
        load(path, environ=environ)
    assert str(error.value) == f"{path}: {expected}"


# value for the generic variable, value for the metrics one, what the metrics one must give
SIGNAL_SPECIFIC = {
    "PROTOCOL": ("http/protobuf", "grpc", "grpc"),
    "HEADERS": ("a=generic", "a=metrics", {"a": "metrics"}),
    "COMPRESSION": ("gzip", "none", "none"),
    "TIMEOUT": ("4", "7", 7.0),
    "INSECURE": ("true", "false", False),
    "ENDPOINT": ("http://generic:4318", "http://metrics:4318/custom", "http://metrics:4318/custom"),
}


@pytest.mark.parametrize("suffix", SIGNAL_SPECIFIC)
def test_the_metrics_variable_wins_over_the_generic_one(suffix):
    generic, specific, expected = SIGNAL_SPECIFIC[suffix]
    key = {"ENDPOINT": "endpoint"}.get(suffix, suffix.lower())
    for environ in ({f"OTEL_EXPORTER_OTLP_{suffix}": generic, f"OTEL_EXPORTER_OTLP_METRICS_{suffix}": specific},
                    {f"OTEL_EXPORTER_OTLP_METRICS_{suffix}": specific, f"OTEL_EXPORTER_OTLP_{suffix}": generic}):
        assert getattr(load(None, environ=environ).exporter, key) == expected
    alone = getattr(load(None, environ={f"OTEL_EXPORTER_OTLP_{suffix}": generic}).exporter, key)
    assert alone != expected


@pytest.mark.parametrize("text, insecure", [("false", False), ("FALSE", False), ("true", True), ("True", True),
                                            ("", True)])
def test_otel_insecure_is_true_only_when_it_says_true(tmp_path, text, insecure):
    # The file asks for insecure; an empty variable counts as unset (specification), "false" turns it off.
    path = write(tmp_path, "exporter:\n  insecure: true\n")
    assert load(path, environ={"OTEL_EXPORTER_OTLP_INSECURE": text}).exporter.insecure is insecure
    assert load(None, environ={"OTEL_EXPORTER_OTLP_INSECURE": text}).exporter.insecure is (insecure and bool(text))


def test_the_generic_endpoint_follows_the_protocol_of_the_file_and_of_the_variables(tmp_path):
    grpc_file = write(tmp_path, "exporter:\n  protocol: grpc\n")
    assert load(grpc_file, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://gw:4317"}).exporter.url == \
        "http://gw:4317"
    assert load(grpc_file, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://gw:4318",
                                    "HOSTAGENT_EXPORTER__PROTOCOL": "http/protobuf"}).exporter.url == \
        "http://gw:4318/v1/metrics"


@pytest.mark.parametrize("agent_protocol, otel_protocol, url", [
    ("http/protobuf", "grpc", "http://gw:4318/v1/metrics"), ("grpc", "http/protobuf", "http://gw:4318")])
def test_the_generic_endpoint_follows_the_agent_variables_protocol_over_the_otel_one(agent_protocol, otel_protocol,
                                                                                      url):
    exporter = load(None, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://gw:4318",
                                   "OTEL_EXPORTER_OTLP_PROTOCOL": otel_protocol,
                                   "HOSTAGENT_EXPORTER__PROTOCOL": agent_protocol}).exporter
    assert (exporter.protocol, exporter.url) == (agent_protocol, url)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
known_keys = st.sampled_from(["exporter", "backlog", "health", "host_root", "log_level", "sources", "other"])
exporter_keys = st.sampled_from([f.name for f in dataclasses.fields(ExporterConfig)])
source_documents = st.dictionaries(st.sampled_from([*SOURCES, "gpu"]), st.dictionaries(
    st.sampled_from(["enabled", "interval", "count", "exclude", "max_devices", "per_cpu"]), yaml_values, max_size=2),
    max_size=2)
documents = st.one_of(
    st.dictionaries(known_keys, yaml_values, max_size=4),
    st.fixed_dictionaries({"exporter": st.dictionaries(exporter_keys, yaml_values, max_size=3)}),
    st.fixed_dictionaries({"sources": source_documents}))


def assert_loads_or_one_line(path, environ, origins):
    """Either the configuration loads and the agent's transport can be built from it (`run` agrees with
    `check-config`), or the error is one line naming one of `origins`."""
    try:
        config = load(path, environ=environ)
    except ConfigError as error:
        line = str(error)
        assert "\n" not in line and "\r" not in line and line.isprintable(), line
        assert any(line.startswith(f"{origin}: ") for origin in origins), line
        return
    build_transport(config.exporter).close()


file_contents = st.one_of(
    documents.map(lambda document: yaml.safe_dump(document).encode()),
    st.binary(max_size=40), st.text(max_size=40).map(str.encode),
    st.lists(st.sampled_from(["exporter:", "\n", "  ", "\t", "interval: 5s", "- x", "[", "{", "&a", "*a", "<<: *a",
                              "!!binary", "'", '"', ":", "#", "\x00", "\xff", "a: 1", "a: 1\na: 2"]),
             max_size=12).map(lambda parts: "".join(parts).encode()))


@given(file_contents)
def test_any_file_either_loads_or_gives_one_line(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("cfg") / "agent.yaml"
    path.write_bytes(content)
    assert_loads_or_one_line(path, {}, [path])


VARIABLES = [
    *(f"OTEL_EXPORTER_OTLP_{signal}{suffix}" for signal in ("", "METRICS_")
      for suffix in ("ENDPOINT", "PROTOCOL", "HEADERS", "COMPRESSION", "TIMEOUT", "INSECURE")),
    "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_RESOURCE_ATTRIBUTES", "HOSTAGENT_EXPORTER__INTERVAL",
    "HOSTAGENT_EXPORTER__ENDPOINT", "HOSTAGENT_EXPORTER__HEADERS", "HOSTAGENT_EXPORTER__PROTOCOL",
    "HOSTAGENT_HEALTH__LISTEN", "HOSTAGENT_HEALTH__READY_INTERVALS", "HOSTAGENT_SOURCES__CPU__ENABLED",
    "HOSTAGENT_SOURCES__CPU", "HOSTAGENT_SOURCES__TOP_PROCESSES__COUNT", "HOSTAGENT_SOURCES__DISK__EXCLUDE",
    "HOSTAGENT_BACKLOG__MAX_BYTES", "HOSTAGENT_SOURCES__GPU__ENABLED", "HOSTAGENT_HOST_ROOT", "HOSTAGENT_LOG_LEVEL",
]
env_texts = st.one_of(
    st.text(st.characters(blacklist_characters="\x00"), max_size=30),
    st.lists(st.sampled_from(["http://", "https://", "gw", ":4318", ":99999", "/v1/metrics", "@", "user:pw",
                              "grpc", "http/protobuf", "a=b", "=", ",", "%20", "%ff", "true", "false", "5s", "1h",
                              "99999999h", "-1", "0.5", "[", "{", "}", "]", " ", "\t", "#"]), max_size=8).map("".join))


@given(st.dictionaries(st.sampled_from(VARIABLES), env_texts, min_size=1, max_size=3))
def test_any_environment_either_loads_or_gives_one_line_naming_a_variable(environ):
    assert_loads_or_one_line(None, environ, [f"environment variable {name}" for name in environ] +
                             ["environment variable OTEL_METRIC_EXPORT_INTERVAL (milliseconds)"])


def test_credentials_in_the_endpoint_never_reach_the_logs():
    config = load(None, environ={"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://user:s3cret@gw:4318/v1//me@x"})
    assert config.exporter.url == "https://user:s3cret@gw:4318/v1//me@x"
    assert config.exporter.url_for_logs == "https://gw:4318/v1//me@x"


TRANSPORT_HEADERS = ("expected none of the headers the transport sets itself (request framing): host, content-length, "
                     "content-type, content-encoding, transfer-encoding, connection, keep-alive, proxy-connection, te, "
                     "trailer, upgrade, grpc-*")


@pytest.mark.parametrize("name", ["content-encoding", "Content-Length", "HOST", "Transfer-Encoding", "connection",
                                  "te", "Upgrade", "keep-alive", "Content-Type", "grpc-timeout"])
def test_a_header_the_transport_sets_itself_is_refused_from_the_file(tmp_path, name):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, f"exporter:\n  headers: {{X-Tenant: t1, {name}: '5'}}\n"), environ={})
    assert str(error.value) == f"{tmp_path / 'agent.yaml'}: exporter.headers: header {name}: {TRANSPORT_HEADERS}"


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"])
def test_a_header_the_transport_sets_itself_is_refused_from_the_otel_variables(tmp_path, variable):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, "log_level: info\n"), environ={variable: "Authorization=Bearer%20x,Content-Length=5"})
    assert str(error.value) == (f"environment variable {variable}: exporter.headers: header Content-Length: "
                                f"{TRANSPORT_HEADERS}")
    with pytest.raises(ConfigError) as error:
        load(None, environ={"HOSTAGENT_EXPORTER__HEADERS": "{content-encoding: identity}"})
    assert str(error.value) == ("environment variable HOSTAGENT_EXPORTER__HEADERS: exporter.headers: header "
                                f"content-encoding: {TRANSPORT_HEADERS}")


def test_a_header_the_transport_sets_itself_is_refused_from_the_headers_file(tmp_path):
    headers = write(tmp_path, "Authorization=Bearer abc\n\nContent-Encoding = identity\n", "headers")
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, f"exporter:\n  headers_file: {headers}\n"), environ={})
    assert str(error.value) == (f"{tmp_path / 'agent.yaml'}: exporter.headers_file: file {headers}, line 3: header "
                                f"Content-Encoding: {TRANSPORT_HEADERS}")
    with pytest.raises(ConfigError) as error:
        load(None, environ={"HOSTAGENT_EXPORTER__HEADERS_FILE": str(headers)})
    assert str(error.value) == (f"environment variable HOSTAGENT_EXPORTER__HEADERS_FILE: exporter.headers_file: file "
                                f"{headers}, line 3: header Content-Encoding: {TRANSPORT_HEADERS}")
