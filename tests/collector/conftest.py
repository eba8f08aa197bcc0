import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

from collector.collection import Collection
from collector.host import Host
from collector.sources import SOURCES
from collector.sources.agent import AgentSource
from collector.sources.base import SourceOptions
from collector.sources.process_groups import GroupRule
from collector.telemetry import AgentTelemetry
from pipeline.fake_systemd import private_bus

FIXTURE_ROOT = Path(__file__).parent / "fixtures" / "hostfs"
# Opt-in options switched on so that every declared metric can appear.
EVERYTHING = {"cpu": {"per_cpu": True}, "network": {"connections": True}, "top_processes": {"enabled": True},
              "textfile": {"enabled": True}, "cgroup": {"enabled": True},
              "process_groups": {"enabled": True, "groups": {"nginx": GroupRule(executable=("^nginx$",))}}}

# Property-based tests: 400 examples each; `make mutation` runs them once per mutant, with fewer examples and the
# same ones every time (HYPOTHESIS_PROFILE=mutation).
settings.register_profile("thorough", max_examples=400, deadline=None)
settings.register_profile("mutation", max_examples=40, deadline=None, derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "thorough"))


@pytest.fixture
def fixture_host():
    """A Host reading the fake host tree."""
    return Host(FIXTURE_ROOT)


def all_sources(host, telemetry):
    sources = [cls(host, cls.Options(**EVERYTHING.get(name, {}))) for name, cls in SOURCES.items()]
    return sources + [AgentSource(host, SourceOptions(), telemetry)]


@pytest.fixture
def host_tree(tmp_path):
    """A copy of the fake host tree, to change files in."""
    return shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)


@pytest.fixture
def collect_everything(tmp_path):
    """The fixture tree for every source (top_processes apart, collected by the test), systemd asking a fake
    systemd on a private D-Bus daemon."""
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    with private_bus(root):
        yield _collect_everything(root)


def _collect_everything(root):
    telemetry = AgentTelemetry()
    fixture_sources = [s for s in all_sources(Host(root), telemetry) if s.name != "top_processes"]
    # CPU time moves on between the start-up baseline and the first collection.
    stat = root / "proc" / "stat"
    stat.write_text(stat.read_text().replace("cpu  1000 ", "cpu  1100 ").replace("cpu0 600 ", "cpu0 700 "))
    fixture = Collection(fixture_sources, telemetry)
    fixture.refresh()
    top = SOURCES["top_processes"](Host(root), SOURCES["top_processes"].Options(enabled=True))
    return fixture, top


def by_attributes(points, metric, key):
    return {p.attributes[key]: p.value for p in points if p.metric == metric}


def values(points, metric):
    return [p.value for p in points if p.metric == metric]
