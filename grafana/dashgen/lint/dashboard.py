"""Dashboard-wide rules: template variables, editability, uniqueness, hard-coded datasources."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator

from .. import promql
from .model import DATASOURCE_REFS, Problem, expand, panels, targets, variable, variable_query, variables, where

UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
LABEL_QUERY = re.compile(r"^\s*(label_values|label_names|query_result|metrics)\((.*)\)\s*$", re.S)


def template_datasource_rule(d: dict) -> Iterator[Problem]:
    found = [v for v in variables(d) if v.get("type") == "datasource"]
    if not found:
        yield Problem("template-datasource-rule", "templating", "no variable of type datasource")
    for v in found:
        if v.get("name") != "datasource" or v.get("query") != "prometheus":
            yield Problem("template-datasource-rule", f"variable {v.get('name')}",
                          "the datasource variable must be named 'datasource' with query 'prometheus'")
        if v.get("label") != "Data source":
            yield Problem("template-datasource-rule", f"variable {v.get('name')}", "label it 'Data source'")


def required_variable(rule: str, name: str, multi: bool) -> Callable[[dict], Iterator[Problem]]:
    def check(d: dict) -> Iterator[Problem]:
        v = variable(d, name)
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
        promql.parse(expand(expr))
    except ValueError as error:
        return f"invalid PromQL in {query!r}: {error}"
    return None


def template_label_promql_rule(d: dict) -> Iterator[Problem]:
    for v in variables(d):
        if v.get("type") == "query" and (problem := _label_query_problem(variable_query(v))):
            yield Problem("template-label-promql-rule", f"variable {v['name']}", problem)


def template_on_time_change_reload(d: dict) -> Iterator[Problem]:
    for v in variables(d):
        if v.get("type") == "query" and v.get("refresh") != 2:
            yield Problem("template-on-time-change-reload", f"variable {v['name']}",
                          f"refresh must be 2 (on time range change), is {v.get('refresh')}")


def template_datasource_use_rule(d: dict) -> Iterator[Problem]:
    for v in variables(d):
        if v.get("type") == "query" and (v.get("datasource") or {}).get("uid") not in DATASOURCE_REFS:
            yield Problem("template-datasource-use-rule", f"variable {v['name']}",
                          "must query the templated datasource")


def template_unused_rule(d: dict) -> Iterator[Problem]:
    used = {name for _, target in targets(d) for name in promql.variables_in(target.get("expr", ""))}
    used |= {name for v in variables(d) for name in promql.variables_in(variable_query(v)) if name != v["name"]}
    for v in variables(d):
        if v.get("type") == "query" and v["name"] not in used:
            yield Problem("template-unused-rule", f"variable {v['name']}", "not used by any query")


def uneditable_dashboard_rule(d: dict) -> Iterator[Problem]:
    if d.get("editable", True):
        yield Problem("uneditable-dashboard-rule", "dashboard", "is editable; set editable: false")


def uniqueness_rule(d: dict) -> Iterator[Problem]:
    if not UID.match(str(d.get("uid", ""))):
        yield Problem("uniqueness-rule", "dashboard", f"uid {d.get('uid')!r} missing or not a valid Grafana uid")
    for kind, values in (("panel id", [p.get("id") for p in panels(d)]),
                         ("variable name", [v.get("name") for v in variables(d)])):
        for value, count in Counter(values).items():
            if value is None or count > 1:
                yield Problem("uniqueness-rule", "dashboard", f"{kind} {value!r} used {count} times")
    for panel in panels(d):
        for ref, count in Counter(t.get("refId") for t in panel.get("targets", [])).items():
            if ref is None or count > 1:
                yield Problem("uniqueness-rule", where(panel), f"refId {ref!r} used {count} times")


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
