"""Generates the dashboards in grafana/dashboards/ from Python (python -m dashgen, with grafana/ on the path)."""
from __future__ import annotations

import json
from pathlib import Path

from . import fleet_overview, host_detail, pipeline_health, workloads

DASHBOARDS_DIR = Path(__file__).resolve().parent.parent / "dashboards"
BUILDERS = {"fleet-overview": fleet_overview.build, "host-detail": host_detail.build,
            "pipeline-health": pipeline_health.build, "workloads": workloads.build}


def render(uid: str) -> str:
    return json.dumps(BUILDERS[uid](), indent=2, ensure_ascii=False) + "\n"


def write(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    written = []
    for uid in BUILDERS:
        path = directory / f"{uid}.json"
        path.write_text(render(uid))
        written.append(path)
    return written
