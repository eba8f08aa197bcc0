"""Pressure stall information from /proc/pressure (Linux ≥ 4.20): totals and the kernel's 10 s, 1 min and
5 min averages. No semconv metric yet: names and attributes of the hostmetrics receiver's pressure scraper."""

from collector.sources.base import Source, Unavailable
from collector.spec import HOSTMETRICS, Point, counter, gauge

RESOURCES = ("cpu", "memory", "io")
# /proc/pressure average field → metric suffix (hostmetrics' window names)
AVERAGES = {"avg10": "10s", "avg60": "1m", "avg300": "5m"}
STALL_TYPE = "system.pressure.stall_type"
CONDITION = "Linux with pressure stall information (CONFIG_PSI)"
PRECEDENT = HOSTMETRICS.format("pressure")


TOTAL = {resource: counter(f"system.{resource}.linux.pressure.total", "s",
                           f"Time tasks were stalled waiting for {resource} (some: at least one task; full: all "
                           "non-idle tasks at once).", STALL_TYPE, condition=CONDITION, precedent=PRECEDENT)
         for resource in RESOURCES}
AVERAGE = {(resource, window): gauge(f"system.{resource}.linux.pressure.{window}", "1",
                                     f"Share of time tasks were stalled waiting for {resource}, averaged by the "
                                     f"kernel over {window}.", STALL_TYPE, condition=CONDITION, precedent=PRECEDENT)
           for resource in RESOURCES for window in AVERAGES.values()}


class PressureSource(Source):
    name = "pressure"
    metrics = tuple(spec for resource in RESOURCES
                    for spec in (TOTAL[resource], *(AVERAGE[resource, w] for w in AVERAGES.values())))

    def collect(self) -> list[Point]:
        points = []
        for resource in RESOURCES:
            try:
                text = self.host.read_proc(f"pressure/{resource}")
            except FileNotFoundError as missing:
                raise Unavailable(f"{missing.filename} is missing") from None
            points += parse_pressure(resource, text)
        return points


def pressure_lines(text: str):
    """(stall type, {field: value}) per line of a pressure file (/proc/pressure/* or a cgroup's *.pressure)."""
    for line in text.splitlines():
        stall_type, *pairs = line.split()
        yield stall_type, dict(pair.split("=") for pair in pairs)


def stall_seconds(fields: dict[str, str]) -> float:
    return int(fields["total"]) / 1e6  # the kernel counts microseconds


def parse_pressure(resource: str, text: str) -> list[Point]:
    points = []
    for stall_type, fields in pressure_lines(text):
        labels = {STALL_TYPE: stall_type}
        points.append(Point(TOTAL[resource].name, stall_seconds(fields), labels))
        # the kernel writes the averages as percentages
        points += [Point(AVERAGE[resource, window].name, float(fields[field]) / 100, labels)
                   for field, window in AVERAGES.items()]
    return points
