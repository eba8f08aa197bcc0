"""The agent's sender: delivers the OTLP requests the collection hands over, on a thread of its own, so that
collection keeps its rhythm whatever the gateway does. What cannot be delivered at once goes to the backlog,
which is replayed oldest first, before newer data, when the gateway is back.

One request is in flight at a time. A request the gateway has not answered within the timeout is waited
for on the same connection, never sent a second time alongside (docs/reliability.md, "Nothing twice").
`hostagent.export.requests` counts each collected request once: `success` when delivered at its first
attempt, `failure` when kept in the backlog (then replayed or dropped) or refused for good. A request the gateway
took but for some of its data points (OTLP partial success) is delivered: not sent again, those points counted as
failed. A gateway that asks the agent to wait (Retry-After, RetryInfo) is sent nothing until then.
"""

import logging
import math
import re
import threading
import time
from collections import deque

from collector.backlog import Backlog
from collector.faults import Faults
from collector.problems import Problem, ProblemLog
from collector.telemetry import AgentTelemetry
from collector.transport import Answer, Outcome

log = logging.getLogger(__name__)
# The longest wait a gateway's Retry-After imposes: as long as the OpenTelemetry Collector's exporters retry
# (max_elapsed_time); a busy gateway asks again when it answers the next attempt.
MAX_WAIT = 300.0
NOT_SENT = Answer(Outcome.RETRY, "not sent now")


def shutdown_seconds(timeout: float) -> float:
    """The longest Sender.close(timeout) takes: the flush, then an attempt begun at its deadline, three timeouts at
    most (HTTP: connected and sent, the answer's first byte, the rest; docs/reliability.md, "Shutdown"), and a second
    to keep what it could not send. Deployments give the agent this and the final collection to stop."""
    return 4 * timeout + 1


class Sender:
    def __init__(self, transport, backlog: Backlog, telemetry: AgentTelemetry, faults: Faults, patience: float,
                 clock=time.monotonic, wall_clock=time.time):
        self.transport, self.backlog, self.telemetry, self.faults = transport, backlog, telemetry, faults
        self.patience = patience  # seconds a request in flight is waited for before it is given up
        self.clock, self.wall_clock = clock, wall_clock
        self.problems = ProblemLog(log)
        self.lock = threading.Condition()  # guards the backlog, `handed`, `busy` and the counters
        self.handed: deque[tuple[bytes, int, float]] = deque()  # (body, data points, collected at)
        self.busy = False
        self.in_flight: tuple[bytes, int, float] | None = None  # the handed-over request deliver() is sending
        self.deadline: float | None = None  # set by close(): flush until then, then stop
        self.quiet_until = -math.inf  # clock() before which nothing is sent: the gateway asked to wait
        self.thread = threading.Thread(target=faults.guard("send", self._run), name="send", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def submit(self, body: bytes, points: int) -> None:
        """From the collection: returns at once. While a request is in flight the new one goes to the backlog."""
        with self.lock:
            if self.busy:
                self._keep(body, points, self.wall_clock())
            else:
                self.handed.append((body, points, self.wall_clock()))
                self.lock.notify()

    def close(self, timeout: float) -> None:
        """Deliver what was handed over, then the backlog, within `timeout` seconds; what is left stays in the
        backlog for the next start when it has a directory, else it is lost, and the log says how much."""
        with self.lock:
            self.deadline = self.clock() + timeout
            self.lock.notify()
        if self.thread.is_alive():
            self.thread.join(shutdown_seconds(timeout))
        self.transport.close()
        with self.lock:
            if self.thread.is_alive() and self.in_flight:  # still sending (a name lookup that hangs): kept or lost
                self._keep(*self.in_flight)  # the send thread, when it ends, leaves it to the backlog
                self.in_flight = None
            lost = self.backlog.lost_at_exit()
        if lost:
            log.warning("stopping: %s", lost)

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.handed and self.deadline is None:
                    self.lock.wait()
                if not self.handed:
                    break
                request = self.handed.popleft()
                self.busy = True
            try:
                self.deliver(*request)
            except Exception as error:  # a bug outside the transport: the request is lost, counted and logged
                self.faults.report("send", error)
            finally:
                with self.lock:
                    self.busy = False
        self._replay()  # closing: what waits in the backlog goes too, until the deadline

    def deliver(self, body: bytes, points: int, collected: float) -> None:
        """Send `body` in collection order: after what the backlog holds from before it, then what was kept
        since (collected while the older requests went out); keep `body` in the backlog if it cannot go now."""
        with self.lock:
            request = self.in_flight = (body, points, collected)
        answer = self._attempt(body) if self._replay(until=collected) else NOT_SENT
        outcome = answer.outcome
        with self.lock:
            if self.in_flight is not request:  # close() gave up waiting and kept it
                return
            self.in_flight = None
            if outcome is Outcome.SENT:
                rejected = min(max(answer.rejected_points, 0), points)  # a gateway's count, kept within the request
                self.telemetry.export_requests["success"] += 1
                self.telemetry.exported_points["success"] += points - rejected
                if rejected:
                    self.telemetry.exported_points["failure"] += rejected
            elif outcome is Outcome.RETRY:
                self._keep(body, points, collected)
            else:  # refused for good: dropped, as a refused replay is
                self._count_failure(points)
                self.backlog.count_dropped()
        if outcome is Outcome.SENT:
            self._replay()

    def _keep(self, body: bytes, points: int, collected: float) -> None:
        self._count_failure(points)
        self.backlog.push(body, collected, points)

    def _count_failure(self, points: int) -> None:
        self.telemetry.export_requests["failure"] += 1
        self.telemetry.exported_points["failure"] += points

    def _replay(self, until: float = math.inf) -> bool:
        """Send the backlog's requests collected up to `until` (Unix time), oldest first; False while any of them
        is left (newer data must wait behind)."""
        while not self._past_deadline():
            with self.lock:
                oldest = self.backlog.oldest()
                if oldest is None or oldest[0].created > until:
                    return True
                entry, body = oldest
                self.backlog.sending = entry
            outcome = self._attempt(body).outcome
            with self.lock:
                self.backlog.sending = None
                if outcome is Outcome.SENT:
                    self.backlog.delivered(entry)
                elif outcome is Outcome.REJECTED:
                    self.backlog.rejected(entry)
                else:
                    return False
        return False

    def _attempt(self, body: bytes) -> Answer:
        """Send `body` and wait for the answer: past the timeout on the same connection, until `patience` or
        the shutdown deadline, after which the request is given up (and kept). Not sent while the gateway
        asked to wait."""
        if self.clock() < self.quiet_until:
            return NOT_SENT
        started = self.clock()
        try:
            answer = self.transport.send(body)
            while answer.outcome is Outcome.PENDING:
                self.problems.report("export", f"{answer.reason}; waiting for it rather than sending the request twice")
                if self.clock() - started >= self.patience or self._past_deadline():
                    self.transport.abandon()
                    answer = Answer(Outcome.RETRY, "gave up waiting for an answer")
                else:
                    answer = self.transport.wait()
        except Exception as error:  # a bug in a transport or its library: keep the request, go on
            self.transport.abandon()
            self.faults.report("send", error)
            return NOT_SENT
        self.faults.clear("send")
        if answer.outcome is Outcome.SENT:
            self.telemetry.last_export_success = self.clock()
            self.problems.report("export", None)
            self.problems.report("partial success", _partial_success(answer))
        elif answer.outcome is Outcome.RETRY:
            waiting = self._wait(answer.retry_after)  # how long varies from one refusal to the next: not the kind
            self.problems.report("export", Problem(f"{answer.reason}{waiting}; keeping data in the backlog",
                                                   f"{answer.reason}; asked to wait" if waiting else answer.reason))
        else:
            self.problems.report("export", f"rejected by the gateway, dropping the request: {answer.reason}",
                                 logging.ERROR)
        return answer

    def _wait(self, asked: float) -> str:
        """Send nothing for the `asked` seconds (at most MAX_WAIT); what is said of it in the log."""
        if asked <= 0:
            return ""
        self.quiet_until = self.clock() + min(asked, MAX_WAIT)
        capped = f" ({MAX_WAIT:g}s at most)" if asked > MAX_WAIT else ""
        return f"; the gateway asked to wait {asked:.0f}s{capped}, nothing is sent before then"

    def _past_deadline(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline


def _partial_success(answer: Answer) -> Problem | None:
    """The gateway's refusal, the same problem whatever the counts in it (its own message may carry one too)."""
    if not (answer.rejected_points or answer.reason):
        return None
    refused = f"the gateway took the request but refused {answer.rejected_points} data points for good"
    message = f"{refused}: {answer.reason}" if answer.reason else refused
    return Problem(message, re.sub(r"[0-9]+", "N", message))
