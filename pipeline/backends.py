"""The pipeline's backend binaries: from PATH when adequate, else from Debian trixie packages.

The packages are fetched with a private apt state (the system's apt setup is left untouched),
using the Debian mirror named by the machine's own deb822 sources, and unpacked with
`dpkg -x` into `.cache/backends/`. `versions.json` there records the package versions.

    binary("prometheus")     -> Path    (raises MissingBackend when neither PATH nor cache has it)
    prometheus_web_assets()  -> Path | None   the cached Prometheus' web UI, for --web.local-assets
    ensure()                 -> fetch whatever is missing (idempotent; a no-op when cached)
    python -m pipeline.backends   fetch, then print where each binary comes from and its version
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache" / "backends"
SOURCES_DIR = Path("/etc/apt/sources.list.d")
SUITE = "trixie"
HINT = "run `python -m pipeline.backends` from the repository root to fetch it"


class MissingBackend(FileNotFoundError):
    pass


@dataclass(frozen=True)
class Tool:
    package: str                 # Debian package shipping it
    packaged_name: str           # file name in the package's /usr/bin
    path_names: tuple[str, ...]  # names it may have on PATH
    minimum: tuple[int, ...]     # oldest version accepted from PATH


TOOLS: dict[str, Tool] = {
    "prometheus": Tool("prometheus", "prometheus", ("prometheus",), (2, 53)),
    "promtool": Tool("promtool", "promtool", ("promtool",), (2, 53)),
    "alertmanager": Tool("prometheus-alertmanager", "prometheus-alertmanager",
                         ("alertmanager", "prometheus-alertmanager"), (0, 27)),
    "amtool": Tool("prometheus-alertmanager", "amtool", ("amtool",), (0, 27)),
    "victoria-metrics": Tool("victoria-metrics", "victoria-metrics",
                             ("victoria-metrics", "victoria-metrics-prod"), (1, 112)),
    "vmagent": Tool("victoria-metrics", "vmagent", ("vmagent", "vmagent-prod"), (1, 112)),
    "vmalert": Tool("victoria-metrics", "vmalert", ("vmalert", "vmalert-prod"), (1, 112)),
    "vmalert-tool": Tool("victoria-metrics", "vmalert-tool",
                         ("vmalert-tool", "vmalert-tool-prod"), (1, 112)),
    "node_exporter": Tool("prometheus-node-exporter", "prometheus-node-exporter",
                          ("node_exporter", "prometheus-node-exporter"), (1, 8)),
}
# What the Prometheus package's classic UI loads through its static/ symlinks to ../../../javascript/…
# (its Depends, plus rickshaw's d3): unpacked beside it in the cache, so those relative links resolve.
WEB_ASSET_PACKAGES = ("fonts-glyphicons-halflings", "libjs-bootstrap4", "libjs-d3",
                      "libjs-eonasdan-bootstrap-datetimepicker", "libjs-jquery", "libjs-jquery-hotkeys",
                      "libjs-moment", "libjs-moment-timezone", "libjs-mustache", "libjs-popper.js", "libjs-rickshaw")
_VERSION = re.compile(r"(?<![\d.])v?(\d+)\.(\d+)\.(\d+)")


def binary(name: str, cache_dir: Path = CACHE_DIR) -> Path:
    """The binary to run for `name`: an adequate one on PATH, else the cached package's."""
    tool = TOOLS[name]
    found = _on_path(name)
    if found:
        return found
    cached = cache_dir / "usr" / "bin" / tool.packaged_name
    if cached.is_file():
        return cached
    raise MissingBackend(f"{name} is not available: {HINT}")


def ensure(cache_dir: Path = CACHE_DIR) -> None:
    """Fetch the package of every tool that is neither on PATH nor cached, and the web UI's assets."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with locked(cache_dir / ".lock"):
        missing = sorted({tool.package for name, tool in TOOLS.items()
                          if not available(name, cache_dir)})
        recorded = recorded_versions(cache_dir)
        missing += [package for package in WEB_ASSET_PACKAGES if package not in recorded]
        if missing:
            _fetch(missing, cache_dir)


def prometheus_web_assets(cache_dir: Path = CACHE_DIR) -> Path | None:
    """The classic UI unpacked beside the cached Prometheus; None when Prometheus comes from PATH (its package
    installed the UI where it looks by default) or the cache has no UI."""
    web = cache_dir / "usr" / "share" / "prometheus" / "web"
    cached = binary("prometheus", cache_dir).is_relative_to(cache_dir)
    return web if cached and (web / "templates").is_dir() else None


def recorded_versions(cache_dir: Path = CACHE_DIR) -> dict[str, str]:
    path = cache_dir / "versions.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def version_of(path: Path) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(out.stdout + out.stderr)
    return tuple(int(part) for part in match.groups()) if match else None


def debian_mirror(sources_dir: Path = SOURCES_DIR) -> tuple[str, str | None]:
    """(URI, Signed-By) of the main Debian archive named by the machine's deb822 sources."""
    for path in sorted(sources_dir.glob("*.sources")):
        for stanza in _deb822_stanzas(path.read_text()):
            uris = stanza.get("URIs", "").split()
            suites = stanza.get("Suites", "").split()
            if "deb" in stanza.get("Types", "").split() and "main" in stanza.get("Components", "").split():
                for uri in uris:
                    if uri.rstrip("/").endswith("/debian") and not any(s.endswith("-security") for s in suites):
                        return uri, stanza.get("Signed-By")
    raise RuntimeError(f"no Debian archive URI found in {sources_dir}/*.sources")


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas, current = [], {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
        elif not line.startswith("#") and ":" in line and not line[0].isspace():
            key, _, value = line.partition(":")
            current[key.strip()] = value.strip()
    return stanzas


@cache
def _on_path(name: str) -> Path | None:
    tool = TOOLS[name]
    for candidate in tool.path_names:
        found = shutil.which(candidate)
        if found and (version_of(Path(found)) or ()) >= tool.minimum:
            return Path(found)
    return None


def available(name: str, cache_dir: Path = CACHE_DIR) -> bool:
    try:
        binary(name, cache_dir)
    except MissingBackend:
        return False
    return True


def _fetch(packages: list[str], cache_dir: Path) -> None:
    uri, signed_by = debian_mirror()
    option = f"[signed-by={signed_by}] " if signed_by else ""
    with tempfile.TemporaryDirectory(prefix="apt-", dir=cache_dir) as tmp:
        state = Path(tmp)
        (state / "lists" / "partial").mkdir(parents=True)
        (state / "archives" / "partial").mkdir(parents=True)
        (state / "sources.list").write_text(f"deb {option}{uri} {SUITE} main\n")
        apt = ["apt-get", "-q",
               "-o", f"Dir::Etc::SourceList={state / 'sources.list'}",
               "-o", "Dir::Etc::SourceParts=/dev/null",
               "-o", f"Dir::State::Lists={state / 'lists'}",
               "-o", f"Dir::Cache={state}",
               "-o", "Debug::NoLocking=1",
               "-o", "APT::Sandbox::User=root"]
        _run(apt + ["update"], cwd=state)
        _run(apt + ["download", *packages], cwd=state)
        versions = recorded_versions(cache_dir)
        for deb in sorted(state.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(cache_dir)])
            package, version = _run(["dpkg-deb", "-f", str(deb), "Package", "Version"]).split("\n")[:2]
            versions[package.partition(": ")[2]] = version.partition(": ")[2]
    _write_json(cache_dir / "versions.json", versions)


def _run(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv[:2])} … failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


@contextmanager
def locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _table(cache_dir: Path) -> list[tuple[str, str, str]]:
    versions = recorded_versions(cache_dir)
    rows = []
    for name, tool in TOOLS.items():
        try:
            path = binary(name, cache_dir)
        except MissingBackend as missing:
            rows.append((name, "-", str(missing)))
            continue
        cached = path.is_relative_to(cache_dir)
        version = versions.get(tool.package, "?") if cached else ".".join(map(str, version_of(path) or ()))
        rows.append((name, version, str(path)))
    return rows


def main() -> int:
    try:
        ensure()
    except RuntimeError as failure:
        print(f"could not fetch the backends: {failure}", file=sys.stderr)
        return 1
    rows = _table(CACHE_DIR)
    width = max(len(name) for name, _, _ in rows)
    for name, version, where in rows:
        print(f"{name:<{width}}  {version:<16}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
