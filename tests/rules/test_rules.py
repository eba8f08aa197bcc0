"""The committed rule files: current, valid, unit-tested on both engines, linked, and named by the contract."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import promql_parser
import pytest
import yaml

from pipeline.services import Vmagent, http_get
from pipeline.testing import free_port, gateway_pipeline_in, require_binary, running, wait_for
from rules import build, check
from tests.support.otlp_push import push_gauge_at

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
RULES_DOC = REPO_ROOT / "docs" / "alerting-rules.md"
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Remediation")
RESOURCE_LABELS = {"job", "instance", "host_name", "host_id", "os_type", "k8s_node_name", "k8s_cluster_name"}
DEAD_WRITE_URL = "http://127.0.0.1:1/api/v1/write"
EXPORT_INTERVAL = timedelta(seconds=10)  # the agent's default

RULES = [rule for path in check.RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
         for rule in group["rules"]]
ALERTS = [rule for rule in RULES if "alert" in rule]
RECORDED = {rule["record"] for rule in RULES if "record" in rule}
_, LINKS = build.load_thresholds()


def test_committed_rule_files_are_rendered_from_templates_and_thresholds():
    assert build.stale() == [], "run `python -m rules.build` and commit rules/*.rules.yml"


@pytest.mark.parametrize("tool, validate", [("promtool", check.promtool_check), ("vmalert", check.vmalert_check)])
def test_the_rule_files_are_valid_and_a_broken_one_is_not(tool, validate, tmp_path):
    require_binary(tool)
    broken = tmp_path / "broken.rules.yml"
    broken.write_text("groups: [{name: g, rules: [{alert: A, expr: 'rate(x[5m]) >'}]}]\n")
    assert validate([broken]).returncode != 0, f"{tool} accepted a broken rule file"
    result = validate()
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", check.TEST_FILES, ids=lambda path: path.name)
def test_unit_tests_pass_on_promtool(test_file, tmp_path):
    require_binary("promtool")
    result = check.promtool_test(test_file, tmp_path)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", check.TEST_FILES, ids=lambda path: path.name)
def test_unit_tests_pass_on_vmalert_tool(test_file, tmp_path):
    require_binary("vmalert-tool")
    result = check.vmalert_test(test_file, tmp_path)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_there_are_at_least_15_alerts():
    assert len({alert["alert"] for alert in ALERTS}) >= 15


@pytest.mark.parametrize("alert", ALERTS, ids=lambda rule: f"{rule['alert']}-{rule['labels']['severity']}")
def test_alert_has_severity_timing_and_templated_text(alert):
    assert alert["labels"]["severity"] in build.SEVERITIES
    assert {"for", "keep_firing_for"} <= set(alert)
    annotations = alert["annotations"]
    assert annotations["summary"] and annotations["description"]
    assert "{{" in annotations["description"], "the description should carry the alert's values"


@pytest.mark.parametrize("alert", ALERTS, ids=lambda rule: f"{rule['alert']}-{rule['labels']['severity']}")
def test_alert_links_its_runbook_and_a_dashboard(alert):
    annotations = alert["annotations"]
    assert annotations["runbook_url"] == f"{LINKS['runbooks']}/{alert['alert']}.md"
    assert (RUNBOOKS / f"{alert['alert']}.md").is_file()
    dashboard = annotations["dashboard_url"].removeprefix(f"{LINKS['grafana']}/d/")
    uid, _, query = dashboard.partition("?")
    assert uid in build.DASHBOARDS
    assert query in ("", "var-host={{ $labels.host_name }}")
    if query or uid == "host-detail":
        assert query and "$labels.host_name" in annotations["description"]


def test_runbooks_are_exactly_one_per_alert_with_every_section():
    assert {path.stem for path in RUNBOOKS.glob("*.md")} == {alert["alert"] for alert in ALERTS}
    for path in RUNBOOKS.glob("*.md"):
        text = path.read_text()
        missing = [section for section in RUNBOOK_SECTIONS if section not in text]
        assert not missing, f"{path.name} lacks {missing}"


def test_the_rules_document_names_every_alert_and_recording():
    text = RULES_DOC.read_text()
    # The 1h recordings are documented with their 5m twins.
    names = {alert["alert"] for alert in ALERTS} | {name.replace("1h", "5m") for name in RECORDED}
    assert {name for name in names if name not in text} == set()


def unit_tests() -> list[dict]:
    return [group for path in check.TEST_FILES for group in yaml.safe_load(path.read_text())["tests"]]


def test_every_alert_and_severity_is_seen_firing_and_silent_in_a_unit_test():
    cases = [case for group in unit_tests() for case in group.get("alert_rule_test", [])]
    fired = {(case["alertname"], expected["exp_labels"]["severity"])
             for case in cases for expected in case["exp_alerts"]}
    silent = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert {(alert["alert"], alert["labels"]["severity"]) for alert in ALERTS} <= fired
    assert {alert["alert"] for alert in ALERTS} <= silent


def test_every_recording_rule_is_checked_by_an_expression_test():
    exprs = " ".join(case["expr"] for group in unit_tests() for case in group.get("promql_expr_test", []))
    assert {name for name in RECORDED if name not in exprs} == set()


def nodes(expr: str, kind: type) -> list:
    found = []
    promql_parser.walk(promql_parser.parse(expr), lambda node: found.append(node) if isinstance(node, kind) else None)
    return found


def test_every_range_window_spans_at_least_four_exports():
    short = {(rule.get("record") or rule["alert"], str(matrix.range)) for rule in RULES
             for matrix in nodes(rule["expr"], promql_parser.MatrixSelector) if matrix.range < 4 * EXPORT_INTERVAL}
    assert short == set()


def selected_names() -> dict[str, set[str]]:
    """{metric name: label names matched on it} over every rule expression."""
    names: dict[str, set[str]] = {}
    for rule in RULES:
        for selector in nodes(rule["expr"], promql_parser.VectorSelector):
            names.setdefault(selector.name, set()).update(m.name for m in selector.matchers.matchers)
    return names


def agent_contract() -> dict[str, tuple[set[str], set[str]]]:
    """{Prometheus name: (its labels, its optional labels)} for every metric the agent declares
    (`collector sources --format json`)."""
    output = subprocess.run([sys.executable, "-m", "collector", "sources", "--format", "json"],
                            capture_output=True, text=True, check=True, cwd=REPO_ROOT).stdout
    return {metric["prometheus_name"]: (set(metric["prometheus_labels"]), set(metric["prometheus_optional_labels"]))
            for metric in json.loads(output)}


def test_rules_read_only_declared_metrics_and_labels():
    contract = agent_contract()
    for name, labels in selected_names().items():
        if ":" in name:
            assert name in RECORDED, f"{name} is read but recorded by no rule"
        elif name in contract:
            declared = set.union(*contract[name])
            assert labels <= declared | RESOURCE_LABELS, f"{name} has no labels {labels - declared}"
        else:
            # The gateways' own metrics: checked against what the running gateways expose, below.
            assert name.startswith(("vmagent_", "otelcol_")), f"{name} is in no naming contract"


def test_the_collector_gateway_exposes_every_otelcol_metric_the_rules_read(tmp_path):
    """The collector's own metrics, as its build exposes them (v0.160.0: counters without `_total`)."""
    wanted = {name for name in selected_names() if name.startswith("otelcol_")}
    with gateway_pipeline_in(tmp_path, "otelcol") as pipeline:
        now = time.time()
        push_gauge_at(pipeline.gateway.otlp_url, "system.cpu.utilization", now, 0.5)
        wait_for(lambda: pipeline.prometheus.query("system_cpu_utilization_ratio"), timeout=30, what="a sample")
        # Counters of failures appear with the first one: a sample Prometheus refuses (older than its window).
        push_gauge_at(pipeline.gateway.otlp_url, "system.cpu.utilization", now - 3 * 3600, 0.5)

        def exposed() -> set[str]:
            lines = http_get(f"http://{pipeline.gateway.telemetry_address}/metrics").decode().splitlines()
            return {line.split("{")[0].split(" ")[0] for line in lines if line and not line.startswith("#")}
        found = wait_for(lambda: wanted <= exposed() and exposed(), timeout=30, what=f"{sorted(wanted)} exposed")
    assert wanted and wanted <= found


def test_the_vmagent_gateway_exposes_every_vmagent_metric_the_rules_read(tmp_path):
    wanted = {name for name in selected_names() if name.startswith("vmagent_")}
    with running(Vmagent(free_port(), tmp_path, DEAD_WRITE_URL, DEAD_WRITE_URL)) as gateway:
        exposition = http_get(f"{gateway.url}/metrics").decode().splitlines()
    exposed = {line.split("{")[0].split(" ")[0] for line in exposition if line and not line.startswith("#")}
    assert wanted and wanted <= exposed, wanted - exposed


def test_a_backend_down_behind_vmagent_counts_as_retries_so_vmagent_remote_write_failing_sees_it(tmp_path):
    """vmagent's answer to OtelcolExporterQueueNotDraining: its queues retry for ever too, but count each attempt at
    a backend that is down, which is what VmagentRemoteWriteFailing reads."""
    def retries(gateway) -> dict[str, float]:
        lines = http_get(f"{gateway.url}/metrics").decode().splitlines()
        return {line.split('url="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
                for line in lines if line.startswith("vmagent_remotewrite_retries_count_total{")}
    with running(Vmagent(free_port(), tmp_path, DEAD_WRITE_URL, DEAD_WRITE_URL)) as gateway:
        counted = wait_for(lambda: (found := retries(gateway)) and all(found.values()) and found, timeout=30,
                           what="retries counted for both unreachable backends")
    assert len(counted) == 2
