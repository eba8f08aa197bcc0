"""Running the agent in private Linux namespaces (unshare(1)): a tiny tmpfs for a full disk, a network of its
own where the default health port is free, the mounts of a systemd service. Unavailable here: skipped locally, a
failure in CI (env CI set)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pipeline.testing import unavailable


def _usable(wrapper: list[str], what: str) -> list[str]:
    if shutil.which("unshare") and not subprocess.run([*wrapper, "true"], capture_output=True).returncode:
        return wrapper
    unavailable(f"{what} needs unshare(1) (util-linux) and a kernel/sandbox that allows it")


def _as_root() -> list[str]:
    return [] if os.geteuid() == 0 else ["--map-root-user"]


def with_tmpfs(directory: Path, options: str) -> list[str]:
    """A command prefix: run the rest with a tmpfs mounted on `directory` with `options` (size=64k: a small disk;
    ro: one nobody, root included, can write to), in a private mount namespace."""
    directory.mkdir(parents=True, exist_ok=True)
    script = 'mount -t tmpfs -o "$1" tmpfs "$2" && shift 2 && exec "$@"'
    return _usable(["unshare", "--mount", *_as_root(), "sh", "-c", script, "tmpfs", options, str(directory)],
                   "a full-disk test")


def with_own_network() -> list[str]:
    """A command prefix: run the rest in a private network namespace with only loopback, up."""
    script = 'ip link set lo up && exec "$@"'
    return _usable(["unshare", "--net", *_as_root(), "sh", "-c", script, "netns"], "a private network (and ip(8))")


def as_systemd_service(private_tmp: Path) -> list[str]:
    """A command prefix: run the rest with the mounts systemd gives the agent's service (ProtectSystem=: `/`
    read-only in a namespace of its own; PrivateTmp=: a private directory on /var/tmp — and /tmp, left out here:
    hiding /tmp would hide a checkout or a venv under it) and no capabilities (CapabilityBoundingSet=)."""
    private_tmp.mkdir(parents=True, exist_ok=True)
    script = 'mount --bind "$1" /var/tmp && mount -o remount,bind,ro / && shift && exec "$@"'
    no_capabilities = ["setpriv", "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--"]
    return _usable(["unshare", "--mount", "--propagation", "slave", *_as_root(), "sh", "-c", script, "service",
                    str(private_tmp), *no_capabilities], "a systemd service's mount namespace (and setpriv(1))")
