"""Counting in the backends: raw samples of one series over a window, and the agent's last self-metric values."""
from __future__ import annotations

import time

from pipeline.services import PromApi

WINDOW = "30m"  # longer than any test: the range covers every sample the test produced


def sample_times(backend: PromApi, expr: str) -> list[int]:
    """Millisecond timestamps of the raw samples of the single series `expr` (a range selector at `now`)."""
    result = backend.api("query", query=f"{expr}[{WINDOW}]", time=f"{time.time():.3f}")["result"]
    assert len(result) <= 1, f"{backend.name}: {expr} matches {len(result)} series"
    return [round(float(stamp) * 1000) for stamp, _ in result[0]["values"]] if result else []


def last_value(backend: PromApi, expr: str) -> float | None:
    result = backend.query(f"sum(last_over_time({expr}[{WINDOW}]))")
    return float(result[0]["value"][1]) if result else None


def prometheus_out_of_order_window(backend: PromApi) -> str | None:
    """The out_of_order_time_window Prometheus runs with (lets a late replay in behind newer samples)."""
    import yaml
    config = yaml.safe_load(backend.api("status/config")["yaml"])
    return config.get("storage", {}).get("tsdb", {}).get("out_of_order_time_window")
