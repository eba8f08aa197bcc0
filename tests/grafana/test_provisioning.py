"""Provisioning files: two Prometheus-type datasources with fixed uids, a file provider, env defaults."""
from __future__ import annotations

import os
import string
from pathlib import Path

import yaml

from collector.config import ExporterConfig

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
PROVISIONING = GRAFANA / "provisioning"


def _env_defaults() -> dict[str, str]:
    lines = (line.strip() for line in (GRAFANA / "grafana.env").read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _expand(value):
    """Grafana expands $VAR / ${VAR} in every string value of a provisioning file."""
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, str):
        return string.Template(value).substitute(_env_defaults())  # KeyError: grafana.env lacks it
    return value


def _expanded(path: Path) -> dict:
    return _expand(yaml.safe_load(path.read_text()))


def test_datasources():
    sources = {s["uid"]: s for s in _expanded(PROVISIONING / "datasources" / "datasources.yaml")["datasources"]}
    assert set(sources) == {"prometheus", "victoriametrics"}
    assert sources["prometheus"]["url"] == "http://localhost:9090"
    assert sources["victoriametrics"]["url"] == "http://localhost:8428"
    assert [uid for uid, s in sources.items() if s.get("isDefault")] == ["prometheus"]
    for source in sources.values():
        assert source["type"] == "prometheus", "the dashboards' datasource variable lists type prometheus"
        assert source["access"] == "proxy"


def test_time_interval_is_the_agent_export_interval():
    agent_interval = float(ExporterConfig().interval)
    for source in yaml.safe_load((PROVISIONING / "datasources" / "datasources.yaml").read_text())["datasources"]:
        interval = source["jsonData"]["timeInterval"]
        assert interval.endswith("s") and float(interval[:-1]) == agent_interval


def test_urls_come_from_the_environment():
    for source in yaml.safe_load((PROVISIONING / "datasources" / "datasources.yaml").read_text())["datasources"]:
        assert source["url"].startswith("${") and source["url"].endswith("_URL}")


def test_dashboard_provider_loads_the_dashboards_directory():
    provider, = _expanded(PROVISIONING / "dashboards" / "dashboards.yaml")["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == _env_defaults()["GRAFANA_DASHBOARDS_DIR"]
    assert os.path.isabs(provider["options"]["path"])
