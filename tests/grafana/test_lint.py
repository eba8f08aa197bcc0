"""The dashboard linter: the committed dashboards pass, and each rule catches the mistake it is for."""
from __future__ import annotations

import copy
import json

import pytest

from dashgen import DASHBOARDS_DIR, lint

DASHBOARD_FILES = sorted(DASHBOARDS_DIR.glob("*.json"))


def _load(name: str) -> dict:
    return json.loads((DASHBOARDS_DIR / name).read_text())


def _first(dashboard: dict, kind: str) -> dict:
    return next(p for p in lint.panels(dashboard) if p["type"] == kind)


def _rules(dashboard: dict) -> set[str]:
    return {problem.rule for problem in lint.lint(dashboard)}


def test_four_dashboards_are_committed():
    assert [p.name for p in DASHBOARD_FILES] == ["fleet-overview.json", "host-detail.json", "pipeline-health.json",
                                                 "workloads.json"]


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_committed_dashboard_is_clean(path):
    assert lint.lint(json.loads(path.read_text())) == []


def test_cli_reports_a_uid_shared_by_two_files(tmp_path, capsys):
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text((DASHBOARDS_DIR / "host-detail.json").read_text())
    assert lint.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    assert "uid 'host-detail' also used by a.json" in capsys.readouterr().out


def test_cli_passes_the_committed_dashboards(capsys):
    assert lint.main([str(p) for p in DASHBOARD_FILES]) == 0
    assert "no problems" in capsys.readouterr().out


def _set_expr(expr: str):
    def mutate(d):
        _first(d, "timeseries")["targets"][0]["expr"] = expr
    return mutate


def _set_panel(key: str, value):
    def mutate(d):
        _first(d, "timeseries")[key] = value
    return mutate


def _set_unit(unit):
    def mutate(d):
        _first(d, "timeseries")["fieldConfig"]["defaults"]["unit"] = unit
    return mutate


def _variable(name: str, key: str, value):
    def mutate(d):
        variable = next(v for v in d["templating"]["list"] if v["name"] == name)
        if value is None:
            d["templating"]["list"].remove(variable)
        else:
            variable[key] = value
    return mutate


def _duplicate_panel_id(d):
    panels = list(lint.panels(d))
    panels[2]["id"] = panels[1]["id"]


def _duplicate_ref_id(d):
    targets = next(p for p in lint.panels(d) if len(p.get("targets", [])) > 1)["targets"]
    targets[1]["refId"] = targets[0]["refId"]


def _hardcode_target_datasource(d):
    _first(d, "timeseries")["targets"][0]["datasource"] = {"type": "prometheus", "uid": "prometheus"}


def _override_unit(d):
    _first(d, "timeseries")["fieldConfig"]["overrides"].append(
        {"matcher": {"id": "byName", "options": "x"}, "properties": [{"id": "unit", "value": "furlongs"}]})


def _drop_targets(d):
    _first(d, "stat")["targets"] = []


def _unused_variable(d):
    d["templating"]["list"].append({"name": "zone", "type": "query", "refresh": 2,
                                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                                    "query": {"query": "label_values(system_uptime_seconds, zone)"}})


def _bad_uid(d):
    d["uid"] = "host detail with spaces"


GOOD_SELECTOR = 'job=~"$job", host_name="$host"'
BROKEN = {
    "template-datasource-rule": _variable("datasource", None, None),
    "template-job-rule": _variable("job", "multi", False),
    "template-host-rule": _variable("host", None, None),
    "template-label-promql-rule": _variable("host", "query",
                                            {"query": "label_values(system_uptime_seconds{, host_name)"}),
    "template-on-time-change-reload": _variable("host", "refresh", 1),
    "template-datasource-use-rule": _variable("host", "datasource", {"type": "prometheus", "uid": "victoriametrics"}),
    "template-unused-rule": _unused_variable,
    "uneditable-dashboard-rule": lambda d: d.update(editable=True),
    "uniqueness-rule": _duplicate_panel_id,
    "no-hardcoded-datasource-rule": _hardcode_target_datasource,
    "panel-datasource-rule": _set_panel("datasource", {"type": "prometheus", "uid": "prometheus"}),
    "panel-title-description-rule": _set_panel("description", ""),
    "panel-units-rule": _set_unit("percentage"),
    "panel-no-targets-rule": _drop_targets,
    "target-promql-rule": _set_expr(f"sum(rate(system_cpu_time_seconds_total{{{GOOD_SELECTOR}}}[$__rate_interval])"),
    "target-rate-interval-rule": _set_expr(f"sum(rate(system_cpu_time_seconds_total{{{GOOD_SELECTOR}}}[5m]))"),
    "target-counter-agg-rule": _set_expr(f"sum(system_cpu_time_seconds_total{{{GOOD_SELECTOR}}})"),
    "target-job-rule": _set_expr('sum(system_uptime_seconds{host_name="$host"})'),
    "target-host-rule": _set_expr('sum(system_uptime_seconds{job=~"$job"})'),
}
MORE_BREAKAGE = [
    ("uniqueness-rule", _duplicate_ref_id),
    ("uniqueness-rule", _bad_uid),
    ("panel-units-rule", _override_unit),
    ("panel-units-rule", _set_unit(None)),
    ("panel-title-description-rule", _set_panel("title", "")),
    ("target-host-rule", _set_expr('sum(system_uptime_seconds{job=~"$job", host_name="web-1"})')),
    ("target-rate-interval-rule",
     _set_expr(f"sum(irate(system_cpu_time_seconds_total{{{GOOD_SELECTOR}}}[$__interval]))")),
    ("template-datasource-rule", _variable("datasource", "query", "loki")),
]


def test_every_rule_has_a_breaking_case():
    assert {rule.__name__.replace("_", "-") for rule in lint.RULES} == set(BROKEN)


@pytest.mark.parametrize("rule, mutate", list(BROKEN.items()) + MORE_BREAKAGE,
                         ids=[*BROKEN, *(f"{r}-{i}" for i, (r, _) in enumerate(MORE_BREAKAGE))])
def test_rule_reports_broken_dashboard(rule, mutate):
    dashboard = _load("host-detail.json")
    assert rule not in _rules(dashboard)
    broken = copy.deepcopy(dashboard)
    mutate(broken)
    assert rule in _rules(broken)


def test_rate_interval_allowed_outside_rate():
    """Like dashboard-linter: fixed windows are fine in *_over_time, deriv, and so on."""
    dashboard = _load("host-detail.json")
    _set_expr(f"max(max_over_time(system_uptime_seconds{{{GOOD_SELECTOR}}}[1h]))")(dashboard)
    assert "target-rate-interval-rule" not in _rules(dashboard)


def test_gateway_and_backend_metrics_need_no_host_matcher():
    dashboard = _load("pipeline-health.json")
    _set_expr("sum(rate(vmagent_remotewrite_retries_count_total[$__rate_interval]))")(dashboard)
    assert not {"target-job-rule", "target-host-rule"} & _rules(dashboard)


TEXTFILE_ERRORS = 'hostagent_textfile_errors_total{job=~"$job", host_name="$host"}'
OTHER_ERRORS = 'hostagent_textfile_errors_total{job=~"$job", host_name="$host", file_name="a.prom"}'


def _set_skipped(expr: str):
    def mutate(d):
        table = next(p for p in lint.panels(d) if p["title"] == "Textfiles")
        next(t for t in table["targets"] if t["refId"] == "B")["expr"] = expr
    return mutate


def _count_in_range(last: str, before: str, reset: str, fallback: str) -> str:
    """exprs.count_in_range's expression, each of its four selectors given."""
    grown = f"last_over_time({last}[$__range]) - last_over_time({before}[$__range] offset $__range) >= 0"
    kept = f"{grown} unless resets({reset}[$__range]) > 0"
    return f"max by (file_name) (({kept}) or last_over_time({fallback}[$__range]))"


@pytest.mark.parametrize("expr", [
    f"max by (file_name) (last_over_time({TEXTFILE_ERRORS}[1y]))",
    f"max by (file_name) (resets({TEXTFILE_ERRORS}[$__range]))",
    f"max by (file_name) (last_over_time({TEXTFILE_ERRORS}[$__range]) - resets({TEXTFILE_ERRORS}[$__range]))",
    _count_in_range(TEXTFILE_ERRORS, OTHER_ERRORS, TEXTFILE_ERRORS, TEXTFILE_ERRORS),
    _count_in_range(TEXTFILE_ERRORS, TEXTFILE_ERRORS, TEXTFILE_ERRORS, OTHER_ERRORS),
    _count_in_range(TEXTFILE_ERRORS, TEXTFILE_ERRORS, TEXTFILE_ERRORS, TEXTFILE_ERRORS).replace(
        "offset $__range", "offset 1h"),
    _count_in_range(TEXTFILE_ERRORS, TEXTFILE_ERRORS, TEXTFILE_ERRORS, TEXTFILE_ERRORS).replace(" unless ", " or "),
    _count_in_range(TEXTFILE_ERRORS, TEXTFILE_ERRORS, TEXTFILE_ERRORS, TEXTFILE_ERRORS).replace(" - ", " + "),
], ids=["last-over-time", "resets", "last-minus-resets", "before-of-another-series", "fallback-of-another-series",
        "before-not-the-range-earlier", "or-for-unless", "plus-for-minus"])
def test_counter_in_range_functions_only_in_the_count_in_range_shape(expr):
    dashboard = _load("workloads.json")
    _set_skipped(expr)(dashboard)
    assert _rules(dashboard) == {"target-counter-agg-rule"}


def test_count_in_range_shape_passes_the_counter_rule():
    dashboard = _load("workloads.json")
    _set_skipped(_count_in_range(*[TEXTFILE_ERRORS] * 4))(dashboard)
    assert lint.lint(dashboard) == []
