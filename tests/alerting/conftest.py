"""Fixtures for the alerting tests: binaries, notification sinks, the local Alertmanager config."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.backends import MissingBackend, binary


def require_binary(name: str) -> Path:
    # Provisional: replaced by pipeline.testing.require_binary once it lands.
    try:
        return binary(name)
    except MissingBackend as missing:
        if os.environ.get("CI"):
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def amtool() -> Path:
    return require_binary("amtool")
