"""node_exporter's textfile collector for OTLP: the metrics of every *.prom file in a directory, read at each
collection (opt-in: the files decide what, and how many series, are exported).

Writers follow node_exporter's convention: write a temporary file in the same directory, then rename it to
*.prom, so that a half-written file is never read (only names ending in .prom are).
"""

import re
from collections import Counter
from dataclasses import dataclass, field

from collector.naming import OPTIONAL_RESOURCE_LABELS, RESOURCE_LABELS
from collector.sources.base import OptInOptions, PartialFailure, Source, Unavailable
from collector.sources.prometheus_text import Family, parse
from collector.spec import MetricSpec, Point, counter, gauge

OPT_IN = "only with textfile.enabled: true"
FOUND = "when a *.prom file of the textfile directory has it"
UNITS = {"_seconds": "s", "_bytes": "By"}  # the unit the gateways turn back into the same name suffix
RESERVED_LABELS = frozenset((*RESOURCE_LABELS, *OPTIONAL_RESOURCE_LABELS))
# The OpenTelemetry API's instrument name syntax; the text format also allows ':' (recording rules' names) and a
# leading '_', which the SDK refuses when the instrument is created.
INSTRUMENT_NAME = re.compile(r"[a-zA-Z][-_./a-zA-Z0-9]{0,254}")


@dataclass(frozen=True)
class TextfileOptions(OptInOptions):
    # A path on the host (under host_root in a container).
    directory: str = "/var/lib/node_exporter/textfile_collector"
    max_series: int = field(default=1000, metadata={"min": 1})


MTIME = gauge("hostagent.textfile.mtime", "s",
              "Modification time (Unix time) of each *.prom file: a cron job that stopped writing grows old.",
              "file.name", condition=OPT_IN)
ERRORS = counter("hostagent.textfile.errors", "{error}",
                 "Collections that skipped a file: not valid text format, a type conflict, a clash or max_series.",
                 "file.name", condition=OPT_IN)


class TextfileSource(Source):
    name = "textfile"
    Options = TextfileOptions
    metrics = (MTIME, ERRORS)

    def __init__(self, host, options):
        super().__init__(host, options)
        self.directory = host.host_path(options.directory)
        # An instrument's kind and unit are fixed once created: a later file that disagrees is a conflict.
        self._specs: dict[str, MetricSpec] = {}
        self._errors: Counter = Counter()

    def discovered_metrics(self) -> list[MetricSpec]:
        return list(self._specs.values())

    def collect(self) -> list[Point]:
        try:
            paths = sorted(p for p in self.directory.iterdir() if p.suffix == ".prom" and p.is_file())
        except FileNotFoundError:
            raise Unavailable(f"no directory {self.directory}") from None
        points, problems, series = [], [], set()
        for path in paths:
            try:
                mtime, data = path.stat().st_mtime, path.read_bytes()
            except OSError as error:  # renamed away between listing and reading
                problems.append(f"{path.name}: {error.strerror}")
                continue
            points.append(Point(MTIME.name, mtime, {"file.name": path.name}))
            try:
                points += self._file_points(parse(data.decode()), series)
            except ValueError as error:  # UnicodeDecodeError too: a file that is not UTF-8 is skipped, not fatal
                problems.append(f"{path.name}: {error}")
                self._errors[path.name] += 1
            points.append(Point(ERRORS.name, self._errors[path.name], {"file.name": path.name}))
        if problems:
            raise PartialFailure(points, "skipped " + "; ".join(problems))
        return points

    def _file_points(self, families: list[Family], series: set) -> list[Point]:
        """A file's points, or ValueError: a file is taken whole or not at all."""
        specs, points = {}, []
        for family in families:
            for spec, point in family_points(family):
                if not INSTRUMENT_NAME.fullmatch(spec.name):
                    raise ValueError(f"{spec.name} is not a metric name OpenTelemetry takes (a letter, then at most "
                                     f"254 letters, digits and _ . - /)")
                known = self._specs.get(spec.name) or specs.get(spec.name)
                if known and (known.instrument, known.unit) != (spec.instrument, spec.unit):
                    raise ValueError(f"{spec.name} is a {spec.instrument.value} here, "
                                     f"a {known.instrument.value} elsewhere")
                if clash := RESERVED_LABELS.intersection(point.attributes):
                    raise ValueError(f"label {min(clash)} of {spec.name} is reserved for the host's identity")
                specs.setdefault(spec.name, spec)
                points.append(point)
        keys = {(p.metric, tuple(sorted(p.attributes.items()))) for p in points}
        if duplicate := keys & series:
            raise ValueError(f"{min(duplicate)[0]} has a series already written by another file")
        if len(series) + len(keys) > self.options.max_series:
            raise ValueError(f"over max_series={self.options.max_series}")
        series |= keys
        self._specs.update({name: spec for name, spec in specs.items() if name not in self._specs})
        return points


def family_points(family: Family) -> list[tuple[MetricSpec, Point]]:
    description = family.help or f"{family.name}, from the textfile directory."
    if family.type in ("histogram", "summary"):
        # The OTel API has no observable histogram: each Prometheus series of the family becomes a gauge of
        # the same name (x_bucket{le}, x_sum, x_count, x{quantile}), so PromQL over them reads as usual.
        return [(gauge(name, "", description, condition=FOUND), Point(name, value, labels))
                for name, labels, value in family.samples]
    if family.type == "counter":
        # The gateways add _total back to a monotonic sum.
        name, declare = family.name.removesuffix("_total"), counter
    else:
        name, declare = family.name, gauge
    unit = next((unit for suffix, unit in UNITS.items() if name.endswith(suffix)), "")
    spec = declare(name, unit, description, condition=FOUND)
    return [(spec, Point(name, value, labels)) for _, labels, value in family.samples]
