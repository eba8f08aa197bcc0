"""A panel's query evaluated on crafted samples by both engines: Prometheus' (promtool test rules) and
VictoriaMetrics' (vmalert-tool unittest, an embedded VictoriaMetrics), the tools the rules' unit tests run on.

Each expectation is a promtool expression test: the query, with the dashboard's variables substituted, at one
instant, must return exactly the expected series and values.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from dashgen import DASHBOARDS_DIR, lint, promql
from pipeline.testing import require_binary
from rules import check

JOB, HOST = "hostagent", "web-1"
AGENT = f'job="{JOB}", host_name="{HOST}"'
# What Grafana puts in for the dashboards' defaults, the time range being the last hour.
VALUES = {"job": JOB, "host": HOST, "__range": "1h", "__rate_interval": "1m", "__interval": "10s"}
INTERVAL = "10s"  # the agents' export interval
# vmalert-tool wants a rule group; this one records nothing any panel reads.
_RULES = {"groups": [{"name": "crafted", "rules": [{"record": "crafted:unused", "expr": "vector(1)"}]}]}


@dataclass(frozen=True)
class Expect:
    at: str  # promtool's eval_time, from the first sample
    samples: dict[str, float]  # the result's labels ('{a="b"}') → value


def panel_expr(uid: str, title: str, ref_id: str = "A", **values: str) -> str:
    """The committed dashboard's query, its variables substituted as Grafana would (`values` beside VALUES: the
    fleet's host="(web-1|web-2)", as Grafana writes several hosts chosen for a regex matcher)."""
    dashboard = json.loads((DASHBOARDS_DIR / f"{uid}.json").read_text())
    panel = next(p for p in lint.panels(dashboard) if p["title"] == title and p["type"] != "row")
    target = next(t for t in panel["targets"] if t["refId"] == ref_id)
    expr = promql.substitute(target["expr"], VALUES | values)
    assert not promql.variables_in(expr), expr
    return expr


def _test_file(directory: Path, expr: str, series: dict[str, str], expects: list[Expect], key: str) -> Path:
    rules = directory / "crafted.rules.yml"
    rules.write_text(yaml.safe_dump(_RULES))
    document = {"rule_files": [str(rules)], "evaluation_interval": INTERVAL, "tests": [{
        "interval": INTERVAL,
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
        key: [{"expr": expr, "eval_time": e.at,
               "exp_samples": [{"labels": labels, "value": value} for labels, value in e.samples.items()]}
              for e in expects]}]}
    path = directory / f"{key}.test.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def failures(expr: str, series: dict[str, str], expects: list[Expect], tmp_path: Path) -> dict[str, str]:
    """Each engine's report where the query's results differ from `expects` (empty: both return them)."""
    promtool, vmalert_tool = require_binary("promtool"), require_binary("vmalert-tool")
    found = {}
    for engine in ("prometheus", "victoriametrics"):
        directory = tmp_path / engine
        directory.mkdir(parents=True)
        if engine == "prometheus":
            result = check.run([promtool, "test", "rules",
                                _test_file(directory, expr, series, expects, "promql_expr_test")], cwd=directory)
        else:
            with check.vmalert_tool_slot():
                result = check.run([vmalert_tool, "unittest", "--disableAlertgroupLabel", "--files",
                                    _test_file(directory, expr, series, expects, "metricsql_expr_test")],
                                   cwd=directory, env={**os.environ, "TMPDIR": str(directory)})
        if result.returncode != 0 or "SUCCESS" not in result.stdout:
            found[engine] = result.stdout + result.stderr
    return found


def assert_both(expr: str, series: dict[str, str], expects: list[Expect], tmp_path: Path) -> None:
    """Both engines return exactly `expects`; else the engines that did not, with what they returned."""
    if found := failures(expr, series, expects, tmp_path):
        raise AssertionError("\n".join(f"{engine}:\n{report}" for engine, report in found.items()))
