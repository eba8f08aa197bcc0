"""Include/exclude name filters shared by the disk, filesystem and network sources."""

import re
from dataclasses import dataclass

REGEX = {"regex": True}  # option metadata: a list of regular expressions, validated at load


@dataclass(frozen=True)
class NameFilter:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "_include", [re.compile(p) for p in self.include])
        object.__setattr__(self, "_exclude", [re.compile(p) for p in self.exclude])

    def allows(self, name: str) -> bool:
        if self._include and not any(p.search(name) for p in self._include):
            return False
        return not any(p.search(name) for p in self._exclude)


def capped(items: list, limit: int, what: str) -> tuple[list, str | None]:
    """At most `limit` items (cardinality stays bounded), and what to report when some were left out."""
    if len(items) <= limit:
        return items, None
    return items[:limit], f"{len(items)} {what}, only max_{what}={limit} kept"
