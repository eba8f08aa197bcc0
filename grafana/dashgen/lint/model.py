"""What the lint rules read: dashboards' panels, variables and targets, and their PromQL expanded for parsing."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from .. import promql

DATASOURCE_REFS = {"$datasource", "${datasource}"}
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


def variables(dashboard: dict) -> list[dict]:
    return dashboard.get("templating", {}).get("list", [])


def variable(dashboard: dict, name: str) -> dict | None:
    return next((v for v in variables(dashboard) if v.get("name") == name), None)


def variable_query(variable: dict) -> str:
    query = variable.get("query", "")
    return query.get("query", "") if isinstance(query, dict) else query


def expand(expr: str) -> str:
    """Time variables become magic durations, the others (label values) a placeholder naming them."""
    return promql.substitute(expr, MAGIC_VALUES, default=PLACEHOLDER)


def targets(dashboard: dict) -> Iterator[tuple[dict, dict]]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def where(panel: dict, target: dict | None = None) -> str:
    place = f"panel {panel.get('id')} '{panel.get('title', '')}'"
    return f"{place} target {target.get('refId')}" if target else place


def parsed_targets(d: dict) -> Iterator[tuple[str, str, object]]:
    """(where, expression as written, parsed expression) of every target that parses."""
    for panel, target in targets(d):
        expr = target.get("expr", "")
        try:
            yield where(panel, target), expr, promql.parse(expand(expr))
        except ValueError:
            continue  # reported by target-promql-rule
