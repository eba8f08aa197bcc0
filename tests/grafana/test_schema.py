"""The dashboards fit Grafana's own schema (@grafana/schema's TypeScript types, checked by tsc)."""
from __future__ import annotations

import copy
import json

import pytest

from dashgen import DASHBOARDS_DIR, lint, schema
from pipeline.testing import unavailable

DASHBOARD_FILES = sorted(DASHBOARDS_DIR.glob("*.json"))


@pytest.fixture(scope="module")
def schema_installed():
    if not schema.TSC.is_file():
        unavailable("Grafana's schema is not installed: run `make grafana-schema`")


def test_committed_dashboards_fit(schema_installed):
    assert schema.check(DASHBOARD_FILES) == []


def _broken(mutate) -> dict:
    dashboard = copy.deepcopy(json.loads((DASHBOARDS_DIR / "host-detail.json").read_text()))
    mutate(dashboard, next(p for p in lint.panels(dashboard) if p["type"] == "timeseries"))
    return dashboard


BROKEN = {
    "misspelt-key": lambda d, p: d.update(refersh="30s"),
    "wrong-type": lambda d, p: p["gridPos"].update(w="12"),
    "unknown-enum-value": lambda d, p: p["fieldConfig"]["defaults"]["custom"].update(drawStyle="lines"),
    "unknown-panel-option": lambda d, p: p["options"]["legend"].update(displayMod="list"),
    "bad-threshold-mode": lambda d, p: p["fieldConfig"]["defaults"]["thresholds"].update(mode="absolut"),
}


def test_each_broken_dashboard_is_reported(schema_installed, tmp_path):
    paths = []
    for name, mutate in BROKEN.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(_broken(mutate)))
        paths.append(path)
    errors = schema.check(paths)
    reported = {name for name in BROKEN if any(line.startswith(f"{name}.ts(") for line in errors)}
    assert reported == set(BROKEN), errors
