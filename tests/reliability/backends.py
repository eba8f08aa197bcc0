"""Counting in the backends: raw samples of one series over a window, and the agent's last self-metric values."""
from __future__ import annotations

import re
import time

import yaml

from pipeline.services import PromApi

PROMETHEUS_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
WINDOW = "30m"  # longer than any test: the range covers every sample the test produced


def sample_times(backend: PromApi, expr: str) -> list[int]:
    """Millisecond timestamps of the raw samples of the single series `expr` (a range selector at `now`)."""
    result = backend.api("query", query=f"{expr}[{WINDOW}]", time=f"{time.time():.3f}")["result"]
    assert len(result) <= 1, f"{backend.name}: {expr} matches {len(result)} series"
    return [round(float(stamp) * 1000) for stamp, _ in result[0]["values"]] if result else []


def last_value(backend: PromApi, expr: str) -> float | None:
    result = backend.query(f"sum(last_over_time({expr}[{WINDOW}]))")
    return float(result[0]["value"][1]) if result else None


def prometheus_out_of_order_window(backend: PromApi) -> float:
    """Seconds of the out_of_order_time_window Prometheus runs with (0 when unset)."""
    config = yaml.safe_load(backend.api("status/config")["yaml"])
    window = config.get("storage", {}).get("tsdb", {}).get("out_of_order_time_window", "0s")
    return sum(int(number) * PROMETHEUS_UNITS[unit] for number, unit in re.findall(r"(\d+)(ms|[smhdwy])", window))
