"""The agent's OTLP metric exporter: encodes what the SDK collected, sends it, and keeps what could not
be delivered in the backlog — replayed oldest first, before newer data, when the gateway is back."""

import logging
import time

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from collector.backlog import Backlog
from collector.problems import ProblemLog
from collector.telemetry import AgentTelemetry
from collector.transport import Outcome

log = logging.getLogger(__name__)


def count_points(metrics_data: MetricsData) -> int:
    return sum(len(metric.data.data_points)
               for resource in metrics_data.resource_metrics
               for scope in resource.scope_metrics
               for metric in scope.metrics)


class OtlpExporter(MetricExporter):
    def __init__(self, transport, backlog: Backlog, telemetry: AgentTelemetry, replay_budget: float,
                 clock=time.monotonic):
        super().__init__()
        self.transport, self.backlog, self.telemetry = transport, backlog, telemetry
        self.replay_budget = replay_budget  # seconds of each export that replay may use
        self.clock = clock
        self.problems = ProblemLog(log)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        body = encode_metrics(metrics_data).SerializeToString()
        points = count_points(metrics_data)
        outcome = Outcome.RETRY if not self._replay() else self._send(body)
        if outcome is Outcome.RETRY:
            self.backlog.push(body)
        elif outcome is Outcome.REJECTED:  # refused for good: dropped, as a refused replay is
            self.backlog.count_dropped()
        result = "success" if outcome is Outcome.SENT else "failure"
        self.telemetry.export_requests[result] += 1
        self.telemetry.exported_points[result] += points
        return MetricExportResult.SUCCESS if outcome is Outcome.SENT else MetricExportResult.FAILURE

    def _replay(self) -> bool:
        """Send the backlog, oldest first; False while any of it is left (newer data must wait behind)."""
        deadline = self.clock() + self.replay_budget
        while self.clock() < deadline and (oldest := self.backlog.oldest()):
            entry, body = oldest
            outcome = self._send(body)
            if outcome is Outcome.RETRY:
                return False
            if outcome is Outcome.SENT:
                self.backlog.delivered(entry)
            else:
                self.backlog.rejected(entry)
        return not self.backlog

    def _send(self, body: bytes) -> Outcome:
        outcome, reason = self.transport.send(body)
        if outcome is Outcome.SENT:
            self.telemetry.last_export_success = self.clock()
            self.problems.report("export", None)
        elif outcome is Outcome.RETRY:
            self.problems.report("export", f"{reason}; keeping data in the backlog")
        else:
            self.problems.report("export", f"rejected by the gateway, dropping the request: {reason}", logging.ERROR)
        return outcome

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        self.transport.close()
