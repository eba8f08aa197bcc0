"""One collection cycle: run the sources that are due, time them, count outcomes, keep their points.

A source that is not due in a cycle (its interval is longer than the export interval) re-reports the
points of its last collection, so its gauges have no gaps and its counters stay cumulative.
"""

import contextlib
import logging
import time
from collections import defaultdict

from collector.problems import ProblemLog
from collector.sources.base import PartialFailure, Source, Unavailable
from collector.spec import MetricSpec, Point
from collector.telemetry import AgentTelemetry, SourceStats

log = logging.getLogger(__name__)


class Collection:
    def __init__(self, sources: list[Source], telemetry: AgentTelemetry, clock=time.monotonic):
        self.sources = sources
        self.telemetry = telemetry
        self.clock = clock
        self.points_by_metric: dict[str, list[Point]] = {}
        self._latest: dict[str, list[Point]] = {}
        self._last_run: dict[str, float] = {}
        self.problems = ProblemLog(log)
        self._announced = {spec.name for spec in self.specs()}
        self._listeners = []
        # the hosts the sources read (one, in the agent): a refresh is one cycle of each (collector/host.py)
        self._hosts = list({id(s.host): s.host for s in sources if s.host is not None}.values())
        for source in sources:
            telemetry.sources.setdefault(source.name, SourceStats())

    def specs(self) -> list[MetricSpec]:
        """One spec per metric name (two sources may declare the same metric), declared and discovered."""
        specs = {}
        for source in self.sources:
            for spec in (*source.metrics, *source.discovered_metrics()):
                specs.setdefault(spec.name, spec)
        return list(specs.values())

    def on_new_metrics(self, listener) -> None:
        """Call `listener(specs)` after a refresh that discovered metrics (to create their instruments)."""
        self._listeners.append(listener)

    def refresh(self) -> None:
        with contextlib.ExitStack() as cycles:
            for host in self._hosts:
                cycles.enter_context(host.cycle())
            for source in self.sources:
                if self._due(source):
                    self._latest[source.name] = self._run(source)
        grouped = defaultdict(list)
        for points in self._latest.values():
            for point in points:
                grouped[point.metric].append(point)
        self.points_by_metric = dict(grouped)
        # declared metrics were announced at the start: only a discovered one can be new
        new = list({spec.name: spec for source in self.sources for spec in source.discovered_metrics()
                    if spec.name not in self._announced}.values())
        if new:
            self._announced.update(spec.name for spec in new)
            for listener in self._listeners:
                listener(new)

    def points(self) -> list[Point]:
        return [p for points in self._latest.values() for p in points]

    def latest(self, source_name: str) -> list[Point]:
        return self._latest.get(source_name, [])

    def _due(self, source: Source) -> bool:
        interval = source.options.interval
        last = self._last_run.get(source.name)
        # 5 % slack: a 30 s source on a 10 s export is due on the third export, not the fourth.
        return interval is None or last is None or self.clock() - last >= interval * 0.95

    def _run(self, source: Source) -> list[Point]:
        started = self.clock()
        stats = self.telemetry.sources[source.name]
        self._last_run[source.name] = started
        problem, points = None, []
        try:
            points = source.collect()
        except Unavailable as reason:
            self.problems.report(f"source {source.name}", f"unavailable: {reason}", logging.INFO)
            stats.duration = self.clock() - started
            return []
        except PartialFailure as failure:
            points, problem = failure.points, failure.problem
        except Exception as error:  # one failing source must never stop the others
            problem = f"{type(error).__name__}: {error}"
        stats.duration = self.clock() - started
        stats.outcomes["error" if problem else "success"] += 1
        self.problems.report(f"source {source.name}", problem)
        return points
