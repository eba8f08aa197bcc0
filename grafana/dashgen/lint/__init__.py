"""A dashboard linter with the rules of Grafana's dashboard-linter, fitted to this pipeline's labels.

    python -m dashgen.lint grafana/dashboards/*.json

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
  target-counter-agg-rule        counters (_total) only inside rate, irate, increase, last_over_time or resets
  target-job-rule                agent metrics are matched on job=~"$job"
  target-host-rule               agent metrics are matched on host_name and $host
  uniqueness-rule                unique panel ids, refIds, variable names; valid uid
  no-hardcoded-datasource-rule   no data source uid that is not a variable reference
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from . import dashboard, panel, target
from .model import Problem, panels

__all__ = ["RULES", "Problem", "lint", "lint_files", "main", "panels"]

RULES: list[Callable[[dict], Iterator[Problem]]] = [
    dashboard.template_datasource_rule,
    dashboard.required_variable("template-job-rule", "job", multi=True),
    dashboard.required_variable("template-host-rule", "host", multi=False),
    dashboard.template_label_promql_rule,
    dashboard.template_on_time_change_reload,
    dashboard.template_datasource_use_rule,
    dashboard.template_unused_rule,
    dashboard.uneditable_dashboard_rule,
    dashboard.uniqueness_rule,
    dashboard.no_hardcoded_datasource_rule,
    panel.panel_datasource_rule,
    panel.panel_title_description_rule,
    panel.panel_units_rule,
    panel.panel_no_targets_rule,
    target.target_promql_rule,
    target.target_rate_interval_rule,
    target.target_counter_agg_rule,
    target.required_matcher("target-job-rule", "job", "job"),
    target.required_matcher("target-host-rule", "host_name", "host"),
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
