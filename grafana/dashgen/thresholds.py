"""Alert thresholds drawn on the dashboards, read from the alerting rules' single source of truth."""
from __future__ import annotations

from pathlib import Path

import yaml

from .builder import Thresholds

RULES_THRESHOLDS = Path(__file__).resolve().parents[2] / "rules" / "thresholds.yml"


def alert_thresholds(alert: str, path: Path = RULES_THRESHOLDS) -> Thresholds:
    severities = yaml.safe_load(path.read_text())["alerts"][alert]
    return Thresholds(severities["warning"]["threshold"], severities["critical"]["threshold"])


CPU = alert_thresholds("HostCpuBusy")
MEMORY = alert_thresholds("HostMemoryUsage")
DISK = alert_thresholds("HostFilesystemUsage")
INODES = alert_thresholds("HostInodesUsage")
