from pathlib import Path

import psutil
import pytest

from collector.host import Host

FIXTURE_ROOT = Path(__file__).parent / "fixtures" / "hostfs"


@pytest.fixture
def fixture_host():
    """A Host reading the fake host tree; psutil's global procfs path is restored afterwards."""
    yield Host(FIXTURE_ROOT)
    psutil.PROCFS_PATH = "/proc"


def by_attributes(points, metric, key):
    return {p.attributes[key]: p.value for p in points if p.metric == metric}


def values(points, metric):
    return [p.value for p in points if p.metric == metric]
