import os
from pathlib import Path

import psutil
import pytest
from hypothesis import settings

from collector.host import Host

FIXTURE_ROOT = Path(__file__).parent / "fixtures" / "hostfs"

# Property-based tests: 400 examples each; `make mutation` runs them once per mutant, with fewer examples and the
# same ones every time (HYPOTHESIS_PROFILE=mutation).
settings.register_profile("thorough", max_examples=400, deadline=None)
settings.register_profile("mutation", max_examples=40, deadline=None, derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "thorough"))


@pytest.fixture(autouse=True)
def real_procfs_afterwards():
    """Every Host sets psutil's global procfs path: each test leaves it as it found it, whatever order tests
    run in (make mutation runs a few at a time)."""
    yield
    psutil.PROCFS_PATH = "/proc"


@pytest.fixture
def fixture_host():
    """A Host reading the fake host tree."""
    return Host(FIXTURE_ROOT)


def by_attributes(points, metric, key):
    return {p.attributes[key]: p.value for p in points if p.metric == metric}


def values(points, metric):
    return [p.value for p in points if p.metric == metric]
