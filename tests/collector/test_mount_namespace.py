"""The filesystem source reports the host's filesystems as the host sees them, whatever mount namespace the agent
runs in: systemd's ProtectSystem= remounts every mount read-only for the service, and PrivateTmp= adds a /tmp."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collector.host import Host
from collector.sources.filesystem import FilesystemOptions, FilesystemSource, parse_mounts
from tests.reliability.namespaces import as_systemd_service

REPOSITORY = Path(__file__).parents[2]
HOST_MOUNTS = "/dev/sda1 / ext4 rw,relatime 0 0\n/dev/sdb1 /home ext4 rw,relatime 0 0\n"
SERVICE_MOUNTS = ("/dev/sda1 / ext4 ro,relatime 0 0\n/dev/sdb1 /home ext4 ro,relatime 0 0\n"
                  "/dev/sda1 /tmp ext4 rw,relatime 0 0\n/dev/sda1 /var/tmp ext4 rw,relatime 0 0\n")


def bare_metal_host(root: Path, host_mounts: str | None) -> Host:
    """A Host reading `root` as the agent reads `/` on a host, not as a container's /hostfs: /proc/self/mounts is
    the service's view of the host's mounts; /proc/1/mounts is the host's, if given."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/mounts").write_text(SERVICE_MOUNTS)
    if host_mounts is not None:
        (root / "proc/1").mkdir()
        (root / "proc/1/mounts").write_text(host_mounts)
    for mountpoint in ("home", "tmp", "var/tmp"):
        (root / mountpoint).mkdir(parents=True)
    host = Host(root)
    host.in_container = False
    return host


def modes(points) -> dict[str, str]:
    return {p.attributes["system.filesystem.mountpoint"]: p.attributes["system.filesystem.mode"] for p in points
            if p.metric == "system.filesystem.limit"}


def test_the_host_mount_table_is_read_not_the_service_namespace_s(tmp_path):
    host = bare_metal_host(tmp_path, HOST_MOUNTS)
    assert modes(FilesystemSource(host, FilesystemOptions()).collect()) == {"/": "rw", "/home": "rw"}


def test_where_init_s_table_is_hidden_the_agent_s_own_is_read_and_that_is_logged_once(tmp_path, caplog):
    source = FilesystemSource(bare_metal_host(tmp_path, host_mounts=None), FilesystemOptions())
    with caplog.at_level(logging.INFO, logger="collector.host"):
        first, second = source.collect(), source.collect()
        (tmp_path / "proc/1").mkdir()
        (tmp_path / "proc/1/mounts").write_text(HOST_MOUNTS)
        recovered = source.collect()
    assert modes(first) == modes(second) == {"/": "ro", "/home": "ro", "/tmp": "rw", "/var/tmp": "rw"}
    assert modes(recovered) == {"/": "rw", "/home": "rw"}
    assert [r.getMessage() for r in caplog.records] == [
        "mount table: cannot read /proc/1/mounts (No such file or directory): reading the agent's own, where mounts "
        "its service manager made read-only or private show as such", "mount table: recovered"]


def test_in_a_container_its_own_mount_table_is_never_read(tmp_path):
    host = bare_metal_host(tmp_path, host_mounts=None)
    host.in_container = True
    with pytest.raises(FileNotFoundError):
        FilesystemSource(host, FilesystemOptions()).collect()


def filesystems_in_snapshot(prefix: list[str]) -> dict[str, dict]:
    """`collector snapshot` run behind `prefix`: each filesystem's attributes and size."""
    result = subprocess.run([*prefix, sys.executable, "-m", "collector", "snapshot", "--format", "json"],
                            capture_output=True, text=True, timeout=120, check=True,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    return {p["attributes"]["system.filesystem.mountpoint"]: {**p["attributes"], "size": p["value"]}
            for p in json.loads(result.stdout)["points"] if p["metric"] == "system.filesystem.limit"}


def test_an_agent_in_a_systemd_service_s_mount_namespace_reports_the_host_s_filesystems(tmp_path):
    service = as_systemd_service(tmp_path / "private-tmp")
    own_table = subprocess.run([*service, "cat", "/proc/self/mounts"], capture_output=True, text=True, check=True)
    own_view = {m.mountpoint: m.attributes["system.filesystem.mode"] for m in parse_mounts(own_table.stdout)}
    assert own_view["/"] == "ro" and "/var/tmp" in own_view, "the namespace is not set up as systemd's"
    assert filesystems_in_snapshot(service) == filesystems_in_snapshot([])
