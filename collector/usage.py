"""Which recording rules, alerts and dashboard panels read each Prometheus series: found by scanning the rule
files' and the dashboards' queries for series names (docs/metrics.md: one hop from a metric to its users)."""

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

SERIES_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True, order=True)
class Use:
    kind: str  # "alert", "recording rule" or "panel"
    name: str  # the alert, the recorded series, or "dashboard › panel"
    via: str = ""  # the recorded series through which it reads the metric ("": the metric itself)

    def __str__(self) -> str:
        name = f"`{self.name}`" if self.kind != "panel" else self.name
        return f"{self.kind} {name}" + (f" (via `{self.via}`)" if self.via else "")


def series_names(expr: str) -> set[str]:
    return set(SERIES_NAME.findall(expr))


def rule_readers(rules_dir: Path) -> Iterator[tuple[Use, set[str]]]:
    for path in sorted(rules_dir.glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                use = Use("recording rule", rule["record"]) if "record" in rule else Use("alert", rule["alert"])
                yield use, series_names(rule["expr"])


def panel_readers(dashboards_dir: Path) -> Iterator[tuple[Use, set[str]]]:
    for path in sorted(dashboards_dir.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for row in dashboard.get("panels", []):
            for panel in (row, *row.get("panels", [])):
                exprs = [target.get("expr", "") for target in panel.get("targets", [])]
                if exprs:
                    yield Use("panel", f"{dashboard['title']} › {panel['title']}"), set().union(
                        *map(series_names, exprs))


def uses(rules_dir: Path, dashboards_dir: Path) -> dict[str, list[Use]]:
    """{series name: what reads it, directly or through recorded series}, sorted."""
    direct: dict[str, set[Use]] = defaultdict(set)
    for use, names in (*rule_readers(rules_dir), *panel_readers(dashboards_dir)):
        for name in names:
            direct[name].add(use)

    def through(recorded: str, seen: frozenset[str]) -> set[Use]:
        found = set()
        for use in direct.get(recorded, ()):
            found.add(Use(use.kind, use.name, recorded))
            if use.kind == "recording rule" and use.name not in seen:
                found |= {Use(u.kind, u.name, recorded) for u in through(use.name, seen | {use.name})}
        return found

    result = {}
    for name, readers in direct.items():
        found = set(readers)
        for use in readers:
            if use.kind == "recording rule":
                found |= through(use.name, frozenset({name, use.name}))
        result[name] = sorted(found, key=lambda u: (u.via, u.kind, u.name))
    return result
