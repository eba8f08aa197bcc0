"""Pressure stall information from /proc/pressure (Linux ≥ 4.20; no semconv name yet)."""

from collector.sources.base import Source, Unavailable
from collector.spec import Point, counter

RESOURCES = ("cpu", "memory", "io")


class PressureSource(Source):
    name = "pressure"
    metrics = (
        counter("system.linux.pressure.stall_time", "s",
                "Time tasks were stalled waiting for a resource (some: at least one task; full: all).",
                "linux.pressure.resource", "linux.pressure.scope",
                condition="Linux with pressure stall information (CONFIG_PSI)"),
    )

    def collect(self) -> list[Point]:
        points = []
        for resource in RESOURCES:
            try:
                text = self.host.read_proc(f"pressure/{resource}")
            except FileNotFoundError as missing:
                raise Unavailable(f"{missing.filename} is missing") from None
            points += parse_pressure(resource, text)
        return points


def parse_pressure(resource: str, text: str) -> list[Point]:
    points = []
    for line in text.splitlines():
        scope, *pairs = line.split()
        total_us = dict(pair.split("=") for pair in pairs)["total"]
        points.append(Point("system.linux.pressure.stall_time", int(total_us) / 1e6,
                            {"linux.pressure.resource": resource, "linux.pressure.scope": scope}))
    return points
