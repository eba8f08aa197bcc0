"""pipeline.backends: where each binary comes from, and the cache the project fills from Debian trixie."""
import re

import pytest

from pipeline import backends
from pipeline.testing import require_binary

SOURCES = """\
Types: deb
# a snapshot comment
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
"""


@pytest.fixture
def path_dir(tmp_path, monkeypatch):
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    backends._on_path.cache_clear()
    yield directory
    backends._on_path.cache_clear()


def fake_binary(directory, name, version_line):
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    path.chmod(0o755)
    return path


def test_mirror_is_the_main_archive_of_the_machines_deb822_sources(tmp_path):
    (tmp_path / "other.list").write_text("deb http://ignored.invalid/ x main\n")
    (tmp_path / "debian.sources").write_text(SOURCES)
    assert backends.debian_mirror(tmp_path) == ("http://mirror.invalid/debian",
                                                "/usr/share/keyrings/debian-archive-keyring.gpg")


def test_no_debian_archive_is_an_error_naming_the_directory(tmp_path):
    (tmp_path / "node.sources").write_text("Types: deb\nURIs: http://node.invalid/x\nSuites: a\nComponents: main\n")
    with pytest.raises(RuntimeError, match=re.escape(str(tmp_path))):
        backends.debian_mirror(tmp_path)


def test_an_adequate_binary_on_path_wins_over_the_cache(tmp_path, path_dir):
    on_path = fake_binary(path_dir, "alertmanager", "alertmanager, version 0.29.0 (branch: HEAD)")
    assert backends.binary("alertmanager", tmp_path) == on_path


def test_an_old_binary_on_path_gives_way_to_the_cached_one(tmp_path, path_dir):
    fake_binary(path_dir, "prometheus", "prometheus, version 2.42.0+ds (branch: debian/sid)")
    cache_bin = tmp_path / "cache" / "usr" / "bin"
    cache_bin.mkdir(parents=True)
    cached = fake_binary(cache_bin, "prometheus", "prometheus, version 2.53.3+ds1")
    assert backends.binary("prometheus", tmp_path / "cache") == cached


def test_upstream_names_on_path_are_found(tmp_path, path_dir):
    on_path = fake_binary(path_dir, "victoria-metrics-prod", "victoria-metrics-20250611-183200-tags-v1.118.0-0-g1")
    assert backends.binary("victoria-metrics", tmp_path) == on_path


def test_missing_binary_says_how_to_get_it(tmp_path, path_dir):
    with pytest.raises(backends.MissingBackend, match="python -m pipeline.backends"):
        backends.binary("vmalert", tmp_path)


@pytest.mark.parametrize("name", ["prometheus", "promtool", "alertmanager", "amtool", "node_exporter"])
def test_cached_binaries_run_and_report_the_recorded_version(name):
    path = require_binary(name)
    if not path.is_relative_to(backends.CACHE_DIR):
        pytest.skip(f"{name} comes from PATH ({path})")
    recorded = backends.recorded_versions()[backends.TOOLS[name].package]
    assert ".".join(map(str, backends.version_of(path))) == re.match(r"[\d.]+\d", recorded).group()


def test_ensure_is_a_no_op_when_everything_is_there(monkeypatch):
    for name, tool in backends.TOOLS.items():
        if tool.package:
            require_binary(name)
    monkeypatch.setattr(backends, "_fetch", lambda *args: pytest.fail("ensure() fetched although all was there"))
    backends.ensure()
