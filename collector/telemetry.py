"""Counters the agent keeps about itself; the agent source turns them into self-metrics."""

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SourceStats:
    duration: float = 0.0
    outcomes: Counter = field(default_factory=Counter)  # "success" / "error" → collections


@dataclass
class AgentTelemetry:
    sources: dict[str, SourceStats] = field(default_factory=dict)
    exported_points: Counter = field(default_factory=Counter)  # "success" / "failure" → data points
    export_requests: Counter = field(default_factory=Counter)  # "success" / "failure" → requests
    last_export_success: float | None = None  # time.monotonic() of the last successful export
    faults: Counter = field(default_factory=Counter)  # "collect" / "send" → unexpected exceptions
    fatal: str | None = None  # why the agent is stopping to be restarted (collector/faults.py)
