"""What every source shares: its options, its contract, and the two ways a collection can fall short."""

import functools
import os
import re
from dataclasses import dataclass, field
from typing import ClassVar

from collector.host import Host
from collector.problems import Problem, joined
from collector.spec import MetricSpec, Point
from collector.units import Duration


@dataclass(frozen=True)
class SourceOptions:
    enabled: bool = True
    # None: collect on every export; otherwise collect when this much time has passed.
    interval: Duration | None = field(default=None, metadata={"min": 0.1})


@dataclass(frozen=True)
class OptInOptions(SourceOptions):
    enabled: bool = False


class Unavailable(Exception):
    """The host does not offer what this source reads (no /proc/pressure, no sensors): not an error."""


class PartialFailure(Exception):
    """Some reads failed, each a problem; ``points`` holds what could still be collected."""

    def __init__(self, points: list[Point], *problems: str | Problem):
        self.problem = joined(problems)
        super().__init__(self.problem.message)
        self.points = points


class Source:
    name: ClassVar[str]
    metrics: ClassVar[tuple[MetricSpec, ...]]
    Options: ClassVar[type[SourceOptions]] = SourceOptions

    def __init__(self, host: Host, options: SourceOptions):
        self.host = host
        self.options = options

    def collect(self) -> list[Point]:
        raise NotImplementedError

    def discovered_metrics(self) -> list[MetricSpec]:
        """Metrics found at run time beyond the declared ones (the textfile source's files)."""
        return []


class Unbuilt(Source):
    """A source whose construction failed: every collection tries to build it again, and until one succeeds it
    fails as a collection fails (counted and logged by the collection), costing its own metrics only."""

    def __init__(self, source_class: type[Source], host: Host, options: SourceOptions):
        super().__init__(host, options)
        self.source_class, self.built = source_class, None
        self.name, self.metrics = source_class.name, source_class.metrics

    def collect(self) -> list[Point]:
        if self.built is None:
            self.built = self.source_class(self.host, self.options)
        return self.built.collect()

    def discovered_metrics(self) -> list[MetricSpec]:
        return self.built.discovered_metrics() if self.built else []


def build_source(source_class: type[Source], host: Host, options: SourceOptions) -> Source:
    """The source, or when building it fails (a file it reads at start-up is missing) a stand-in that builds it
    at the next collection."""
    try:
        return source_class(host, options)
    except Exception:  # reported by the collection, which meets the same failure when it builds it again
        return Unbuilt(source_class, host, options)


def read_small(path: str | os.PathLike) -> bytes:
    """A small kernel file (procfs, sysfs) read whole with os.open/os.read: without a Python file object it costs
    half the CPU of Path.read_text, which counts in files read every cycle."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        return os.read(descriptor, 65536)
    finally:
        os.close(descriptor)


def read_counters(text: str, keys: frozenset[str] | None = None) -> dict[str, int]:
    """Parse ``key value`` lines (/proc/vmstat) or ``key: value kB`` lines (/proc/meminfo); only `keys`, if given
    (a source reporting 4 of /proc/vmstat's ~190 lines finds those 4 with one regular expression: a fifth of the CPU
    of splitting every line)."""
    values = {}
    for line in text.splitlines() if keys is None else _key_lines(keys).findall(text):
        key, _, rest = line.partition(" ")
        fields = rest.split()
        if fields:
            values[key.rstrip(":")] = int(fields[0]) * (1024 if fields[-1] == "kB" else 1)
    return values


@functools.cache
def _key_lines(keys: frozenset[str]) -> re.Pattern:
    alternatives = "|".join(map(re.escape, sorted(keys)))
    return re.compile(rf"^(?:{alternatives}):? .*$", re.MULTILINE)


def unescape_path(field_text: str) -> str:
    """A path from /proc/mounts or /proc/swaps: the kernel writes space, tab, newline and backslash as octal."""
    return (field_text.replace(r"\040", " ").replace(r"\011", "\t")
            .replace(r"\012", "\n").replace(r"\134", "\\"))
