"""The exporter's decisions, with a transport that answers as told: what is sent, kept, dropped and counted."""

import logging

import pytest
from opentelemetry.sdk.metrics.export import MetricExportResult

from collector.backlog import Backlog
from collector.exporter import OtlpExporter
from collector.telemetry import AgentTelemetry
from collector.transport import Outcome
from tests.collector.test_backlog import Clock, collect_one


class ScriptedTransport:
    """Answers each send with the next outcome of its script and keeps what it was given."""

    def __init__(self, *outcomes):
        self.outcomes, self.sent = list(outcomes), []

    def send(self, body):
        self.sent.append(body)
        outcome = self.outcomes.pop(0)
        return outcome, "" if outcome is Outcome.SENT else f"told to answer {outcome.value}"

    def close(self):
        self.outcomes = None


@pytest.fixture
def metrics():
    reader, provider = collect_one([7])
    yield reader.get_metrics_data()
    provider.shutdown()


def exporter_with(transport, backlog=None, budget=5.0, clock=None):
    clock = clock or Clock(100.0)
    telemetry = AgentTelemetry()
    backlog = backlog if backlog is not None else Backlog(None, max_bytes=10_000, max_age=3600, clock=clock)
    return OtlpExporter(transport, backlog, telemetry, replay_budget=budget, clock=clock), telemetry, backlog


def test_a_sent_request_succeeds_and_is_counted(metrics):
    exporter, telemetry, backlog = exporter_with(ScriptedTransport(Outcome.SENT, Outcome.SENT))
    assert exporter.export(metrics) is MetricExportResult.SUCCESS
    assert exporter.export(metrics) is MetricExportResult.SUCCESS
    assert (telemetry.export_requests, telemetry.exported_points) == ({"success": 2}, {"success": 2})
    assert telemetry.last_export_success == 100.0 and len(backlog) == 0


def test_a_retry_keeps_the_request_and_a_refusal_drops_it(metrics, caplog):
    caplog.set_level(logging.INFO, logger="collector.exporter")
    exporter, telemetry, backlog = exporter_with(ScriptedTransport(Outcome.RETRY))
    assert exporter.export(metrics) is MetricExportResult.FAILURE
    assert (len(backlog), backlog.dropped, telemetry.last_export_success) == (1, 0, None)
    assert (telemetry.export_requests, telemetry.exported_points) == ({"failure": 1}, {"failure": 1})
    exporter, telemetry, backlog = exporter_with(ScriptedTransport(Outcome.REJECTED))
    assert exporter.export(metrics) is MetricExportResult.FAILURE
    assert (len(backlog), backlog.dropped, telemetry.export_requests) == (0, 1, {"failure": 1})
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "export: told to answer retry; keeping data in the backlog"),
        ("ERROR", "export: rejected by the gateway, dropping the request: told to answer rejected")]


def test_a_request_refused_on_replay_is_dropped_and_the_next_goes_out(metrics):
    clock = Clock(100.0)
    backlog = Backlog(None, max_bytes=10_000, max_age=3600, clock=clock)
    backlog.push(b"old")
    transport = ScriptedTransport(Outcome.REJECTED, Outcome.SENT)
    exporter, telemetry, _ = exporter_with(transport, backlog, clock=clock)
    assert exporter.export(metrics) is MetricExportResult.SUCCESS
    assert (transport.sent[0], len(transport.sent), len(backlog), backlog.dropped, backlog.replayed) == (
        b"old", 2, 0, 1, 0)


def test_the_backlog_goes_out_oldest_first_before_newer_data(metrics):
    clock = Clock(100.0)
    backlog = Backlog(None, max_bytes=10_000, max_age=3600, clock=clock)
    backlog.push(b"old-1")
    backlog.push(b"old-2")
    transport = ScriptedTransport(Outcome.SENT, Outcome.SENT, Outcome.SENT)
    exporter, telemetry, _ = exporter_with(transport, backlog, clock=clock)
    assert exporter.export(metrics) is MetricExportResult.SUCCESS
    assert transport.sent[:2] == [b"old-1", b"old-2"] and len(transport.sent) == 3
    assert (len(backlog), backlog.replayed, telemetry.export_requests["success"]) == (0, 2, 1)


def test_while_the_replay_fails_newer_data_waits_behind_and_is_not_sent(metrics):
    clock = Clock(100.0)
    backlog = Backlog(None, max_bytes=10_000, max_age=3600, clock=clock)
    backlog.push(b"old")
    transport = ScriptedTransport(Outcome.RETRY)
    exporter, telemetry, _ = exporter_with(transport, backlog, clock=clock)
    assert exporter.export(metrics) is MetricExportResult.FAILURE
    assert transport.sent == [b"old"] and len(backlog) == 2 and backlog.dropped == 0


def test_no_replay_budget_means_no_replay_and_the_new_request_is_kept(metrics):
    clock = Clock(100.0)
    backlog = Backlog(None, max_bytes=10_000, max_age=3600, clock=clock)
    backlog.push(b"old")
    transport = ScriptedTransport()
    exporter, telemetry, _ = exporter_with(transport, backlog, budget=0.0, clock=clock)
    assert exporter.export(metrics) is MetricExportResult.FAILURE
    assert transport.sent == [] and len(backlog) == 2
    exporter.shutdown()
    assert transport.outcomes is None, "shutdown closes the transport"


def test_recovery_is_logged_once_and_flush_has_nothing_to_wait_for(metrics, caplog):
    caplog.set_level(logging.INFO, logger="collector.exporter")
    transport = ScriptedTransport(Outcome.RETRY, Outcome.RETRY, Outcome.SENT, Outcome.SENT, Outcome.SENT)
    exporter, telemetry, backlog = exporter_with(transport)
    results = [exporter.export(metrics) for _ in range(3)]
    assert results == [MetricExportResult.FAILURE, MetricExportResult.FAILURE, MetricExportResult.SUCCESS]
    assert [r.getMessage() for r in caplog.records] == [
        "export: told to answer retry; keeping data in the backlog", "export: recovered"]
    assert exporter.force_flush() is True and len(backlog) == 0 and backlog.replayed == 2
