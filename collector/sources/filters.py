"""Include/exclude name filters shared by the disk, filesystem and network sources."""

import re
from dataclasses import dataclass


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
