"""Metric declarations as data: every emitted metric is declared exactly once, in its source module."""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple


class Instrument(Enum):
    COUNTER = "counter"
    UPDOWNCOUNTER = "updowncounter"
    GAUGE = "gauge"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    instrument: Instrument
    unit: str
    description: str
    attributes: tuple[str, ...] = ()
    # Attributes present only when an option asks for them (per-CPU breakdown).
    optional_attributes: tuple[str, ...] = ()
    # Set when a metric legitimately may not appear (no swap, no sensors, opt-in option off).
    condition: str | None = None
    # Set when the semantic conventions define no such metric: whose name is followed instead.
    precedent: str | None = None


class Point(NamedTuple):
    metric: str
    value: float
    attributes: Mapping[str, str | int] = {}


def _declare(instrument):
    def declare(name, unit, description, *attributes, optional=(), condition=None, precedent=None):
        return MetricSpec(name, instrument, unit, description, attributes, tuple(optional), condition, precedent)
    return declare


counter = _declare(Instrument.COUNTER)
updowncounter = _declare(Instrument.UPDOWNCOUNTER)
gauge = _declare(Instrument.GAUGE)


# Precedents for names the semantic conventions do not define (docs/metrics.md shows them).
HOSTMETRICS = "the OpenTelemetry Collector hostmetrics receiver's {} scraper"
PROJECT = "hostagent (the hostmetrics receiver has none either)"
