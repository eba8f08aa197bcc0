"""Configuration: defaults, the shipped example, environment precedence, and every kind of bad input."""

import dataclasses
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from collector.config import Config, ConfigError, load
from collector.sources import SOURCES

EXAMPLE = Path(__file__).parents[2] / "collector" / "example-config.yaml"


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


@pytest.mark.parametrize("text, expected", [
    ("exporter: [1, 2\n", "agent.yaml: not valid YAML"),
    ("- just\n- a list\n", "agent.yaml: expected a mapping of options at the top level"),
    ("exporter:\n  intervall: 10s\n", "agent.yaml: exporter.intervall: unknown option; expected one of: endpoint,"),
    ("exporter:\n  interval: soon\n", "agent.yaml: exporter.interval: expected a duration such as 10s"),
    ("exporter:\n  interval: -5\n", "agent.yaml: exporter.interval: must be at least 0.1, got -5"),
    ("exporter:\n  protocol: http/json\n", "agent.yaml: exporter.protocol: expected one of http/protobuf, grpc"),
    ("exporter:\n  certificate: /nonexistent/ca.pem\n",
     "agent.yaml: exporter.certificate: file /nonexistent/ca.pem does not exist"),
    ("health:\n  enabled: yes please\n", "agent.yaml: health.enabled: expected true or false, got str"),
    ("health:\n  listen: localhost\n", "agent.yaml: health.listen: expected host:port"),
    ("sources:\n  gpu: {}\n", "agent.yaml: sources.gpu: unknown source; known sources: cpu, load,"),
    ("sources:\n  disk:\n    exclude: ['(unclosed']\n",
     "agent.yaml: sources.disk.exclude: invalid regular expression '(unclosed'"),
    ("sources:\n  top_processes:\n    count: 500\n", "agent.yaml: sources.top_processes.count: must be at most 50"),
    ("sources:\n  top_processes:\n    by: io\n", "agent.yaml: sources.top_processes.by: expected one of cpu, memory"),
    ("sources:\n  cpu:\n    interval: true\n", "agent.yaml: sources.cpu.interval: expected a duration"),
    ("host_root: /nonexistent-root\n", "agent.yaml: host_root: directory /nonexistent-root does not exist"),
])
def test_bad_input_names_the_file_the_key_and_what_is_expected(tmp_path, text, expected):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text), environ={})
    assert str(error.value).startswith(str(tmp_path / expected.split(": ", 1)[0]) + ": " + expected.split(": ", 1)[1])


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"missing.yaml: cannot read the configuration file: No such file"):
        load(tmp_path / "missing.yaml", environ={})


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


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
known_keys = st.sampled_from(["exporter", "backlog", "health", "host_root", "log_level", "sources", "other"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(known_keys, yaml_values, max_size=4))
def test_any_yaml_document_either_loads_or_gives_a_config_error(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("cfg") / "agent.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        load(path, environ={})
    except ConfigError as error:
        assert str(error).startswith(str(path) + ": ")


def test_credentials_in_the_endpoint_never_reach_the_logs():
    config = load(None, environ={"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://user:s3cret@gw:4318/v1/metrics"})
    assert config.exporter.url == "https://user:s3cret@gw:4318/v1/metrics"
    assert config.exporter.url_for_logs == "https://gw:4318/v1/metrics"
