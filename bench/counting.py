"""Counting what arrived in a backend (Prometheus or VictoriaMetrics, through their common query API)."""

import time

from pipeline.services import PromApi

SETTLE_SECONDS = 60  # how long the backends may take to show the last cycle after it was sent


def settled_count(backend: PromApi, job: str, window: int, expected: int) -> int:
    """Samples of `job` in the last `window` seconds, once they reach `expected` or stop changing."""
    deadline, last, unchanged_since = time.monotonic() + SETTLE_SECONDS, -1, time.monotonic()
    while True:
        count = count_samples(backend, job, window)
        now = time.monotonic()
        if count != last:
            last, unchanged_since = count, now
        if count == expected or now > deadline or now - unchanged_since > 10:
            return count
        time.sleep(1)


def count_samples(backend: PromApi, job: str, window: int) -> int:
    # One metric name at a time: count_over_time drops the name, and series that differ only by it would collide.
    names = backend.api("label/__name__/values", **{"match[]": f'{{job="{job}"}}', "start": time.time() - window})
    return sum(int(scalar(backend, f'sum(count_over_time({name}{{job="{job}"}}[{window}s]))')) for name in names)


def count_series(backend: PromApi, job: str, window: int) -> int:
    return int(scalar(backend, f'count(last_over_time({{job="{job}"}}[{window}s]))'))


def scalar(backend: PromApi, expr: str) -> float:
    result = backend.query(expr)
    return float(result[0]["value"][1]) if result else 0.0
