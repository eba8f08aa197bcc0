"""The agent's own health: per-source timing and outcome, exports, and its CPU and memory."""

import os

from collector.backlog import Backlog
from collector.sources.base import Source, read_small
from collector.spec import Point, counter, gauge, updowncounter
from collector.telemetry import AgentTelemetry

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


SOURCE_DURATION = gauge("hostagent.source.duration", "s", "Time the last collection of a source took.",
                        "hostagent.source")
SOURCE_COLLECTIONS = counter("hostagent.source.collections", "{collection}",
                             "Collections of a source by outcome (error: some or all of its reads failed).",
                             "hostagent.source", "hostagent.outcome")
EXPORT_DATA_POINTS = counter("hostagent.export.data_points", "{data_point}",
                             "Data points collected, by outcome (success: taken by the gateway at the first attempt; "
                             "failure: kept in the backlog, refused for good, or rejected by the gateway in a partial "
                             "success).", "hostagent.outcome")
EXPORT_REQUESTS = counter("hostagent.export.requests", "{request}",
                          "Requests collected, by outcome (success: delivered at the first attempt; failure: kept in "
                          "the backlog, or refused for good).", "hostagent.outcome")
FAULTS = counter("hostagent.faults", "{fault}",
                 "Unexpected exceptions in the agent's collect or send loop (a bug: logged with its traceback).",
                 "hostagent.stage")
BACKLOG_SIZE = updowncounter("hostagent.backlog.size", "By", "Undelivered export requests waiting in the backlog.")
BACKLOG_AGE = gauge("hostagent.backlog.age", "s", "Age of the oldest request in the backlog (0 when empty).")
BACKLOG_REPLAYED = counter("hostagent.backlog.replayed", "{request}", "Backlog requests delivered after an outage.")
BACKLOG_DROPPED = counter("hostagent.backlog.dropped", "{request}",
                          "Requests dropped: backlog over its size or age bound, unwritable, or rejected by the "
                          "gateway.")
CPU_TIME = counter("hostagent.cpu.time", "s", "CPU time used by the agent process.")
MEMORY_USAGE = updowncounter("hostagent.memory.usage", "By", "Resident memory of the agent process.")


class AgentSource(Source):
    name = "agent"
    metrics = (SOURCE_DURATION, SOURCE_COLLECTIONS, EXPORT_DATA_POINTS, EXPORT_REQUESTS, FAULTS, BACKLOG_SIZE,
               BACKLOG_AGE, BACKLOG_REPLAYED, BACKLOG_DROPPED, CPU_TIME, MEMORY_USAGE)

    def __init__(self, host, options, telemetry: AgentTelemetry, backlog: Backlog | None = None):
        """`backlog`: the sender's; a snapshot has none and reports an empty one."""
        super().__init__(host, options)
        self.telemetry, self.backlog = telemetry, backlog

    def collect(self) -> list[Point]:
        points = []
        for source, stats in self.telemetry.sources.items():
            points.append(Point(SOURCE_DURATION.name, stats.duration, {"hostagent.source": source}))
            points += [Point(SOURCE_COLLECTIONS.name, stats.outcomes[outcome],
                             {"hostagent.source": source, "hostagent.outcome": outcome})
                       for outcome in ("success", "error")]
        for outcome in ("success", "failure"):
            labels = {"hostagent.outcome": outcome}
            points.append(Point(EXPORT_DATA_POINTS.name, self.telemetry.exported_points[outcome], labels))
            points.append(Point(EXPORT_REQUESTS.name, self.telemetry.export_requests[outcome], labels))
        points += [Point(FAULTS.name, self.telemetry.faults[stage], {"hostagent.stage": stage})
                   for stage in ("collect", "send")]
        backlog = self.backlog
        # An empty Backlog is falsy: test for None.
        size, age, replayed, dropped = (0, 0.0, 0, 0) if backlog is None else (
            backlog.size_bytes, backlog.age(), backlog.replayed, backlog.dropped)
        points += [Point(BACKLOG_SIZE.name, size), Point(BACKLOG_AGE.name, age),
                   Point(BACKLOG_REPLAYED.name, replayed), Point(BACKLOG_DROPPED.name, dropped)]
        times = os.times()
        points.append(Point(CPU_TIME.name, times.user + times.system))
        # Our own /proc, not the host root's: in a container without hostPID our pid differs there.
        points.append(Point(MEMORY_USAGE.name, int(read_small("/proc/self/statm").split()[1]) * PAGE_BYTES))
        return points
