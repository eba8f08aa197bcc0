"""The agent's self-metrics: its telemetry and backlog as points, its own CPU time and memory."""

import os
from collections import Counter

import psutil

from collector.backlog import Backlog
from collector.host import Host
from collector.sources.agent import AgentSource
from collector.sources.base import SourceOptions
from collector.telemetry import AgentTelemetry, SourceStats

MIB = 2**20


def by_labels(points):
    return {(p.metric, *sorted(p.attributes.values())): p.value for p in points
            if p.metric not in ("hostagent.cpu.time", "hostagent.memory.usage")}


def test_telemetry_and_backlog_become_points_with_their_outcome_and_stage():
    telemetry = AgentTelemetry(sources={"cpu": SourceStats(0.25, Counter(success=7, error=2))},
                               exported_points=Counter(success=1200, failure=300),
                               export_requests=Counter(success=12, failure=3), faults=Counter(collect=1, send=4))
    backlog = Backlog(None, max_bytes=10_000, max_age=3600, clock=lambda: 1000.0)
    backlog.push(b"x" * 100, created=940.0)
    backlog.push(b"y" * 50, created=990.0)
    entry, _ = backlog.oldest()
    backlog.delivered(entry)
    backlog.count_dropped()
    assert by_labels(AgentSource(Host("/"), SourceOptions(), telemetry, backlog).collect()) == {
        ("hostagent.source.duration", "cpu"): 0.25,
        ("hostagent.source.collections", "cpu", "success"): 7, ("hostagent.source.collections", "cpu", "error"): 2,
        ("hostagent.export.data_points", "success"): 1200, ("hostagent.export.data_points", "failure"): 300,
        ("hostagent.export.requests", "success"): 12, ("hostagent.export.requests", "failure"): 3,
        ("hostagent.faults", "collect"): 1, ("hostagent.faults", "send"): 4,
        ("hostagent.backlog.size",): 50, ("hostagent.backlog.age",): 10.0,
        ("hostagent.backlog.replayed",): 1, ("hostagent.backlog.dropped",): 1}


def test_a_snapshot_without_backlog_reports_an_empty_one():
    points = by_labels(AgentSource(Host("/"), SourceOptions(), AgentTelemetry()).collect())
    assert {metric: value for (metric, *_), value in points.items() if metric.startswith("hostagent.backlog.")} == {
        "hostagent.backlog.size": 0, "hostagent.backlog.age": 0.0,
        "hostagent.backlog.replayed": 0, "hostagent.backlog.dropped": 0}


def test_own_cpu_time_and_resident_memory():
    before = os.times()
    points = {p.metric: p.value for p in AgentSource(Host("/"), SourceOptions(), AgentTelemetry()).collect()}
    after = os.times()
    assert before.system > 0  # user and system time both count
    assert before.user + before.system <= points["hostagent.cpu.time"] <= after.user + after.system
    assert abs(points["hostagent.memory.usage"] - psutil.Process().memory_info().rss) < 4 * MIB
