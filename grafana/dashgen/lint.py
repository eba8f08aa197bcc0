"""A dashboard linter with the rules of Grafana's dashboard-linter, fitted to this pipeline's labels.

    python -m dashgen.lint grafana/dashboards/*.json      (with grafana/ on PYTHONPATH)

Rules (dashboard-linter's names where it has one):
  template-datasource-rule       a `datasource` variable of type datasource, query prometheus
  template-job-rule              a multi-value `job` query variable
  template-host-rule             a `host` query variable (this pipeline identifies hosts by host_name,
                                 where dashboard-linter's template-instance-rule wants `instance`)
  template-label-promql-rule     query variables are label_values/label_names/query_result of valid PromQL
  template-on-time-change-reload query variables refresh on time-range change
  template-datasource-use-rule   query variables use the templated datasource
  template-unused-rule           every query variable is used by a target (or by another variable's query,
                                 which dashboard-linter does not count: cluster and node narrow the host list)
  uneditable-dashboard-rule      dashboards are not editable (they are provisioned from files)
  panel-datasource-rule          panels and their targets use the templated datasource
  panel-title-description-rule   every panel has a title and a description
  panel-units-rule               every panel has a valid unit (overrides' units too)
  panel-no-targets-rule          every non-row panel has targets
  target-promql-rule             every target is valid PromQL once variables are expanded
  target-rate-interval-rule      rate/irate use $__rate_interval
  target-counter-agg-rule        counters (_total) only inside rate, irate or increase
  target-job-rule                agent metrics are matched on job=~"$job"
  target-host-rule               agent metrics are matched on host_name and $host
  uniqueness-rule                unique panel ids, refIds, variable names; valid uid
  no-hardcoded-datasource-rule   no data source uid that is not a variable reference
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import promql_parser

from . import promql
from .units import VALID_UNITS

DATASOURCE_REFS = {"$datasource", "${datasource}"}
# Agent metrics carry job and host_name; gateway, backend and ALERTS series do not.
AGENT_METRIC = re.compile(r"^\^?\(?(system|process|hostagent|hw)_")
RATE_FUNCTIONS = {"rate", "irate"}
COUNTER_FUNCTIONS = {"rate", "irate", "increase"}
UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
LABEL_QUERY = re.compile(r"^\s*(label_values|label_names|query_result|metrics)\((.*)\)\s*$", re.S)
# Time variables expand to distinct durations so that each can be told apart after parsing.
MAGIC = {"__rate_interval": 7001, "__interval": 7002, "__range": 7003}
MAGIC_VALUES = {name: f"{seconds}s" for name, seconds in MAGIC.items()} | {
    "__range_s": "7003", "__range_ms": "7003000", "__interval_ms": "7002000"}
PLACEHOLDER = "var_{name}"
RATE_INTERVAL = timedelta(seconds=MAGIC["__rate_interval"])


@dataclass(frozen=True)
class Problem:
    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.where}: {self.message}"


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _variables(dashboard: dict) -> list[dict]:
    return dashboard.get("templating", {}).get("list", [])


def _variable(dashboard: dict, name: str) -> dict | None:
    return next((v for v in _variables(dashboard) if v.get("name") == name), None)


def _variable_query(variable: dict) -> str:
    query = variable.get("query", "")
    return query.get("query", "") if isinstance(query, dict) else query


def _expand(expr: str) -> str:
    """Time variables become magic durations, the others (label values) a placeholder naming them."""
    return promql.substitute(expr, MAGIC_VALUES, default=PLACEHOLDER)


def _targets(dashboard: dict) -> Iterator[tuple[dict, dict]]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def _where(panel: dict, target: dict | None = None) -> str:
    where = f"panel {panel.get('id')} '{panel.get('title', '')}'"
    return f"{where} target {target.get('refId')}" if target else where


# Dashboard rules -------------------------------------------------------------------------------

def template_datasource_rule(d: dict) -> Iterator[Problem]:
    found = [v for v in _variables(d) if v.get("type") == "datasource"]
    if not found:
        yield Problem("template-datasource-rule", "templating", "no variable of type datasource")
    for v in found:
        if v.get("name") != "datasource" or v.get("query") != "prometheus":
            yield Problem("template-datasource-rule", f"variable {v.get('name')}",
                          "the datasource variable must be named 'datasource' with query 'prometheus'")
        if v.get("label") != "Data source":
            yield Problem("template-datasource-rule", f"variable {v.get('name')}", "label it 'Data source'")


def _required_variable(rule: str, name: str, multi: bool) -> Callable[[dict], Iterator[Problem]]:
    def check(d: dict) -> Iterator[Problem]:
        v = _variable(d, name)
        if v is None or v.get("type") != "query":
            yield Problem(rule, "templating", f"no query variable '{name}'")
        elif multi and not (v.get("multi") and v.get("includeAll")):
            yield Problem(rule, f"variable {name}", "must be multi-value with an All option")
    check.__name__ = rule
    return check


def _label_query_problem(query: str) -> str | None:
    match = LABEL_QUERY.match(query)
    if not match:
        return f"not a label_values/label_names/query_result/metrics query: {query!r}"
    function, argument = match.groups()
    if function == "metrics":
        return None
    expr = argument.rsplit(",", 1)[0] if function == "label_values" and "," in argument else argument
    if not expr.strip():
        return None
    try:
        promql.parse(_expand(expr))
    except ValueError as error:
        return f"invalid PromQL in {query!r}: {error}"
    return None


def template_label_promql_rule(d: dict) -> Iterator[Problem]:
    for v in _variables(d):
        if v.get("type") == "query" and (problem := _label_query_problem(_variable_query(v))):
            yield Problem("template-label-promql-rule", f"variable {v['name']}", problem)


def template_on_time_change_reload(d: dict) -> Iterator[Problem]:
    for v in _variables(d):
        if v.get("type") == "query" and v.get("refresh") != 2:
            yield Problem("template-on-time-change-reload", f"variable {v['name']}",
                          f"refresh must be 2 (on time range change), is {v.get('refresh')}")


def template_datasource_use_rule(d: dict) -> Iterator[Problem]:
    for v in _variables(d):
        if v.get("type") == "query" and (v.get("datasource") or {}).get("uid") not in DATASOURCE_REFS:
            yield Problem("template-datasource-use-rule", f"variable {v['name']}",
                          "must query the templated datasource")


def template_unused_rule(d: dict) -> Iterator[Problem]:
    used = {name for _, target in _targets(d) for name in promql.variables_in(target.get("expr", ""))}
    used |= {name for v in _variables(d) for name in promql.variables_in(_variable_query(v)) if name != v["name"]}
    for v in _variables(d):
        if v.get("type") == "query" and v["name"] not in used:
            yield Problem("template-unused-rule", f"variable {v['name']}", "not used by any query")


def uneditable_dashboard_rule(d: dict) -> Iterator[Problem]:
    if d.get("editable", True):
        yield Problem("uneditable-dashboard-rule", "dashboard", "is editable; set editable: false")


def uniqueness_rule(d: dict) -> Iterator[Problem]:
    if not UID.match(str(d.get("uid", ""))):
        yield Problem("uniqueness-rule", "dashboard", f"uid {d.get('uid')!r} missing or not a valid Grafana uid")
    for kind, values in (("panel id", [p.get("id") for p in panels(d)]),
                         ("variable name", [v.get("name") for v in _variables(d)])):
        for value, count in Counter(values).items():
            if value is None or count > 1:
                yield Problem("uniqueness-rule", "dashboard", f"{kind} {value!r} used {count} times")
    for panel in panels(d):
        for ref, count in Counter(t.get("refId") for t in panel.get("targets", [])).items():
            if ref is None or count > 1:
                yield Problem("uniqueness-rule", _where(panel), f"refId {ref!r} used {count} times")


def no_hardcoded_datasource_rule(d: dict) -> Iterator[Problem]:
    def visit(node, path: str) -> Iterator[Problem]:
        if isinstance(node, dict):
            source = node.get("datasource")
            uid = source.get("uid") if isinstance(source, dict) else source
            if uid is not None and uid not in DATASOURCE_REFS:
                yield Problem("no-hardcoded-datasource-rule", path or "dashboard", f"datasource {uid!r}")
            for key, value in node.items():
                yield from visit(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from visit(value, f"{path}[{i}]")
    yield from visit(d, "")


# Panel rules -----------------------------------------------------------------------------------

def panel_datasource_rule(d: dict) -> Iterator[Problem]:
    names = [v["name"] for v in _variables(d) if v.get("type") == "datasource"]
    refs = {f"${n}" for n in names} | {f"${{{n}}}" for n in names}
    for panel in panels(d):
        if panel.get("type") == "row":
            continue
        for owner, where in [(panel, _where(panel))] + [(t, _where(panel, t)) for t in panel.get("targets", [])]:
            if (owner.get("datasource") or {}).get("uid") not in refs:
                yield Problem("panel-datasource-rule", where, "does not use the templated datasource")


def panel_title_description_rule(d: dict) -> Iterator[Problem]:
    for panel in panels(d):
        if panel.get("type") != "row" and not (panel.get("title") and panel.get("description")):
            yield Problem("panel-title-description-rule", _where(panel), "missing title or description")


def panel_units_rule(d: dict) -> Iterator[Problem]:
    for panel in panels(d):
        if panel.get("type") == "row":
            continue
        config = panel.get("fieldConfig", {})
        units = [config.get("defaults", {}).get("unit")] + [
            p["value"] for o in config.get("overrides", []) for p in o.get("properties", []) if p.get("id") == "unit"]
        for unit in units:
            if unit not in VALID_UNITS:
                yield Problem("panel-units-rule", _where(panel), f"no or invalid unit {unit!r}")


def panel_no_targets_rule(d: dict) -> Iterator[Problem]:
    for panel in panels(d):
        if panel.get("type") != "row" and not panel.get("targets"):
            yield Problem("panel-no-targets-rule", _where(panel), "has no targets")


# Target rules ----------------------------------------------------------------------------------

def _parsed_targets(d: dict) -> Iterator[tuple[str, str, object]]:
    """(where, expression as written, parsed expression) of every target that parses."""
    for panel, target in _targets(d):
        expr = target.get("expr", "")
        try:
            yield _where(panel, target), expr, promql.parse(_expand(expr))
        except ValueError:
            continue  # reported by target-promql-rule


def target_promql_rule(d: dict) -> Iterator[Problem]:
    for panel, target in _targets(d):
        expr = target.get("expr", "")
        try:
            promql.parse(_expand(expr))
        except ValueError as error:
            yield Problem("target-promql-rule", _where(panel, target), f"invalid PromQL {expr!r}: {error}")


def target_rate_interval_rule(d: dict) -> Iterator[Problem]:
    for where, _, expr in _parsed_targets(d):
        for node, parents in promql.walk(expr):
            if (isinstance(node, promql_parser.MatrixSelector) and parents
                    and isinstance(parents[-1], promql_parser.Call)
                    and parents[-1].func.name in RATE_FUNCTIONS and node.range != RATE_INTERVAL):
                yield Problem("target-rate-interval-rule", where,
                              f"{parents[-1].func.name}() over {node.range}, not $__rate_interval")


def target_counter_agg_rule(d: dict) -> Iterator[Problem]:
    for where, _, expr in _parsed_targets(d):
        for node, parents in promql.walk(expr):
            if not (isinstance(node, promql_parser.VectorSelector) and node.name
                    and node.name.endswith("_total")):
                continue
            ranged = len(parents) >= 2 and isinstance(parents[-1], promql_parser.MatrixSelector)
            call = parents[-2] if ranged else None
            if not (isinstance(call, promql_parser.Call) and call.func.name in COUNTER_FUNCTIONS):
                yield Problem("target-counter-agg-rule", where,
                              f"counter {node.name} is not inside rate, irate or increase")


def _required_matcher(rule: str, label: str, variable: str) -> Callable[[dict], Iterator[Problem]]:
    placeholder = PLACEHOLDER.format(name=variable)

    def check(d: dict) -> Iterator[Problem]:
        for where, _, expr in _parsed_targets(d):
            for node, _ in promql.walk(expr):
                if (isinstance(node, promql_parser.VectorSelector)
                        and AGENT_METRIC.match(promql.metric_name(node))
                        and placeholder not in promql.matchers(node).get(label, "")):
                    yield Problem(rule, where, f"{promql.metric_name(node)} lacks a {label} matcher on ${variable}")
    check.__name__ = rule
    return check


RULES: list[Callable[[dict], Iterator[Problem]]] = [
    template_datasource_rule,
    _required_variable("template-job-rule", "job", multi=True),
    _required_variable("template-host-rule", "host", multi=False),
    template_label_promql_rule,
    template_on_time_change_reload,
    template_datasource_use_rule,
    template_unused_rule,
    uneditable_dashboard_rule,
    uniqueness_rule,
    no_hardcoded_datasource_rule,
    panel_datasource_rule,
    panel_title_description_rule,
    panel_units_rule,
    panel_no_targets_rule,
    target_promql_rule,
    target_rate_interval_rule,
    target_counter_agg_rule,
    _required_matcher("target-job-rule", "job", "job"),
    _required_matcher("target-host-rule", "host_name", "host"),
]


def lint(dashboard: dict) -> list[Problem]:
    return [problem for rule in RULES for problem in rule(dashboard)]


def lint_files(paths: list[Path]) -> list[str]:
    """Problems of every file, and uids shared between files."""
    reports, owners = [], {}
    for path in paths:
        dashboard = json.loads(path.read_text())
        reports += [f"{path.name}: {p}" for p in lint(dashboard)]
        uid = dashboard.get("uid")
        if uid in owners:
            reports.append(f"{path.name}: [uniqueness-rule] dashboard: uid {uid!r} also used by {owners[uid]}")
        owners[uid] = path.name
    return reports


def main(argv: list[str]) -> int:
    reports = lint_files([Path(a) for a in argv])
    print("\n".join(reports) or f"{len(argv)} dashboards: no problems")
    return 1 if reports else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
