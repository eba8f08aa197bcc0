"""Unexpected exceptions in the agent's own loops (a bug in a source's wiring, the SDK, a transport): never a
silent death. Each is counted, and logged with its traceback the first time it happens (a bug that strikes
every other cycle is still logged once); the loop goes on with its next cycle. A
loop that fails `limit` cycles in a row, or whose thread dies, is fatal: /readyz fails and the agent exits
non-zero, so that its supervisor (systemd, the kubelet) restarts it."""

import logging
import threading
from collections import Counter
from collections.abc import Callable

from collector.telemetry import AgentTelemetry

log = logging.getLogger(__name__)


class Faults:
    def __init__(self, telemetry: AgentTelemetry, limit: int, on_fatal: Callable[[], None]):
        self.telemetry, self.limit, self.on_fatal = telemetry, limit, on_fatal
        self.in_a_row = Counter()
        self.logged: set[str] = set()
        self.lock = threading.Lock()

    def report(self, stage: str, error: BaseException) -> None:
        with self.lock:
            self.telemetry.faults[stage] += 1
            self.in_a_row[stage] += 1
            failed = self.in_a_row[stage]
            message = f"{stage}: unexpected {type(error).__name__}: {error}"
            first = message not in self.logged
            self.logged.add(message)
        if first:
            log.error("%s", message, exc_info=error)
        if failed >= self.limit:
            self.fatal(f"{stage} failed {failed} times in a row")

    def clear(self, stage: str) -> None:
        with self.lock:
            self.in_a_row[stage] = 0

    def guard(self, stage: str, loop: Callable[[], None]) -> Callable[[], None]:
        """`loop` for a thread: if it ever raises, the agent must not run on without it."""
        def run():
            try:
                loop()
            except BaseException as error:
                log.critical("the %s thread died", stage, exc_info=error)
                self.fatal(f"the {stage} thread died: {type(error).__name__}: {error}")
        return run

    def fatal(self, reason: str) -> None:
        if self.telemetry.fatal is None:
            self.telemetry.fatal = reason
            log.critical("%s: stopping, to be restarted", reason)
        self.on_fatal()
