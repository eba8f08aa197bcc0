"""Logging a recurring problem once — each distinct problem once until it ends, then its end — never every
cycle, even when a failure alternates between two messages (a TLS refusal seen as an alert, then as EOF).
A message that carries a count changing from cycle to cycle ("101 interfaces, only max_interfaces=100 kept",
then 102) comes as a `Problem` whose kind leaves the count out: it is still the same problem. Every other
number is part of the problem: HTTP 400, then 413, is a change."""

import logging
from collections.abc import Iterable
from typing import NamedTuple


class Problem(NamedTuple):
    message: str
    kind: str  # the message without its count: what stays the same while the problem lasts

    def __str__(self) -> str:
        return self.message


def joined(problems: Iterable[str | Problem]) -> Problem:
    """Several problems reported as one, in one message."""
    problems = list(problems)
    return Problem("; ".join(map(str, problems)), "; ".join(map(_kind, problems)))


def prefixed(prefix: str, problem: str | Problem) -> Problem:
    return Problem(prefix + str(problem), prefix + _kind(problem))


def _kind(problem: str | Problem) -> str:
    return problem.kind if isinstance(problem, Problem) else problem


class ProblemLog:
    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self._seen: dict[str, set[str]] = {}

    def report(self, subject: str, problem: str | Problem | None, level: int = logging.WARNING) -> None:
        seen = self._seen.setdefault(subject, set())
        if problem is None:
            if seen:
                seen.clear()
                self.logger.info("%s: recovered", subject)
        elif (kind := _kind(problem)) not in seen:
            seen.add(kind)
            self.logger.log(level, "%s: %s", subject, problem)
