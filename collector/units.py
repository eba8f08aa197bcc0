"""Durations and byte sizes as people write them in a config file ("30s", "1h", "64MiB")."""

import math
import re
from fractions import Fraction

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_FACTORS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SIZE_FACTORS = {None: 1, "B": 1, "KB": 10**3, "KiB": 2**10, "MB": 10**6, "MiB": 2**20, "GB": 10**9, "GiB": 2**30}


class Duration(float):
    """Seconds. Accepts numbers (seconds) and strings such as "500ms", "30s", "5m", "1h"."""

    @classmethod
    def parse(cls, value) -> "Duration":
        if isinstance(value, bool):
            raise ValueError("expected a duration such as 10s, 500ms or 5m")
        if isinstance(value, (int, float)):
            return cls(value)
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as 10s, 500ms or 5m, got {value!r}")
        return cls(float(match.group(1)) * _DURATION_FACTORS[match.group(2)])


class ByteSize(int):
    """Bytes. Accepts integers and strings such as "64MiB", "1GB" or "1.5KiB" (1536): a whole number of bytes, so a
    number (0.9) or a size (1.5B) with a fraction of a byte is an error, not rounded down (0.9 would turn the
    backlog off)."""

    @classmethod
    def parse(cls, value) -> "ByteSize":
        if isinstance(value, bool):
            raise ValueError("expected a size such as 64MiB")
        if isinstance(value, int):
            return cls(value)
        if isinstance(value, float) and math.isfinite(value):
            size = Fraction(value)
        elif match := _SIZE.match(str(value)):
            size = Fraction(match.group(1)) * _SIZE_FACTORS[match.group(2)]  # exact: 0.1KB is 100 bytes
        else:
            raise ValueError(f"expected a size such as 64MiB or 1GB, got {value!r}")
        if size.denominator != 1:
            raise ValueError(f"expected a whole number of bytes, got {value!r}")
        return cls(size)


def show_amount(value, hint) -> str:
    """A bound or value in the largest unit that divides it: 24h rather than 86400s, 64GiB rather than bytes."""
    units = {Duration: (("h", 3600), ("m", 60)), ByteSize: (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))}
    for unit, size in units.get(hint, ()):
        if value >= size and value % size == 0:
            return f"{value / size:.12g}{unit}"
    return f"{value:.12g}s" if hint is Duration else f"{value}{'B' if hint is ByteSize else ''}"
