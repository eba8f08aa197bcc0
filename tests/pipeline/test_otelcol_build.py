"""pipeline/otelcol.py: the project's collector distribution from its builder manifest, built once per manifest."""
import io
import subprocess

import pytest
import yaml

from pipeline import otelcol
from pipeline.backends import MissingBackend
from pipeline.testing import require_binary

MODULES = ("receivers", "processors", "exporters", "extensions")


def test_every_module_is_at_one_release():
    config = otelcol.manifest()
    releases = {line.split()[1] for kind in MODULES for line in (entry["gomod"] for entry in config[kind])}
    assert releases == {otelcol.core_release(config)} == {"v0.160.0"}
    assert config["dist"]["version"] == "0.160.0"


def test_mixed_core_releases_are_refused(tmp_path):
    config = otelcol.manifest()
    config["processors"].append({"gomod": "go.opentelemetry.io/collector/processor/batchprocessor v0.165.0"})
    with pytest.raises(otelcol.BuildFailed, match="must share one release"):
        otelcol.core_release(config)


def test_the_hostmetrics_receiver_is_in_the_distribution():
    gomods = [entry["gomod"] for entry in otelcol.manifest()["receivers"]]
    assert any("/receiver/hostmetricsreceiver " in line for line in gomods)


def test_a_missing_build_names_the_make_target(tmp_path):
    with pytest.raises(MissingBackend, match="make otelcol"):
        otelcol.binary(cache_dir=tmp_path)


def test_an_unchanged_manifest_is_not_built_again(tmp_path, monkeypatch):
    built = otelcol.build_dir(cache_dir=tmp_path) / otelcol.manifest()["dist"]["name"]
    built.parent.mkdir(parents=True)
    built.write_bytes(b"")
    monkeypatch.setenv("PATH", "")  # no go: any attempt to build would fail
    assert otelcol.build(cache_dir=tmp_path, log=io.StringIO()) == built


def test_a_changed_manifest_is_another_build(tmp_path):
    changed = tmp_path / "builder-config.yaml"
    changed.write_text(otelcol.MANIFEST.read_text() + "# edited\n")
    assert otelcol.build_dir(changed, tmp_path) != otelcol.build_dir(cache_dir=tmp_path)


def test_without_go_the_build_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(otelcol.BuildFailed) as failure:
        otelcol.build(cache_dir=tmp_path, log=io.StringIO())
    assert str(failure.value) == f"Go is not installed, and the gateway is built from Go modules: {otelcol.HINT}"


def test_the_built_collector_has_exactly_the_manifests_components():
    binary = require_binary("otelcol")
    done = subprocess.run([str(binary), "components"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = yaml.safe_load(done.stdout)
    config = otelcol.manifest()
    for kind in MODULES:
        modules = {entry["gomod"].split()[0] for entry in config[kind]}
        assert {component["module"].split()[0] for component in listed[kind]} == modules, kind
