"""otel-config/gateway.yaml: static checks, and `otelcol-contrib validate` when the binary is on PATH."""
from __future__ import annotations

import copy
import subprocess
from typing import Any, Callable

import pytest
import yaml

from collector.naming import OPTIONAL_RESOURCE_LABELS, RESOURCE_LABELS
from pipeline.services import GATEWAY_CONFIG as GATEWAY

from . import gateway_check
from .otelcol import otelcol_contrib


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load(GATEWAY.read_text())


def test_gateway_config_has_no_problems(config):
    assert gateway_check.problems(config) == []


def test_component_table_names_go_modules():
    for kind, components in gateway_check.CONTRIB_COMPONENTS.items():
        for name, module in components.items():
            assert module.startswith(("go.opentelemetry.io/collector/",
                                      "github.com/open-telemetry/opentelemetry-collector-contrib/")), (kind, name)
            assert module.rsplit("/", 1)[-1].startswith(name.replace("_", "")[:6]), (kind, name, module)


def test_identity_keys_are_the_naming_contracts_resource_labels():
    labels = {key.replace(".", "_") for key in gateway_check.IDENTITY_KEYS}
    assert labels == set(RESOURCE_LABELS) | set(OPTIONAL_RESOURCE_LABELS)


def test_backend_urls_are_set_by_the_same_variables_as_for_vmagent(config):
    """make run and deploy/ configure either gateway with the same two variables."""
    vmagent_flags = (GATEWAY.parent / "vmagent" / "vmagent.flags").read_text()
    for name in ("PROMETHEUS_WRITE_URL", "VICTORIAMETRICS_WRITE_URL"):
        assert name in gateway_check.env_names(config)
        assert f"%{{{name}}}" in vmagent_flags


def test_env_defaults_resolve_to_the_brief_ports(config):
    receivers = config["receivers"]["otlp"]["protocols"]
    assert gateway_check.resolve(receivers["grpc"]["endpoint"]) == "0.0.0.0:4317"
    assert gateway_check.resolve(receivers["http"]["endpoint"], {"OTELCOL_OTLP_HTTP_ENDPOINT": "127.0.0.1:5555"}) \
        == "127.0.0.1:5555"


def _pipeline(c):
    return c["service"]["pipelines"]["metrics"]


def _prw(c, backend="prometheus"):
    return c["exporters"][f"prometheusremotewrite/{backend}"]


def _drop_memory_limiter(c):
    _pipeline(c)["processors"].remove("memory_limiter")


def _memory_limiter_last(c):
    processors = _pipeline(c)["processors"]
    processors.append(processors.pop(0))


def _undefined_processor(c):
    _pipeline(c)["processors"].append("attributes/missing")


def _unknown_exporter_type(c):
    c["exporters"]["prometheusremotewritex"] = c["exporters"].pop("prometheusremotewrite/victoriametrics")
    _pipeline(c)["exporters"][1] = "prometheusremotewritex"


def _unused_extension(c):
    c["extensions"]["file_storage"] = {"directory": "/var/lib/otelcol"}


def _no_retry(c):
    del _prw(c)["retry_on_failure"]


def _prw_sending_queue(c):
    _prw(c)["sending_queue"] = {"storage": "file_storage"}


def _no_wal(c):
    del _prw(c)["wal"]


def _shared_wal(c):
    _prw(c, "victoriametrics")["wal"]["directory"] = _prw(c)["wal"]["directory"]


def _memory_queue_before_wal(c):
    _prw(c)["remote_write_queue"] = {"enabled": True, "queue_size": 100}


def _no_resource_labels(c):
    _prw(c)["resource_to_telemetry_conversion"]["enabled"] = False


def _target_info(c):
    del _prw(c)["target_info"]


def _otlphttp(storage: str | None, enable: bool) -> Callable[[dict], None]:
    def mutate(c):
        c["exporters"]["otlphttp/vm"] = {"endpoint": "http://127.0.0.1:8428/opentelemetry",
                                         "retry_on_failure": {"enabled": True},
                                         "sending_queue": {"storage": storage} if storage else {}}
        c["extensions"]["file_storage"] = {"directory": "/var/lib/otelcol"}
        if enable:
            c["service"]["extensions"].append("file_storage")
        _pipeline(c)["exporters"].append("otlphttp/vm")
    return mutate


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
    _prw(c, "victoriametrics")["endpoint"] = "http://127.0.0.1:8429/api/v1/write"


def _different_translation(c):
    _prw(c, "victoriametrics")["add_metric_suffixes"] = False


def _no_exporters(c):
    _pipeline(c)["exporters"] = []


BROKEN = {
    "memory_limiter missing": (_drop_memory_limiter, "memory_limiter must be the first processor"),
    "memory_limiter last": (_memory_limiter_last, "memory_limiter must be the first processor"),
    "undefined processor": (_undefined_processor, "processor attributes/missing is not defined"),
    "unknown exporter type": (_unknown_exporter_type, "prometheusremotewritex is not a component of the contrib"),
    "unused extension": (_unused_extension, "extensions: file_storage is defined but never used"),
    "no retry": (_no_retry, "retry_on_failure is not enabled"),
    "prw sending_queue": (_prw_sending_queue, "has no sending_queue (invalid key)"),
    "no wal": (_no_wal, "no wal.directory"),
    "shared wal": (_shared_wal, "is also used by prometheusremotewrite/prometheus"),
    "memory queue": (_memory_queue_before_wal, "remote_write_queue is enabled"),
    "no resource labels": (_no_resource_labels, "resource_to_telemetry_conversion is not enabled"),
    "target_info": (_target_info, "target_info is enabled"),
    "otlphttp no storage": (_otlphttp(None, True), "otlphttp/vm: sending_queue has no storage"),
    "otlphttp bad storage": (_otlphttp("file_storage/other", True), "is not a defined file_storage extension"),
    "otlphttp storage off": (_otlphttp("file_storage", False), "is not in service.extensions"),
    "host.arch kept": (_keeps_host_arch, "resource attributes are not reduced to exactly"),
    "scope kept": (_keeps_scope, 'missing set(scope.name, "")'),
    "grpc port": (_grpc_port, "otlp grpc: default port is 4319, the brief says 4317"),
    "no default": (_placeholder_without_default, "is not of the form ${env:NAME:-default}"),
    "vm port": (_wrong_backend_port, "does not end in :8428/api/v1/write"),
    "no exporters": (_no_exporters, "pipeline metrics: no exporters"),
    "different translation": (_different_translation, "settings differ from prometheusremotewrite/prometheus"),
}


@pytest.mark.parametrize("mutate, expected", BROKEN.values(), ids=BROKEN.keys())
def test_checker_reports_broken_variant(config, mutate, expected):
    broken = copy.deepcopy(config)
    mutate(broken)
    found = gateway_check.problems(broken)
    assert any(expected in problem for problem in found), found


def test_otlphttp_with_enabled_file_storage_passes(config):
    fine = copy.deepcopy(config)
    _otlphttp("file_storage", True)(fine)
    assert gateway_check.problems(fine) == []


def test_otelcol_contrib_validates_the_config(tmp_path):
    result = subprocess.run([str(otelcol_contrib()), "validate", "--config", str(GATEWAY)],
                            capture_output=True, text=True, timeout=60, env={"OTELCOL_STORAGE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
