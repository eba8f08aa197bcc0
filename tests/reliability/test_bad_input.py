"""Bad input from outside the agent: endpoints that are not there or not OTLP, a broken or huge /proc,
names that are not UTF-8, TLS files that are missing or not PEM. Each gives a clear error, or handling that
is bounded, counted and logged once while the agent goes on."""
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collector.agent import build_collection
from collector.config import load
from collector.host import Host
from collector.telemetry import AgentTelemetry
from pipeline.testing import free_port, running, wait_for
from tests.reliability.agent_process import AgentProcess
from tests.reliability.endpoint import Endpoint
from tests.reliability.otlp import latest, points, read_backlog_file, times_ms

FIXTURE_HOST = Path(__file__).parents[1] / "collector" / "fixtures" / "hostfs"
MANY = 5000


def test_an_unreachable_endpoint_keeps_data_until_one_listens_there(tmp_path):
    port = free_port()
    with running(AgentProcess(tmp_path / "agent", f"http://127.0.0.1:{port}/v1/metrics")) as agent:
        wait_for(lambda: len(agent.backlog_files()) >= 4, timeout=30, what="requests kept in the backlog")
        held = times_ms(map(read_backlog_file, agent.backlog_files()), "system.uptime")
        assert agent.running()
        with Endpoint(port=port) as receiver:
            wait_for(lambda: not agent.backlog_files(), timeout=30, what="the backlog delivered")
            received = receiver.received()
        log = agent.log()
    arrival = [t // 1_000_000 for t, _, _ in points(received, "system.uptime")]
    assert held <= set(arrival) and arrival == sorted(arrival), "not every held request came, oldest first"
    assert log.count("Connection refused") == 1 and log.count("export: recovered") == 1, log


def test_a_non_otlp_endpoint_rejects_requests_which_are_dropped_counted_and_logged_once(tmp_path):
    with Endpoint(status=404, content_type="text/html", body=b"<html><h1>Not Found</h1></html>") as website:
        with running(AgentProcess(tmp_path / "agent", website.url("/index.html"))) as agent:
            wait_for(lambda: len(website.received()) >= 5, timeout=30, what="five refused requests")
            assert agent.running()
            assert not agent.backlog_files(), "a request the endpoint refuses for good is not worth keeping"
            log = agent.log()
        refused = website.received()
    assert latest(refused, "hostagent.export.requests", hostagent_outcome="failure") >= 4
    assert latest(refused, "hostagent.backlog.dropped") >= 4
    assert log.count("HTTP 404") == 1, log


def broken_host(tmp_path) -> Path:
    """The fixture host with /proc/meminfo missing, /proc/diskstats unreadable (a directory: root can read any
    file whatever its mode) and /proc/loadavg garbled."""
    root = shutil.copytree(FIXTURE_HOST, tmp_path / "hostfs")
    (root / "proc/meminfo").unlink()
    (root / "proc/diskstats").unlink()
    (root / "proc/diskstats").mkdir()
    (root / "proc/loadavg").write_text("not a load average\n")
    return root


def test_missing_and_unreadable_proc_files_cost_only_their_own_sources(tmp_path):
    with Endpoint() as receiver:
        agent = AgentProcess(tmp_path / "agent", receiver.url(), environment={"HOSTAGENT_HOST_ROOT": str(
            broken_host(tmp_path))})
        with running(agent):
            wait_for(lambda: len(receiver.received()) >= 4, timeout=30, what="four exports")
            assert agent.running()
            log = agent.log()
        received = receiver.received()

    def collections(source, outcome):
        return latest(received, "hostagent.source.collections", hostagent_source=source, hostagent_outcome=outcome)
    for broken in ("memory", "disk", "load"):
        assert collections(broken, "error") >= 3 and collections(broken, "success") == 0, broken
        assert log.count(f"source {broken}:") == 1, log
    assert collections("cpu", "success") >= 3 and collections("network", "success") >= 3
    assert {labels["network.interface.name"] for _, labels, _ in points(received[-1:], "system.network.io")} \
        == {"eth0"}, "the readable sources are still exported"


def bare_host(tmp_path) -> Path:
    """A host tree with only /proc/1 and the /proc/stat host_root needs."""
    root = tmp_path / "hostfs"
    (root / "proc/1").mkdir(parents=True)
    (root / "proc/stat").write_text("cpu  1 2 3 4\n")
    return root


def huge_host(tmp_path) -> Path:
    """A host with 5000 mounts, interfaces and block devices."""
    root = bare_host(tmp_path)
    (root / "proc/1/net").mkdir()
    for n in range(MANY):
        (root / f"mnt/{n}").mkdir(parents=True)
    (root / "proc/1/mounts").write_text("".join(f"/dev/vd{n} /mnt/{n} ext4 rw 0 0\n" for n in range(MANY)))
    (root / "proc/1/net/dev").write_text("Inter-|\n face |\n" + "".join(
        f"eth{n}: " + " ".join(["1"] * 16) + "\n" for n in range(MANY)))
    (root / "proc/diskstats").write_text("".join(
        f"8 {n} disk{n} " + " ".join(["1"] * 11) + "\n" for n in range(MANY)))
    return root


def config_with_only(root: Path, *sources: str):
    """The defaults, reading `root`, with only `sources` enabled, each collected on every refresh."""
    enabled = {f"HOSTAGENT_SOURCES__{name.upper()}__ENABLED": str(name in sources).lower()
               for name in load(None, environ={}).sources}
    return load(None, environ={"HOSTAGENT_HOST_ROOT": str(root), "HOSTAGENT_SOURCES__FILESYSTEM__INTERVAL": "null",
                               **enabled})


@pytest.fixture
def host_at():
    """Build a Host on a fixture tree."""
    return Host


def test_thousands_of_mounts_interfaces_and_devices_stay_within_the_caps(tmp_path, host_at, caplog):
    root = huge_host(tmp_path)
    config = config_with_only(root, "filesystem", "network", "disk")
    telemetry = AgentTelemetry()
    collection = build_collection(config, host_at(root), telemetry)
    caplog.set_level(logging.WARNING, logger="collector.collection")
    for _ in range(3):
        collection.refresh()
    caps = {"filesystem": ("system.filesystem.mountpoint", config.sources["filesystem"].max_filesystems),
            "network": ("network.interface.name", config.sources["network"].max_interfaces),
            "disk": ("system.device", config.sources["disk"].max_devices)}
    for source, (attribute, cap) in caps.items():
        kept = {point.attributes[attribute] for point in collection.latest(source)}
        assert len(kept) == cap < MANY, source
        assert telemetry.sources[source].outcomes == {"error": 3}, source
        assert len([r for r in caplog.records if f"{MANY} " in r.getMessage() and source in r.getMessage()]) == 1


def test_non_utf8_device_names_in_mounts_and_diskstats_become_valid_text(tmp_path, host_at):
    root = bare_host(tmp_path)
    (root / "proc/1/mounts").write_bytes(b"/dev/disk\xff1 / ext4 rw 0 0\n")
    (root / "proc/diskstats").write_bytes(b"8 0 disk\xfe " + b"1 " * 11 + b"\n")
    collection = build_collection(config_with_only(root, "filesystem", "disk"), host_at(root), AgentTelemetry())
    collection.refresh()
    devices = {point.attributes["system.device"] for source in ("filesystem", "disk")
               for point in collection.latest(source)}
    assert devices == {"/dev/disk\\xff1", "disk\\xfe"}
    for device in devices:
        device.encode("utf-8")  # strict: OTLP string attributes must be valid UTF-8


def check_config(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector", "check-config", str(path)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("key", ["certificate", "client_certificate", "client_key"])
@pytest.mark.parametrize("problem", ["missing", "not PEM"])
def test_a_missing_or_invalid_tls_file_is_a_config_error_naming_key_and_file(tmp_path, key, problem):
    tls_file = tmp_path / f"{key}.pem"
    if problem == "not PEM":
        tls_file.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
                            if key != "client_key" else "this is not a private key\n")
    config = tmp_path / "agent.yaml"
    config.write_text(f"exporter:\n  endpoint: https://127.0.0.1:4318/v1/metrics\n  {key}: {tls_file}\n")
    result = check_config(config)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {config}: exporter.{key}: file {tls_file} "), result.stderr


def test_a_non_utf8_mount_point_is_still_measured(tmp_path, host_at):
    root = bare_host(tmp_path)
    (root / os.fsdecode(b"mnt/d\xff")).mkdir(parents=True)
    (root / "proc/1/mounts").write_bytes(b"/dev/sda1 /mnt/d\xff ext4 rw 0 0\n")
    collection = build_collection(config_with_only(root, "filesystem"), host_at(root), AgentTelemetry())
    collection.refresh()
    assert {p.attributes["system.filesystem.mountpoint"] for p in collection.latest("filesystem")} == {"/mnt/d\\xff"}
