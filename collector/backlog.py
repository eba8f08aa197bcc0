"""Export requests that could not be delivered, kept (on disk when a directory is set) until the gateway
is back, then replayed oldest first. Bounded by total size and by age: beyond either, the oldest go first,
counted as dropped and logged once until the backlog drains. Requests are ordered, and files named, by the
time they were collected, so the order survives a restart or SIGKILL. Not thread-safe: its one user (the
sender) holds a lock around it.
"""

import contextlib
import itertools
import logging
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from collector.problems import ProblemLog

log = logging.getLogger(__name__)
SUFFIX = ".otlp"
PARTIAL = ".tmp"  # a request being written; renamed to its final name once complete
REQUEST_NAME = re.compile(r"(\d{20})-\d{6}" + re.escape(SUFFIX))  # collected at (ns), sequence
# problem subjects: each bound is a problem from its first drop until the backlog has drained
SIZE_BOUND, AGE_BOUND = "backlog.max_bytes", "backlog.max_age"
REPLAY = "backlog replay"


@dataclass
class Entry:
    name: str
    created: float  # Unix time
    size: int
    body: bytes | None = None  # None: the body is in the file `name`
    points: int | None = None  # data points in the request; None: not known (read back from disk)


class Backlog:
    def __init__(self, directory: str | os.PathLike | None, max_bytes: int, max_age: float, clock=time.time):
        self.directory = Path(directory) if directory else None
        self.max_bytes, self.max_age, self.clock = max_bytes, max_age, clock
        self.entries: deque[Entry] = deque()
        self.size_bytes = 0
        self.dropped = 0
        self.replayed = 0
        self.sending: Entry | None = None  # the request in flight: the size bound spares it
        self.problems = ProblemLog(log)
        self._sequence = itertools.count()
        if self.directory:
            self._load()

    def _load(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            names = sorted(p.name for p in self.directory.glob(f"*{SUFFIX}"))
            for partial in self.directory.glob(f".*{SUFFIX}{PARTIAL}"):  # cut short by a crash
                partial.unlink()
        except OSError as error:
            self.problems.report("backlog", f"cannot use {self.directory}: {error.strerror}")
            return
        for name in names:
            if not (request := REQUEST_NAME.fullmatch(name)):
                log.warning("backlog: %s is not a request this agent wrote: left alone", self.directory / name)
                continue
            try:
                size = (self.directory / name).stat().st_size
            except OSError:
                continue
            self.entries.append(Entry(name, int(request[1]) / 1e9, size))
            self.size_bytes += size
        if self.entries:
            log.info("backlog: %d requests (%d bytes) waiting from a previous run", len(self.entries), self.size_bytes)

    def __len__(self) -> int:
        return len(self.entries)

    def age(self) -> float:
        try:  # read without the sender's lock, by the agent's self-metrics
            return self.clock() - self.entries[0].created
        except IndexError:
            return 0.0

    def push(self, body: bytes, created: float | None = None, points: int | None = None) -> None:
        """Keep `body`, collected at `created` (Unix time; now by default), in collection order."""
        created = self.clock() if created is None else created
        entry = Entry(f"{int(created * 1e9):020d}-{next(self._sequence):06d}{SUFFIX}", created, len(body),
                      points=points)
        if self.directory:
            temporary = self.directory / f".{entry.name}{PARTIAL}"
            try:
                self.directory.mkdir(parents=True, exist_ok=True)  # a volume mounted after start-up is used
                temporary.write_bytes(body)
                temporary.rename(self.directory / entry.name)  # a crash never leaves half a request
                self.problems.report("backlog", None)
            except OSError as error:
                with contextlib.suppress(OSError):  # a full disk leaves half a request: give its space back
                    temporary.unlink()
                self.problems.report("backlog", f"cannot write to {self.directory} ({error.strerror}): "
                                                f"undelivered data is dropped and counted")
                self.dropped += 1
                return
        else:
            entry.body = body
        index = len(self.entries)
        while index and self.entries[index - 1].created > created:  # collected before a request kept earlier
            index -= 1
        self.entries.insert(index, entry)
        self.size_bytes += entry.size
        while self.size_bytes > self.max_bytes and (oldest := next(
                (e for e in self.entries if e is not self.sending), None)):
            self._drop_at_bound(oldest, SIZE_BOUND,
                                f"full at {self.max_bytes} bytes: the oldest requests are dropped and counted")

    def oldest(self) -> tuple[Entry, bytes] | None:
        """The oldest request still worth sending; expired and unreadable ones are dropped on the way."""
        while self.entries:
            entry = self.entries[0]
            if self.clock() - entry.created > self.max_age:
                self._drop_at_bound(entry, AGE_BOUND,
                                    f"requests older than {self.max_age:g}s are dropped and counted")
                continue
            try:
                body = entry.body if entry.body is not None else (self.directory / entry.name).read_bytes()
            except OSError as error:
                self.problems.report(REPLAY, f"cannot read {entry.name} ({error.strerror}): it is dropped and counted")
                self._discard(entry, dropped=True)
                continue
            self.problems.report(REPLAY, None)
            return entry, body
        for bound in (SIZE_BOUND, AGE_BOUND):
            self.problems.report(bound, None)
        return None

    def lost_at_exit(self) -> str | None:
        """What an in-memory backlog loses when the agent exits, said once: requests, data points, bytes."""
        if self.directory or not self.entries:
            return None
        points = [entry.points for entry in self.entries]
        counted = f"{sum(points)} data points, " if None not in points else ""
        return (f"{len(self.entries)} requests ({counted}{self.size_bytes} bytes) could not be delivered and are "
                f"lost: the backlog is in memory only; set backlog.directory to keep undelivered data across restarts")

    def delivered(self, entry: Entry) -> None:
        self.replayed += 1
        self._discard(entry, dropped=False)

    def count_dropped(self) -> None:
        """A request that never entered the backlog was lost (the gateway refused it for good)."""
        self.dropped += 1

    def rejected(self, entry: Entry) -> None:
        self._discard(entry, dropped=True)

    def _drop_at_bound(self, entry: Entry, bound: str, problem: str) -> None:
        self.problems.report(bound, problem)
        self._discard(entry, dropped=True)

    def _discard(self, entry: Entry, dropped: bool) -> None:
        self.entries.remove(entry)
        self.size_bytes -= entry.size
        self.dropped += dropped
        if entry.body is None:
            with contextlib.suppress(OSError):
                (self.directory / entry.name).unlink()
