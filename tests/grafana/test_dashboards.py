"""What the dashboards promise beyond lint: generated files current, conventions, thresholds, links."""
from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import promql_parser
import pytest
import yaml

from collector.naming import OPTIONAL_RESOURCE_LABELS, RESOURCE_LABELS, prometheus_label, prometheus_name
from collector.sources import UndeclaredMetric, declared_metrics
from dashgen import BUILDERS, DASHBOARDS_DIR, exprs, lint, promql, render
from dashgen.lint.model import RATE_INTERVAL, expand, parsed_targets
from dashgen.thresholds import RULES_THRESHOLDS, alert_threshold, alert_thresholds
from rules.check import RULE_FILES
from tests.support.alert_rules import alert_labels
from tests.support.declarations import AS_BYTES, METRIC, PROMETHEUS, redeclare

REPO = Path(__file__).resolve().parents[2]
UIDS = ["fleet-overview", "host-detail", "pipeline-health", "workloads"]


def _dashboard(uid: str) -> dict:
    return json.loads((DASHBOARDS_DIR / f"{uid}.json").read_text())


def _panel(uid: str, title: str) -> dict:
    return next(p for p in lint.panels(_dashboard(uid)) if p["title"] == title and p["type"] != "row")


@pytest.mark.parametrize("uid", UIDS)
def test_committed_json_is_what_the_generator_renders(uid):
    # Edit grafana/dashgen/*.py, then regenerate: python -m dashgen
    assert (DASHBOARDS_DIR / f"{uid}.json").read_text() == render(uid)


def test_the_dashboards_follow_a_metric_s_declaration(monkeypatch):
    """Panels name metrics by their OTLP names: only the Prometheus name changes in the generated JSON."""
    committed = {uid: (DASHBOARDS_DIR / f"{uid}.json").read_text() for uid in UIDS}
    redeclare(monkeypatch, METRIC, unit="By")
    rendered = {uid: render(uid) for uid in UIDS}
    assert AS_BYTES in rendered["host-detail"]
    assert not any(PROMETHEUS in text for text in rendered.values())
    assert {uid: text.replace(AS_BYTES, PROMETHEUS) for uid, text in rendered.items()} == committed


def test_a_metric_renamed_in_its_declaration_fails_the_dashboards_that_read_it(monkeypatch):
    redeclare(monkeypatch, METRIC, name="system.filesystem.fullness")
    with pytest.raises(UndeclaredMetric, match=f"{METRIC} is declared by no source"):
        render("host-detail")


def test_generator_builds_exactly_the_four_dashboards():
    assert sorted(BUILDERS) == UIDS


@pytest.mark.parametrize("uid", UIDS)
def test_conventions(uid):
    d = _dashboard(uid)
    assert d["uid"] == uid
    assert d["schemaVersion"] == 42
    assert d["refresh"] == "30s"
    assert d["time"] == {"from": "now-6h", "to": "now"}
    assert "id" not in d, "provisioned dashboards must not carry a database id"
    links = [link for link in d["links"] if link["type"] == "dashboards"]
    assert links and all(set(link["tags"]) <= set(d["tags"]) for link in links), "links to the sibling dashboards"
    names = [v["name"] for v in d["templating"]["list"]]
    assert names == ["datasource", "job", "cluster", "node", "host"]


def test_host_variable_lists_hosts_by_host_name_and_is_single_on_host_detail():
    host = next(v for v in _dashboard("host-detail")["templating"]["list"] if v["name"] == "host")
    assert host["query"]["query"].startswith("label_values(system_uptime_seconds{")
    assert host["query"]["query"].endswith(", host_name)")
    assert not host["multi"] and not host["includeAll"]


def _alert_dashboard_urls() -> list[str]:
    urls = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            urls += [r["annotations"]["dashboard_url"] for r in group["rules"]
                     if "dashboard_url" in r.get("annotations", {})]
    return urls


def test_every_alert_dashboard_url_opens_one_of_these_dashboards_with_its_variables():
    urls = _alert_dashboard_urls()
    assert any("/d/host-detail?var-host=" in url for url in urls)
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        uid = parts.path.rsplit("/d/", 1)[1].split("/")[0]
        assert uid in UIDS, url
        variables = {v["name"] for v in _dashboard(uid)["templating"]["list"]}
        for name in urllib.parse.parse_qs(parts.query):
            assert name.removeprefix("var-") in variables, f"{url}: no variable {name}"


def _steps(panel: dict) -> list[float]:
    return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]


@pytest.mark.parametrize("uid, title, alert", [
    ("host-detail", "CPU utilisation by mode", "HostCpuBusy"),
    ("host-detail", "CPU utilisation per core", "HostCpuBusy"),
    ("host-detail", "Memory utilisation", "HostMemoryUsage"),
    ("host-detail", "Filesystem utilisation", "HostFilesystemUsage"),
])
def test_threshold_lines_are_the_alert_thresholds(uid, title, alert):
    panel = _panel(uid, title)
    expected = alert_thresholds(alert)
    assert _steps(panel) == [expected.warning, expected.critical]
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"


@pytest.mark.parametrize("column, expected", [
    ("CPU", [alert_threshold("HostCpuBusy", s) for s in ("warning", "critical")]),
    ("Memory", [alert_threshold("HostMemoryUsage", s) for s in ("warning", "critical")]),
    ("Fullest filesystem", [alert_threshold("HostFilesystemUsage", s) for s in ("warning", "critical")]),
    ("Load (5m) per CPU", [alert_threshold("HostCpuSaturated", "warning")]),
])
def test_fleet_table_colours_cells_at_the_alert_thresholds(column, expected):
    override = next(o for o in _panel("fleet-overview", "Hosts")["fieldConfig"]["overrides"]
                    if o["matcher"]["options"] == column)
    steps = next(p["value"]["steps"] for p in override["properties"] if p["id"] == "thresholds")
    assert [s["value"] for s in steps[1:]] == expected


def test_process_group_cells_turn_red_below_the_alert_threshold():
    override = next(o for o in _panel("workloads", "Process groups")["fieldConfig"]["overrides"]
                    if o["matcher"]["options"] == "Processes")
    steps = next(p["value"]["steps"] for p in override["properties"] if p["id"] == "thresholds")
    assert steps == [{"color": "red", "value": None},
                     {"color": "green", "value": alert_threshold("HostProcessGroupDown", "critical")}]


def test_reporting_means_sending_within_host_stopped_reporting_s_silence():
    """A host the fleet dashboard shows as reporting is one the alert does not call stopped, and the reverse."""
    silent = yaml.safe_load(RULES_THRESHOLDS.read_text())["alerts"]["HostStoppedReporting"]["critical"]["silent"]
    rule, = [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
             for rule in group["rules"] if rule.get("alert") == "HostStoppedReporting"]
    assert f"[{silent}]))" in rule["expr"]
    assert silent == exprs.REPORTING_WINDOW


def test_thresholds_come_from_the_rules_file():
    from rules import build
    assert RULES_THRESHOLDS == build.THRESHOLDS


@pytest.mark.parametrize("uid, title", [("fleet-overview", "Hosts"), ("fleet-overview", "Firing alerts")])
def test_host_cells_link_to_host_detail(uid, title):
    links = [link for o in _panel(uid, title)["fieldConfig"]["overrides"]
             for p in o["properties"] if p["id"] == "links" for link in p["value"]]
    assert any(link["url"].startswith("/d/host-detail/") and "var-host=${__value.raw}" in link["url"]
               for link in links)


# Series the agent does not declare that panels may read: the gateways' and the backends' own, and Prometheus'
# synthetic ALERTS. (The textfile source documents no series of its own: none of its files' series may be read.)
FOREIGN_PREFIXES = ("vmagent_", "otelcol_", "prometheus_", "vm_", "vmalert_", "alertmanager_")
FOREIGN_NAMES = {"ALERTS", "ALERTS_FOR_STATE"}


def _agent_contract() -> dict[str, set[str]]:
    """{Prometheus name: every label it may carry} for every metric the agent declares (top_processes and
    process_groups declare the same process.* metrics with their own attributes)."""
    contract = {}
    for _, spec in declared_metrics():
        contract.setdefault(prometheus_name(spec), {*RESOURCE_LABELS, *OPTIONAL_RESOURCE_LABELS}).update(
            prometheus_label(a) for a in (*spec.attributes, *spec.optional_attributes))
    return contract


def _recorded() -> set[str]:
    return {rule["record"] for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "record" in rule}


@pytest.mark.parametrize("uid", UIDS)
def test_panels_read_only_declared_metrics_and_labels(uid):
    contract, recorded = _agent_contract(), _recorded()
    undeclared = []
    for place, _, parsed in parsed_targets(_dashboard(uid)):
        for node, _ in promql.walk(parsed):
            if not isinstance(node, promql_parser.VectorSelector) or node.name is None:
                continue  # a selector by {__name__=~…} names no one metric
            labels = {m.name for m in node.matchers.matchers} - {"__name__"}
            if node.name in contract:
                undeclared += [f"{place}: {node.name} has no label {label}" for label in labels - contract[node.name]]
            elif node.name not in recorded | FOREIGN_NAMES and not node.name.startswith(FOREIGN_PREFIXES):
                undeclared.append(f"{place}: {node.name} is declared by no source and recorded by no rule")
    assert undeclared == []


def _parsed_target(uid: str, title: str) -> object:
    target, = _panel(uid, title)["targets"]
    return promql.parse(expand(target["expr"]))


# Labels some alerts carry that instance implies: it is the agent's service.instance.id or the gateway's scrape target.
IMPLIED_BY_INSTANCE = {"job", "host_id", "k8s_cluster_name"}


def test_firing_alerts_table_has_a_row_per_alert_and_shows_its_object():
    """Two alerts of one name on one host (HostTextfileStale for two files) differ only in the labels naming their
    object: the table's query keeps them, as labels or joined into one, or it merges the two into one row with the
    newer start time."""
    kept, joined = set(), {}
    for node, _ in promql.walk(_parsed_target("fleet-overview", "Firing alerts")):
        if isinstance(node, promql_parser.AggregateExpr):
            assert node.modifier.type == promql_parser.AggModifierType.By, "name the labels kept: they are columns"
            kept = set(node.modifier.labels)
        elif isinstance(node, promql_parser.Call) and node.func.name == "label_join":
            joined[node.args[1].val] = {arg.val for arg in node.args[3:]}
    told_apart = kept | {label for name in kept & joined.keys() for label in joined[name]}
    assert alert_labels() - IMPLIED_BY_INSTANCE - told_apart == set()
    assert {"alertname", "host_name", "instance"} <= kept
    organize = next(t["options"] for t in _panel("fleet-overview", "Firing alerts")["transformations"]
                    if t["id"] == "organize")
    assert kept <= organize["indexByName"].keys() & organize["renameByName"].keys(), "every label kept is a column"


def _matches(matcher, value: str) -> bool:
    op = promql_parser.MatchOp
    if matcher.op in (op.Re, op.NotRe):
        return (re.fullmatch(matcher.value, value) is not None) == (matcher.op == op.Re)
    return (value == matcher.value) == (matcher.op == op.Equal)


def _name_matches(selector: promql_parser.VectorSelector, name: str) -> bool:
    return selector.name in (None, name) and all(
        _matches(m, name) for m in selector.matchers.matchers if m.name == "__name__")


def test_series_per_host_counts_every_series_an_agent_sends_over_a_window():
    """Every declared metric and the textfile source's (named as in the files), none of the series rules derive
    from them with the same labels; over a window (Prometheus' lookback keeps a stopped series for 5 minutes,
    VictoriaMetrics' does not), and the one the other panels use."""
    (selector, parents), = [(node, parents) for node, parents in promql.walk(
        _parsed_target("pipeline-health", "Series per host")) if isinstance(node, promql_parser.VectorSelector)]
    sent = {*_agent_contract(), "backup_runs_total"}  # a textfile's metric
    assert {name for name in sent if not _name_matches(selector, name)} == set()
    derived = _recorded() | FOREIGN_NAMES
    assert {name for name in derived if _name_matches(selector, name)} == set()
    assert isinstance(parents[-1], promql_parser.MatrixSelector) and parents[-1].range == RATE_INTERVAL


@pytest.mark.parametrize("uid, title, column, unit", [
    # the MTU is a count of bytes nobody reads in KiB: 1500, not "1.46 KiB"
    ("host-detail", "Network interfaces", "MTU", "none"),
])
def test_column_unit(uid, title, column, unit):
    override = next(o for o in _panel(uid, title)["fieldConfig"]["overrides"] if o["matcher"]["options"] == column)
    assert next(p["value"] for p in override["properties"] if p["id"] == "unit") == unit


def test_vmagent_gateway_legends_name_the_backends_in_the_order_of_the_remote_write_flags(tmp_path):
    """vmagent labels each -remoteWrite.url's metrics url="<n>:secret-url" by its place in vmagent.flags: the
    panels' n → backend mapping must follow that order, also when it changes."""
    from dashgen.pipeline_health import VMAGENT_FLAGS, vmagent_backends
    from pipeline.services import flags_from_file

    urls = [flag for flag in flags_from_file(VMAGENT_FLAGS) if flag.startswith("-remoteWrite.url=")]
    expected = [re.fullmatch(r"-remoteWrite\.url=%\{(\w+)_WRITE_URL\}", url).group(1).lower() for url in urls]
    assert expected == vmagent_backends() and sorted(expected) == ["prometheus", "victoriametrics"]
    swapped = tmp_path / "vmagent.flags"
    text = VMAGENT_FLAGS.read_text()
    swapped.write_text(text.replace(urls[0], "FIRST").replace(urls[1], urls[0]).replace("FIRST", urls[1]))
    assert vmagent_backends(swapped) == expected[::-1]
    panel_targets = [t for title in ("Gateway queue", "Gateway send failures")
                     for t in _panel("pipeline-health", title)["targets"] if "vmagent_remotewrite" in t["expr"]]
    assert len(panel_targets) == 3
    for target in panel_targets:
        assert "{{backend}}" in target["legendFormat"]
        assert re.findall(r'"backend", "(\w+)", "url", "(\d+):\.\*"', target["expr"]) == [
            (backend, str(place)) for place, backend in enumerate(expected, start=1)]


@pytest.mark.parametrize("uid, title, words", [
    ("host-detail", "Swap usage", ["Empty", "no swap"]),
    ("workloads", "Units by state", ["systemd source", "enabled", "D-Bus system bus"]),
])
def test_a_panel_that_may_stay_empty_says_when(uid, title, words):
    description = _panel(uid, title)["description"]
    assert all(word in description for word in words), description


def test_the_docs_list_every_source_of_the_workloads_dashboard():
    row = next(line for line in (REPO / "docs" / "dashboards.md").read_text().splitlines()
               if line.startswith("| Workloads |"))
    assert all(f"`{source}`" in row for source in ("process_groups", "cgroup", "systemd", "textfile")), row
