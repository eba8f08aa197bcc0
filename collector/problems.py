"""Logging a recurring problem once — each distinct message once until it ends, then its end — never every
cycle, even when a failure alternates between two messages (a TLS refusal seen as an alert, then as EOF)."""

import logging


class ProblemLog:
    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self._seen: dict[str, set[str]] = {}

    def report(self, subject: str, problem: str | None, level: int = logging.WARNING) -> None:
        seen = self._seen.setdefault(subject, set())
        if problem is None:
            if seen:
                seen.clear()
                self.logger.info("%s: recovered", subject)
        elif problem not in seen:
            seen.add(problem)
            self.logger.log(level, "%s: %s", subject, problem)
