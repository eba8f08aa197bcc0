"""OTLP → Prometheus names, as the collector's translator builds them (github.com/prometheus/otlptranslator v1.0.0, in
the prometheusremotewrite exporter v0.160.0; VictoriaMetrics' -opentelemetry.usePrometheusNaming gives the same names
to every declared metric, tests/collector/test_victoriametrics.py): the name
is split into words at every character a Prometheus name cannot hold; the unit adds its word unless the name already
has it (and "per_<unit>" after a "/"); a monotonic counter's "total" words move to the end, and so do a unit-1
gauge's "ratio" words (UpDownCounters with unit 1 get none)."""

import re

from collector.spec import Instrument, MetricSpec

UNIT_WORDS = {"d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
              "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes",
              "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes",
              "TBy": "terabytes", "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts",
              "g": "grams", "Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent"}
PER_UNIT_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}
NOT_IN_A_NAME = re.compile(r"[^a-zA-Z0-9:]+")
# Resource attributes the gateways turn into the labels every series carries (docs/gateway.md).
RESOURCE_LABELS = ("job", "instance", "host_name", "host_id", "os_type")
OPTIONAL_RESOURCE_LABELS = ("k8s_node_name", "k8s_cluster_name")


def _unit_word(unit: str, words: dict[str, str]) -> str:
    """A unit's word; an annotation ({packet}) has none, a unit outside the table is its own word."""
    unit = unit.strip()
    if not unit or "{" in unit or "}" in unit:
        return ""
    return NOT_IN_A_NAME.sub("_", words.get(unit, unit)).lstrip("_")


def _moved_to_end(words: list[str], word: str) -> list[str]:
    return [w for w in words if w != word] + [word]


def prometheus_name(spec: MetricSpec) -> str:
    words = [word for word in NOT_IN_A_NAME.split(spec.name) if word]
    main, _, per = spec.unit.partition("/")
    main_word, per_word = _unit_word(main, UNIT_WORDS), _unit_word(per, PER_UNIT_WORDS)
    if main_word and main_word not in words:
        words.append(main_word.rstrip("_") if per_word else main_word)
    if per_word:
        words.append(f"per_{per_word}")
    if spec.instrument is Instrument.COUNTER:
        words = _moved_to_end(words, "total")
    if spec.unit == "1" and spec.instrument is Instrument.GAUGE:
        words = _moved_to_end(words, "ratio")
    name = "_".join(words)
    return f"_{name}" if name[:1].isdigit() else name


def prometheus_label(attribute: str) -> str:
    return attribute.replace(".", "_")
