"""The real agent → vmagent gateway → Prometheus and VictoriaMetrics: the naming contract, end to end."""
import json
import socket
from pathlib import Path

import psutil
import pytest

from collector import render
from collector.naming import OPTIONAL_RESOURCE_LABELS, RESOURCE_LABELS
from collector.sources import declared_metrics
from pipeline.testing import wait_for

DECLARED = json.loads(render.sources_json(declared_metrics()))
DEFAULTS = [metric for metric in DECLARED if metric["default"]]
ALWAYS = [metric["prometheus_name"] for metric in DEFAULTS if metric["condition"] is None]
COUNTERS = [metric["prometheus_name"] for metric in DEFAULTS if metric["instrument"] == "counter"]


def agent_series(backend) -> set[tuple[str, frozenset]]:
    return {(labels.pop("__name__"), frozenset(labels.items())) for labels in backend.series('{job="hostagent"}')}


def names(series) -> set[str]:
    return {name for name, _ in series}


def scalar(backend, expr: str) -> float:
    result = backend.query(expr)
    assert len(result) == 1, f"{backend.name}: {expr} -> {result}"
    return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def settled(fed_pipeline):
    """Both backends' agent series once every always-present default metric has arrived."""
    def complete():
        found = [agent_series(backend) for backend in fed_pipeline.backends]
        return found if all(set(ALWAYS) <= names(series) for series in found) else None
    return wait_for(complete, timeout=90, what="every default metric in both backends")


def test_every_default_metric_arrives_in_both_backends(settled):
    for series in settled:
        assert set(ALWAYS) <= names(series)


def test_only_declared_metrics_arrive(settled):
    declared = {metric["prometheus_name"] for metric in DECLARED}
    for series in settled:
        assert names(series) <= declared


def test_series_and_label_sets_identical_in_both_backends(fed_pipeline, settled):
    def same():
        prometheus, victoriametrics = (agent_series(backend) for backend in fed_pipeline.backends)
        return prometheus == victoriametrics or None
    wait_for(same, timeout=30, what="the same series in both backends")


@pytest.mark.parametrize("metric", DEFAULTS, ids=lambda metric: metric["prometheus_name"])
def test_label_names_follow_the_contract(settled, metric):
    identity = set(RESOURCE_LABELS)
    allowed = identity | set(OPTIONAL_RESOURCE_LABELS) | set(metric["prometheus_optional_labels"])
    for series in settled:
        for name, labels in series:
            if name == metric["prometheus_name"]:
                keys = {key for key, _ in labels}
                assert identity | set(metric["prometheus_labels"]) <= keys <= allowed | set(metric["prometheus_labels"])


def test_host_labels_identify_this_host(settled):
    machine_id = Path("/etc/machine-id").read_text().strip()
    for series in settled:
        hosts = {(dict(labels)["host_name"], dict(labels).get("host_id")) for _, labels in series}
        assert hosts == {(socket.gethostname(), machine_id or None)}


def test_memory_states_add_up_to_the_limit(fed_pipeline, settled):
    expr = "sum by (instance) (system_memory_usage_bytes) - on (instance) system_memory_limit_bytes"
    for backend in fed_pipeline.backends:
        assert scalar(backend, expr) == 0
        assert scalar(backend, "system_memory_limit_bytes") == psutil.virtual_memory().total


def test_filesystem_states_add_up_to_the_limit_per_mountpoint(fed_pipeline, settled):
    expr = "sum without (system_filesystem_state) (system_filesystem_usage_bytes) - system_filesystem_limit_bytes"
    for backend in fed_pipeline.backends:
        differences = backend.query(expr)
        assert differences, f"{backend.name}: no filesystem matched its limit"
        assert {sample["metric"]["system_filesystem_mountpoint"]: float(sample["value"][1])
                for sample in differences} == {sample["metric"]["system_filesystem_mountpoint"]: 0.0
                                               for sample in differences}


@pytest.mark.parametrize("counter", COUNTERS)
def test_counters_never_decrease(fed_pipeline, settled, counter):
    selector = f'{counter}{{job="hostagent"}}[10m]'
    for backend in fed_pipeline.backends:
        wait_for(lambda: scalar(backend, f"min(count_over_time({selector}))") >= 3, timeout=30,
                 what=f"three samples of {counter} in {backend.name}")
        assert scalar(backend, f"max(resets({selector}))") == 0


def test_same_values_in_both_backends(fed_pipeline, settled):
    for expr in ("system_cpu_logical_count", "system_memory_limit_bytes", "system_linux_file_descriptor_limit"):
        assert {scalar(backend, expr) for backend in fed_pipeline.backends} == {scalar(fed_pipeline.prometheus, expr)}
    assert scalar(fed_pipeline.prometheus, "system_cpu_logical_count") == psutil.cpu_count()
