"""A declaration changed for one test: what rules and dashboards derive from it must follow."""
from __future__ import annotations

from dataclasses import replace

from collector.sources import ALL_SOURCES

# Read by rules and panels alike; as if its unit were bytes, its Prometheus name would be this.
METRIC = "system.filesystem.utilization"
PROMETHEUS = "system_filesystem_utilization_ratio"
AS_BYTES = "system_filesystem_utilization_bytes"


def redeclare(monkeypatch, otlp_name: str, **changes) -> None:
    """Every source's declaration of `otlp_name` with `changes` (name, unit, ...), undone after the test."""
    for source in ALL_SOURCES:
        monkeypatch.setattr(source, "metrics", tuple(replace(spec, **changes) if spec.name == otlp_name else spec
                                                      for spec in source.metrics))
