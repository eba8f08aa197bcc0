"""The project's OpenTelemetry Collector distribution, built from otel-config/builder-config.yaml.

The OpenTelemetry Collector Builder (go.opentelemetry.io/collector/cmd/builder, at the release of the manifest's
core modules) generates the distribution's sources and runs `go build`. The result is cached under
`.cache/otelcol/<hash of the manifest>/`, so a second build of an unchanged manifest is a no-op.

    binary()                 -> Path of the built collector (MissingBackend when it was not built yet)
    build()                  -> build it unless cached; returns its path
    python -m pipeline.otelcol   build, then print the path (what `make otelcol` runs)
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from pipeline.backends import REPO_ROOT, MissingBackend, locked

MANIFEST = REPO_ROOT / "otel-config" / "builder-config.yaml"
CACHE_DIR = REPO_ROOT / ".cache" / "otelcol"
BUILDER_MODULE = "go.opentelemetry.io/collector/cmd/builder"
CORE_PREFIX = "go.opentelemetry.io/collector/"
HINT = "run `make otelcol` (needs Go: on Debian `apt-get install golang-go`, or a release from https://go.dev/dl/)"


class BuildFailed(RuntimeError):
    pass


def manifest(path: Path = MANIFEST) -> dict:
    return yaml.safe_load(path.read_text())


def core_release(config: dict) -> str:
    """The single release of the manifest's go.opentelemetry.io/collector modules (the builder's own release)."""
    versions = {line.split()[1] for kind in ("receivers", "processors", "exporters", "extensions", "connectors")
                for line in (entry["gomod"] for entry in config.get(kind, ()))
                if line.startswith(CORE_PREFIX)}
    if len(versions) != 1:
        raise BuildFailed(f"{MANIFEST.name}: the collector core modules must share one release, "
                          f"found {sorted(versions)}")
    return versions.pop()


def build_dir(path: Path = MANIFEST, cache_dir: Path = CACHE_DIR) -> Path:
    return cache_dir / hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def binary(path: Path = MANIFEST, cache_dir: Path = CACHE_DIR) -> Path:
    built = build_dir(path, cache_dir) / manifest(path)["dist"]["name"]
    if not built.is_file():
        raise MissingBackend(f"the project's collector ({built.name}) is not built: {HINT}")
    return built


def build(path: Path = MANIFEST, cache_dir: Path = CACHE_DIR, log=sys.stderr) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with locked(cache_dir / ".lock"):
        try:
            return binary(path, cache_dir)
        except MissingBackend:
            pass
        go = shutil.which("go")
        if go is None:
            raise BuildFailed(f"Go is not installed, and the gateway is built from Go modules: {HINT}")
        config = manifest(path)
        target = build_dir(path, cache_dir)
        started = time.monotonic()
        print(f"building {config['dist']['name']} from {path.relative_to(REPO_ROOT)} "
              "(a cold build takes several minutes) ...", file=log, flush=True)
        builder = _install_builder(go, core_release(config), cache_dir)
        sources = target.with_name(target.name + ".src")
        shutil.rmtree(sources, ignore_errors=True)
        sources.mkdir()
        config["dist"]["output_path"] = str(sources)
        (sources / "builder-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        _run([str(builder), f"--config={sources / 'builder-config.yaml'}", "--ldflags=-s -w"])
        target.mkdir(exist_ok=True)
        built = target / config["dist"]["name"]
        os.replace(sources / config["dist"]["name"], built)
        shutil.rmtree(sources)
        print(f"built {built} in {time.monotonic() - started:.0f} s ({built.stat().st_size / 2**20:.0f} MiB)",
              file=log, flush=True)
        return built


def _install_builder(go: str, release: str, cache_dir: Path) -> Path:
    bin_dir = cache_dir / "builder" / release
    builder = bin_dir / "builder"
    if not builder.is_file():
        _run([go, "install", f"{BUILDER_MODULE}@{release}"], env={"GOBIN": str(bin_dir)})
    return builder


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode:
        raise BuildFailed(f"{' '.join(argv[:2])} … failed ({done.returncode}): {done.stderr.strip()[-3000:]}")


def main() -> int:
    try:
        print(build())
    except BuildFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
