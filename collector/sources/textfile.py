"""node_exporter's textfile collector for OTLP: the metrics of every *.prom file in a directory, read at each
collection (opt-in: the files decide what, and how many series, are exported).

Writers follow node_exporter's convention: write a temporary file in the same directory, then rename it to
*.prom, so that a half-written file is never read (only names ending in .prom are).
"""

import errno
import math
import os
import re
import stat
from collections import ChainMap, Counter
from dataclasses import dataclass, field, replace

from collector.naming import OPTIONAL_RESOURCE_LABELS, RESOURCE_LABELS
from collector.problems import Problem, joined, prefixed
from collector.sources.base import OptInOptions, PartialFailure, Source, Unavailable
from collector.sources.prometheus_text import Family, TooManySamples, parse, show
from collector.spec import MetricSpec, Point, counter, gauge
from collector.units import ByteSize, show_amount

OPT_IN = "only with textfile.enabled: true"
FOUND = "when a *.prom file of the textfile directory has it"
UNITS = {"_seconds": "s", "_bytes": "By"}  # the unit the gateways turn back into the same name suffix
RESERVED_LABELS = frozenset((*RESOURCE_LABELS, *OPTIONAL_RESOURCE_LABELS))
# The OpenTelemetry API's instrument name syntax; the text format also allows ':' (recording rules' names) and a
# leading '_', which the SDK refuses when the instrument is created.
INSTRUMENT_NAME = re.compile(r"[a-zA-Z][-_./a-zA-Z0-9]{0,254}")
# What a *.prom entry that is not a regular file is, once symlinks are followed (a directory is left alone).
FILE_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
              (stat.S_ISSOCK, "a socket"))
BROKEN_LINKS = {errno.ENOENT: "dangling symlink", errno.ELOOP: "symlink loop"}


@dataclass(frozen=True)
class TextfileOptions(OptInOptions):
    # A path on the host (under host_root in a container).
    directory: str = "/var/lib/node_exporter/textfile_collector"
    max_series: int = field(default=1000, metadata={"min": 1})
    max_file_size: ByteSize = field(default=ByteSize(2**20), metadata={"min": 1, "max": ByteSize(64 * 2**20)})


MTIME = gauge("hostagent.textfile.mtime", "s",
              "Modification time (Unix time) of each *.prom file: a cron job that stopped writing grows old.",
              "file.name", condition=OPT_IN)
ERRORS = counter("hostagent.textfile.errors", "{error}",
                 "Collections that skipped a file or some of its samples: unreadable, not a regular file, not valid "
                 "text format, a type conflict, a clash, max_series, max_file_size, NaN or ±Inf values.",
                 "file.name", condition=OPT_IN)


@dataclass
class Written:
    """What the files accepted so far in one collection wrote."""
    series: set[tuple] = field(default_factory=set)
    # The SDK exports a name lower-cased: each exported name → the one name files write it as.
    names: dict[str, str] = field(default_factory=dict)


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
            paths = sorted(p for p in self.directory.iterdir() if p.suffix == ".prom" and not p.is_dir())
        except FileNotFoundError:
            raise Unavailable(f"no directory {self.directory}") from None
        points, problems, written = [], [], Written()
        for path in paths:
            file_points, problem = self._read_file(path, written)
            points += file_points
            if problem:
                problems.append(prefixed(f"{path.name}: ", problem))
                self._errors[path.name] += 1
            points.append(Point(ERRORS.name, self._errors[path.name], {"file.name": path.name}))
        if problems:
            raise PartialFailure(points, prefixed("skipped ", joined(problems)))
        return points

    def _read_file(self, path, written: Written) -> tuple[list[Point], str | Problem | None]:
        """A file's mtime and points, and what made the agent skip it or some of its samples."""
        points = []
        try:
            status, problem = file_status(path)
            # stat often works where read does not (EIO, EACCES): HostTextfileStale still sees the file's age.
            points.append(Point(MTIME.name, status.st_mtime, {"file.name": path.name}))
            if problem:
                return points, problem  # not opened: a named pipe would block the collection
            families = parse(self._read_text(path), self.options.max_series - len(written.series))
            file_points, not_finite = self._file_points(families, written)
        except OSError as error:  # unreadable, or renamed away between listing and reading
            return points, error.strerror
        except TooManySamples:
            return points, f"over max_series={self.options.max_series}"
        except ValueError as error:  # UnicodeDecodeError too: a file that is not UTF-8 is skipped, not fatal
            return points, str(error)
        return points + file_points, left_out(not_finite)

    def _read_text(self, path) -> str:
        """The file's text, read no further than max_file_size: a huge file must not stall every other source."""
        limit = self.options.max_file_size
        # O_NONBLOCK: a named pipe renamed over the file since it was found regular must not block the collection
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            data = file.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"larger than max_file_size={show_amount(limit, ByteSize)}")
        return data.decode()

    def _file_points(self, families: list[Family], written: Written) -> tuple[list[Point], list[str]]:
        """A file's points and the samples left out as NaN or ±Inf, or ValueError: otherwise a file is taken whole
        or not at all."""
        specs, points, keys, not_finite = {}, [], set(), []
        names = ChainMap({}, written.names)
        for family in families:
            not_finite += [show(name, labels) for name, labels, value in family.samples if not math.isfinite(value)]
            finite = [sample for sample in family.samples if math.isfinite(sample[2])]
            for spec, point in family_points(replace(family, samples=finite)):
                spec, point = exported(spec, point, names)
                known = self._specs.get(spec.name) or specs.get(spec.name)
                if known and (known.instrument, known.unit) != (spec.instrument, spec.unit):
                    raise ValueError(f"{spec.name} is a {spec.instrument.value} here, "
                                     f"a {known.instrument.value} elsewhere")
                if clash := RESERVED_LABELS.intersection(point.attributes):
                    raise ValueError(f"label {min(clash)} of {spec.name} is reserved for the host's identity")
                key = (point.metric, tuple(sorted(point.attributes.items())))
                if key in keys:
                    raise ValueError(f"{spec.name} is written twice (a counter's x and x_total are one series)")
                if key in written.series:
                    raise ValueError(f"{spec.name} has a series already written by another file")
                keys.add(key)
                specs.setdefault(spec.name, spec)
                points.append(point)
        written.series |= keys
        written.names.update(names.maps[0])
        self._specs.update({name: spec for name, spec in specs.items() if name not in self._specs})
        return points, not_finite


def file_status(path) -> tuple[os.stat_result, str | None]:
    """The entry's status, symlinks followed (a broken symlink's own: its age still shows), and why it is not a
    regular file to read, if it is not."""
    try:
        status = path.stat()
    except OSError as error:
        if error.errno not in BROKEN_LINKS or not path.is_symlink():
            raise
        return path.lstat(), BROKEN_LINKS[error.errno]
    if stat.S_ISREG(status.st_mode):
        return status, None
    kind = next((f" ({name})" for is_kind, name in FILE_KINDS if is_kind(status.st_mode)), "")
    return status, f"not a regular file{kind}"


def exported(spec: MetricSpec, point: Point, names: ChainMap) -> tuple[MetricSpec, Point]:
    """The spec and point under the name the SDK exports: lower-case (its instrument names are case-insensitive).
    ValueError if the name is not one OpenTelemetry takes, or another name differs from it only in case."""
    if not INSTRUMENT_NAME.fullmatch(spec.name):
        raise ValueError(f"{spec.name} is not a metric name OpenTelemetry takes (a letter, then at most "
                         f"254 letters, digits and _ . - /)")
    name = spec.name.lower()
    if (first := names.setdefault(name, spec.name)) != spec.name:
        raise ValueError(f"{spec.name} and {first} differ only in case (names are exported lower-case)")
    return replace(spec, name=name), point._replace(metric=name)


def left_out(not_finite: list[str]) -> Problem | None:
    """The samples left out, the same problem however many there are."""
    if not not_finite:
        return None
    more = f" and {len(not_finite) - 1} more" if len(not_finite) > 1 else ""
    kind = f"NaN or ±Inf, which OpenTelemetry cannot send: {not_finite[0]}"
    return Problem(kind + more, kind)


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
