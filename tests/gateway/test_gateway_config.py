"""otel-config/gateway.yaml and its copies: the design checks, and `validate` by the collector the project builds."""
from __future__ import annotations

import copy
import subprocess
from typing import Any

import pytest
import yaml

from collector.naming import OPTIONAL_RESOURCE_LABELS, RESOURCE_LABELS
from pipeline.services import GATEWAY_CONFIG as GATEWAY

from . import gateway_check


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load(GATEWAY.read_text())


def test_gateway_config_has_no_problems(config):
    assert gateway_check.problems(config) == []


def test_identity_keys_are_the_naming_contracts_resource_labels():
    labels = {key.replace(".", "_") for key in gateway_check.IDENTITY_KEYS}
    assert labels == set(RESOURCE_LABELS) | set(OPTIONAL_RESOURCE_LABELS)


def test_backend_urls_are_set_by_the_variables_of_the_brief(config):
    """make run and deploy/ configure Prometheus for either gateway with the same variable; VictoriaMetrics with its
    remote-write URL for vmagent and its OTLP URL for the collector (docs/gateway.md)."""
    vmagent_flags = (GATEWAY.parent / "vmagent" / "vmagent.flags").read_text()
    assert {"PROMETHEUS_WRITE_URL", "VICTORIAMETRICS_OTLP_URL"} <= gateway_check.env_names(config)
    assert "VICTORIAMETRICS_WRITE_URL" not in gateway_check.env_names(config)
    for name in ("PROMETHEUS_WRITE_URL", "VICTORIAMETRICS_WRITE_URL"):
        assert f"%{{{name}}}" in vmagent_flags


def test_env_defaults_resolve_to_the_brief_ports(config):
    receivers = config["receivers"]["otlp"]["protocols"]
    assert gateway_check.resolve(receivers["grpc"]["endpoint"]) == "0.0.0.0:4317"
    assert gateway_check.resolve(receivers["http"]["endpoint"], {"OTELCOL_OTLP_HTTP_ENDPOINT": "127.0.0.1:5555"}) \
        == "127.0.0.1:5555"


def _pipeline(c, name="metrics"):
    return c["service"]["pipelines"][name]


def _queue(c, backend="prometheus"):
    return c["exporters"][f"otlphttp/{backend}"]


def _prw(c, backend="prometheus"):
    return c["exporters"][f"prometheusremotewrite/{backend}"]


def _drop_memory_limiter(c):
    _pipeline(c)["processors"].remove("memory_limiter")


def _memory_limiter_last(c):
    processors = _pipeline(c)["processors"]
    processors.append(processors.pop(0))


def _agents_straight_to_remote_write(c):
    _pipeline(c)["exporters"][0] = "prometheusremotewrite/prometheus"


def _connections_kept(c):
    c["receivers"]["otlp"]["protocols"]["http"].pop("idle_timeout", None)


def _idle_timeout_above_interval(c):
    c["receivers"]["otlp"]["protocols"]["http"]["idle_timeout"] = "10s"


def _fsync_fixed(c):
    c["extensions"]["file_storage"]["fsync"] = True


def _no_recreate(c):
    c["extensions"]["file_storage"].pop("recreate", None)


def _no_compaction(c):
    del c["extensions"]["file_storage"]["compaction"]


def _no_compaction_on_rebound(c):
    c["extensions"]["file_storage"]["compaction"]["on_rebound"] = False


def _memory_queue(c):
    del _queue(c)["sending_queue"]["storage"]


def _storage_not_enabled(c):
    c["service"]["extensions"].remove("file_storage")


def _undefined_storage(c):
    _queue(c)["sending_queue"]["storage"] = "file_storage/other"


def _retries_give_up(c):
    _queue(c)["retry_on_failure"]["max_elapsed_time"] = "5m"


def _queue_to_nowhere(c):
    _queue(c)["endpoint"] = "http://127.0.0.1:4999"


def _relay_on_all_interfaces(c):
    for component in (c["receivers"]["otlp/prometheus"]["protocols"]["http"], _queue(c)):
        component["endpoint"] = component["endpoint"].replace("127.0.0.1", "0.0.0.0")


def _relay_with_two_exporters(c):
    _pipeline(c, "metrics/prometheus")["exporters"].append("debug")


def _victoriametrics_through_a_relay(c):
    queue = _queue(c, "victoriametrics")
    queue["endpoint"] = _queue(c)["endpoint"]
    del queue["metrics_endpoint"]


def _victoriametrics_remote_write_path(c):
    _queue(c, "victoriametrics")["metrics_endpoint"] = "http://127.0.0.1:8428/api/v1/write"


def _remote_write_retries(c):
    _prw(c)["retry_on_failure"]["enabled"] = True


def _wal(c):
    _prw(c)["wal"] = {"directory": "/var/lib/otelcol/wal"}


def _memory_queue_after_disk(c):
    _prw(c)["remote_write_queue"] = {"enabled": True, "queue_size": 100}


def _slow_translation(c):
    _prw(c)["timeout"] = "60s"


def _no_resource_labels(c):
    _prw(c)["resource_to_telemetry_conversion"]["enabled"] = False


def _target_info(c):
    del _prw(c)["target_info"]


def _keeps_host_arch(c):
    statements = c["processors"]["transform/identity"]["metric_statements"][0]["statements"]
    statements[-1] = statements[-1].replace('"os.type"', '"os.type", "host.arch"')


def _keeps_scope(c):
    c["processors"]["transform/identity"]["metric_statements"].pop()


def _grpc_port(c):
    c["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = "${env:OTELCOL_OTLP_GRPC_ENDPOINT:-0.0.0.0:4319}"


def _placeholder_without_default(c):
    _prw(c)["endpoint"] = "${env:PROMETHEUS_WRITE_URL}"


def _wrong_backend_port(c):
    _queue(c, "victoriametrics")["metrics_endpoint"] = "http://127.0.0.1:8429/opentelemetry/v1/metrics"


def _different_queue(c):
    _queue(c, "victoriametrics")["sending_queue"]["queue_size"] = 10


def _misspelled_exporter_key(c):
    _prw(c)["resource_to_telemetry_convertion"] = _prw(c).pop("resource_to_telemetry_conversion")


def _no_exporters(c):
    _pipeline(c)["exporters"] = []


BROKEN = {
    "memory_limiter missing": (_drop_memory_limiter, "memory_limiter must be the first processor"),
    "memory_limiter last": (_memory_limiter_last, "memory_limiter must be the first processor"),
    "no queue": (_agents_straight_to_remote_write, "is not a otlphttp queue"),
    "connections kept": (_connections_kept, "idle_timeout 1m (the default) is not below"),
    "idle timeout not below the interval": (_idle_timeout_above_interval, "idle_timeout 10s is not below"),
    "fsync fixed": (_fsync_fixed, "fsync must be the site setting ${env:OTELCOL_STORAGE_FSYNC:-false}"),
    "no recreate": (_no_recreate, "recreate must be true"),
    "no compaction": (_no_compaction, "compaction.on_start must be true"),
    "no compaction on rebound": (_no_compaction_on_rebound, "compaction.on_rebound must be true"),
    "memory queue": (_memory_queue, "sending_queue has no storage"),
    "storage off": (_storage_not_enabled, "is not in service.extensions"),
    "undefined storage": (_undefined_storage, "is not a defined file_storage extension"),
    "retries give up": (_retries_give_up, "max_elapsed_time 0s"),
    "queue to nowhere": (_queue_to_nowhere, "is the receiver of 0 pipelines"),
    "relay not loopback": (_relay_on_all_interfaces, "not on loopback"),
    "relay fans out": (_relay_with_two_exporters, "must end in exactly one prometheusremotewrite"),
    "victoriametrics through a relay": (_victoriametrics_through_a_relay, "must send to metrics_endpoint"),
    "victoriametrics remote-write path": (_victoriametrics_remote_write_path, "must send to metrics_endpoint"),
    "remote write retries": (_remote_write_retries, "two retriers send twice"),
    "wal": (_wal, "has a wal"),
    "memory queue after disk": (_memory_queue_after_disk, "remote_write_queue is enabled"),
    "slow translation": (_slow_translation, "timeout must be shorter than the queues'"),
    "no resource labels": (_no_resource_labels, "resource_to_telemetry_conversion is not enabled"),
    "target_info": (_target_info, "target_info is enabled"),
    "host.arch kept": (_keeps_host_arch, "resource attributes are not reduced to exactly"),
    "scope kept": (_keeps_scope, 'missing set(scope.name, "")'),
    "grpc port": (_grpc_port, "otlp grpc: default port is 4319, the brief says 4317"),
    "no default": (_placeholder_without_default, "is not of the form ${env:NAME:-default}"),
    "vm port": (_wrong_backend_port, "does not end in :8428/opentelemetry/v1/metrics"),
    "no exporters": (_no_exporters, "pipeline metrics: no exporters"),
    "misspelled exporter key": (_misspelled_exporter_key, "unknown key resource_to_telemetry_convertion"),
    "different queue": (_different_queue, "settings differ from otlphttp/prometheus"),
}


@pytest.mark.parametrize("mutate, expected", BROKEN.values(), ids=BROKEN.keys())
def test_checker_reports_broken_variant(config, mutate, expected):
    broken = copy.deepcopy(config)
    mutate(broken)
    found = gateway_check.problems(broken)
    assert any(expected in problem for problem in found), found


def test_the_collector_validates_every_shipped_config(tmp_path, otelcol_binary, shipped_config):
    """`validate` of the collector the project builds: component types, keys, placeholders, pipelines."""
    result = subprocess.run([str(otelcol_binary), "validate", *(f"--config={path}" for path in shipped_config)],
                            capture_output=True, text=True, timeout=60, env={"OTELCOL_STORAGE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr


def test_fsync_is_a_setting_the_collector_takes_from_the_environment(tmp_path, otelcol_binary):
    """`${env:OTELCOL_STORAGE_FSYNC:-false}` becomes a boolean: `validate` takes true, refuses what is not one."""
    for value, valid in (("true", True), ("false", True), ("yes please", False)):
        result = subprocess.run([str(otelcol_binary), "validate", f"--config={GATEWAY}"], capture_output=True,
                                text=True, timeout=60,
                                env={"OTELCOL_STORAGE_DIR": str(tmp_path), gateway_check.FSYNC_SETTING: value})
        assert (result.returncode == 0) == valid, (value, result.stderr)


def test_validate_rejects_a_broken_config(tmp_path, otelcol_binary, config):
    """The check above can fail: a misspelled key."""
    broken = copy.deepcopy(config)
    memory_limiter = broken["processors"]["memory_limiter"]
    memory_limiter["check_intervall"] = memory_limiter.pop("check_interval")
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run([str(otelcol_binary), "validate", f"--config={path}"],
                            capture_output=True, text=True, timeout=60, env={"OTELCOL_STORAGE_DIR": str(tmp_path)})
    assert result.returncode != 0 and "invalid keys: check_intervall" in result.stderr, result.stderr
