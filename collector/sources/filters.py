"""Include/exclude name filters shared by the disk, filesystem and network sources."""

import re
from dataclasses import dataclass

from collector.problems import Problem

REGEX = {"regex": True}  # option metadata: a list of regular expressions, validated at load
VERDICTS_KEPT = 4096


@dataclass(frozen=True)
class NameFilter:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "_include", [re.compile(p) for p in self.include])
        object.__setattr__(self, "_exclude", [re.compile(p) for p in self.exclude])
        # name → verdict: the same mounts, devices and interfaces come back every cycle (the filesystem source's
        # default excludes are 20 expressions for each of ~20 mounts)
        object.__setattr__(self, "_verdicts", {})

    def allows(self, name: str) -> bool:
        verdict = self._verdicts.get(name)
        if verdict is None:
            if len(self._verdicts) >= VERDICTS_KEPT:  # names that keep changing (container mounts) only refill it
                self._verdicts.clear()
            verdict = self._verdicts[name] = self._decide(name)
        return verdict

    def _decide(self, name: str) -> bool:
        if self._include and not any(p.search(name) for p in self._include):
            return False
        return not any(p.search(name) for p in self._exclude)


def capped(items: list, limit: int, what: str) -> tuple[list, Problem | None]:
    """At most `limit` items (cardinality stays bounded), and what to report when some were left out."""
    if len(items) <= limit:
        return items, None
    return items[:limit], Problem(f"{len(items)} {what}, only max_{what}={limit} kept", f"over max_{what}={limit}")
