"""Load averages from /proc/loadavg (the OTel Collector hostmetrics names; no semconv name yet)."""

from collector.sources.base import Source
from collector.spec import HOSTMETRICS, Point, gauge

WINDOWS = ("1m", "5m", "15m")
LOAD_AVERAGE = {window: gauge(f"system.cpu.load_average.{window}", "{thread}",
                              f"Average number of runnable and uninterruptible threads over {window}.",
                              precedent=HOSTMETRICS.format("load"))
                for window in WINDOWS}


class LoadSource(Source):
    name = "load"
    metrics = tuple(LOAD_AVERAGE.values())

    def collect(self) -> list[Point]:
        return parse_loadavg(self.host.read_proc("loadavg"))


def parse_loadavg(text: str) -> list[Point]:
    values = text.split()[:3]
    return [Point(LOAD_AVERAGE[w].name, float(v)) for w, v in zip(WINDOWS, values)]
