"""Panel rules: templated datasource, title and description, units, targets."""
from __future__ import annotations

from collections.abc import Iterator

from ..units import VALID_UNITS
from .model import Problem, panels, variables, where


def panel_datasource_rule(d: dict) -> Iterator[Problem]:
    names = [v["name"] for v in variables(d) if v.get("type") == "datasource"]
    refs = {f"${n}" for n in names} | {f"${{{n}}}" for n in names}
    for panel in panels(d):
        if panel.get("type") == "row":
            continue
        for owner, place in [(panel, where(panel))] + [(t, where(panel, t)) for t in panel.get("targets", [])]:
            if (owner.get("datasource") or {}).get("uid") not in refs:
                yield Problem("panel-datasource-rule", place, "does not use the templated datasource")


def panel_title_description_rule(d: dict) -> Iterator[Problem]:
    for panel in panels(d):
        if panel.get("type") != "row" and not (panel.get("title") and panel.get("description")):
            yield Problem("panel-title-description-rule", where(panel), "missing title or description")


def panel_units_rule(d: dict) -> Iterator[Problem]:
    for panel in panels(d):
        if panel.get("type") == "row":
            continue
        config = panel.get("fieldConfig", {})
        units = [config.get("defaults", {}).get("unit")] + [
            p["value"] for o in config.get("overrides", []) for p in o.get("properties", []) if p.get("id") == "unit"]
        for unit in units:
            if unit not in VALID_UNITS:
                yield Problem("panel-units-rule", where(panel), f"no or invalid unit {unit!r}")


def panel_no_targets_rule(d: dict) -> Iterator[Problem]:
    for panel in panels(d):
        if panel.get("type") != "row" and not panel.get("targets"):
            yield Problem("panel-no-targets-rule", where(panel), "has no targets")
