"""Logging a recurring problem once: when it starts or changes, and when it ends — never every cycle."""

import logging


class ProblemLog:
    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self._current: dict[str, str | None] = {}

    def report(self, subject: str, problem: str | None, level: int = logging.WARNING) -> None:
        previous = self._current.get(subject)
        if problem == previous:
            return
        self._current[subject] = problem
        if problem:
            self.logger.log(level, "%s: %s", subject, problem)
        elif previous:
            self.logger.info("%s: recovered", subject)
