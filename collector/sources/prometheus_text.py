"""A parser of the Prometheus text exposition format (0.0.4), as node_exporter's textfile collector reads it.

Strict where a silent misreading would do harm: a sample with a client-side timestamp, a second TYPE line for a
family, or a series written twice makes the whole file invalid (node_exporter refuses those files too).
"""

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal

TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
# Sample names of a family besides its own (OpenMetrics writes `# TYPE x counter` above `x_total`).
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})\s*(?:\{{(.*)\}})?\s+(\S+)(?:\s+(\S+))?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
# What Go's strconv.ParseFloat reads, less what Prometheus refuses (hex floats, '_'): Python's float() also reads
# '1_000', '+nan' and digits of other scripts.
_FLOAT = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf(inity)?)|nan", re.IGNORECASE | re.ASCII)
# A sample's timestamp: milliseconds since the epoch, an integer (Prometheus's text parser refuses anything else).
_TIMESTAMP = re.compile(r"-?[0-9]+", re.ASCII)
# The label of a family's type whose value is a number, written back by Prometheus in its own form.
NUMERIC_LABEL = {"histogram": "le", "summary": "quantile"}
_ESCAPE = re.compile(r'\\[\\"n]')
_ESCAPED = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


class TooManySamples(ValueError):
    """The text has more samples than the caller takes: parsing stopped there, so a huge file costs little."""


def parse(text: str, max_samples: float = math.inf) -> list[Family]:
    """The families of one file, in file order; ValueError naming the line when the file is not valid."""
    families: dict[str, Family] = {}
    typed: set[str] = set()
    seen: set[tuple] = set()
    for number, line in enumerate(text.splitlines(), 1):
        try:
            _parse_line(line.strip(), families, typed, seen)
        except ValueError as error:
            raise ValueError(f"line {number}: {error}") from None
        if len(seen) > max_samples:
            raise TooManySamples
    return list(families.values())


def _parse_line(line, families, typed, seen):
    if not line:
        return
    if line.startswith("#"):
        _parse_comment(line, families, typed)
        return
    match = _SAMPLE.match(line)
    if not match:
        raise ValueError(f"not a sample: {line[:80]!r}")
    name, labels_text, value_text, timestamp = match.groups()
    # labels and value first: `bad line here` is a value that is not a number, not a sample with a timestamp
    family = _family_of(name, families)
    labels = _with_numbers_rewritten(name, _parse_labels(labels_text or ""), family.type)
    value = _parse_value(value_text)
    if timestamp is not None and not _TIMESTAMP.fullmatch(timestamp):
        raise ValueError(f"expected a timestamp or nothing after the value, got {timestamp[:80]!r}")
    if timestamp is not None:
        raise ValueError(f"{name} has a timestamp (not supported, as in node_exporter)")
    key = (name, tuple(sorted(labels.items())))
    if key in seen:
        raise ValueError(f"{show(name, labels)} is written twice")
    seen.add(key)
    family.samples.append((name, labels, value))


def _parse_comment(line, families, typed):
    # `#TYPE x counter` is a TYPE line too, as Prometheus reads it.
    keyword, name, rest = (line[1:].split(None, 2) + ["", ""])[:3]
    if keyword not in ("HELP", "TYPE") or not name:
        return
    family = families.setdefault(name, Family(name))
    rest = rest.strip()
    if keyword == "HELP":
        family.help = _unescape(rest)
    elif rest not in TYPES:
        raise ValueError(f"unknown type {rest!r} for {name}")
    elif name in typed or family.samples:
        raise ValueError(f"TYPE of {name} given twice or after its samples")
    else:
        typed.add(name)
        family.type = rest


def _family_of(sample_name, families) -> Family:
    if sample_name in families:
        return families[sample_name]
    for family in families.values():
        if any(sample_name == family.name + suffix for suffix in SUFFIXES.get(family.type, ())):
            return family
    return families.setdefault(sample_name, Family(sample_name))


def _parse_labels(text: str) -> dict[str, str]:
    labels, position = {}, 0
    text = text.strip()
    while position < len(text):
        match = _LABEL.match(text, position)
        if not match:
            raise ValueError(f"malformed labels {{{text}}}")
        name, raw = match.group(1), match.group(2)
        if name in labels:
            raise ValueError(f"label {name} given twice")
        labels[name] = _unescape(raw)
        position = match.end()
    return labels


def _unescape(text: str) -> str:
    r"""The text with \\, \" and \n undone in one pass, left to right (`\\n` is a backslash and an n), for HELP
    and label values alike, as Prometheus' text parser (expfmt) does; another escape is kept as written."""
    return _ESCAPE.sub(lambda escape: _ESCAPED[escape.group()], text)


def _with_numbers_rewritten(name: str, labels: dict[str, str], family_type: str) -> dict[str, str]:
    """The labels with a histogram's le or a summary's quantile as node_exporter writes it (`le="1.0"` is
    `le="1"`): Prometheus reads it as a number."""
    label = NUMERIC_LABEL.get(family_type)
    if label in labels:
        try:
            labels[label] = format_float(_parse_value(labels[label]))
        except ValueError as error:
            raise ValueError(f"{label} of {name}: {error}") from None
    return labels


def _parse_value(text: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise ValueError(f"not a number: {text!r}")
    return float(text)  # also reads NaN, +Inf and -Inf as Prometheus writes them


def format_float(value: float) -> str:
    """The value as Prometheus writes it (expfmt's writeFloat): Go's shortest %g, which turns to an exponent below
    1e-4 and from 1e6 on (`1e-05`, `1e+06`), and +Inf, -Inf, NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"  # -0 too
    shortest = Decimal(repr(value)).normalize()  # Python's repr has the same shortest digits as Go
    exponent = shortest.adjusted()
    if -4 <= exponent < 6:
        return format(shortest, "f")
    return f"{format(shortest.scaleb(-exponent), 'f')}e{exponent:+03d}"


def show(name: str, labels: dict) -> str:
    """A series as the text format writes it (label values unescaped)."""
    return name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
