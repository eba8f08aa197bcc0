"""Logging a recurring problem once — each distinct message once until it ends, then its end — never every
cycle, even when a failure alternates between two messages (a TLS refusal seen as an alert, then as EOF).
Messages that differ only in their numbers are one problem: a count that changes from cycle to cycle ("101
interfaces, only max_interfaces=100 kept", then 102) is not a new one."""

import logging
import re

_NUMBER = re.compile(r"\d+")


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
        elif (kind := _NUMBER.sub("N", problem)) not in seen:
            seen.add(kind)
            self.logger.log(level, "%s: %s", subject, problem)
