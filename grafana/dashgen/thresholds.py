"""Alert thresholds drawn on the dashboards, read from the alerting rules' single source of truth."""
from __future__ import annotations

import functools
from pathlib import Path

import yaml

from rules.build import THRESHOLDS as RULES_THRESHOLDS
from rules.build import load_windows

from .builder import Thresholds


@functools.cache
def _alerts(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["alerts"]


def alert_threshold(alert: str, severity: str, key: str = "threshold", path: Path = RULES_THRESHOLDS):
    return _alerts(path)[alert][severity][key]


def alert_thresholds(alert: str) -> Thresholds:
    return Thresholds(alert_threshold(alert, "warning"), alert_threshold(alert, "critical"))


CPU = alert_thresholds("HostCpuBusy")
MEMORY = alert_thresholds("HostMemoryUsage")
DISK = alert_thresholds("HostFilesystemUsage")
INODES = alert_thresholds("HostInodesUsage")
LOAD_PER_CPU = alert_threshold("HostCpuSaturated", "warning")
PROCESS_GROUP_MIN = alert_threshold("HostProcessGroupDown", "critical")  # fewer processes than this: down
# A host counts as not reporting after the silence that HostStoppedReporting waits for.
SILENCE = alert_threshold("HostStoppedReporting", "critical", "silent")
# How long a gauge's last sample stands for the current value, as in the rules (last_over_time(…[fresh_within])).
FRESH_WITHIN = load_windows(RULES_THRESHOLDS)["fresh_within"]
