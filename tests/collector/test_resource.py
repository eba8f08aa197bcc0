"""Identity: resource attributes from the host, overridable by the standard OTEL_* variables."""

import platform
import socket
import uuid

import psutil

from collector.host import Host
from collector.resource import INSTANCE_NAMESPACE, ResourceConfig, build_resource, network_addresses

DEFAULT_CONFIG = ResourceConfig()


def attributes(host, monkeypatch, config=DEFAULT_CONFIG, **environ):
    for name in ("OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return dict(build_resource(host, environ, config).attributes)


def test_host_identity_from_the_host_root(fixture_host, monkeypatch):
    found = attributes(fixture_host, monkeypatch)
    assert found["host.id"] == "0123456789abcdef0123456789abcdef"
    assert found["os.description"] == "Debian GNU/Linux 12 (bookworm)"
    assert (found["os.name"], found["os.version"]) == ("Debian GNU/Linux", "12")
    assert (found["cloud.provider"], found["cloud.platform"]) == ("aws", "aws_ec2")  # DMI sys_vendor
    assert not any(key.startswith(("host.cpu.", "host.ip", "host.mac")) for key in found), "opt-in only"
    assert found["os.type"] == "linux"
    assert found["service.name"] == "hostagent"
    assert found["host.name"] == socket.gethostname()
    assert found["host.arch"] == {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def test_the_instance_id_is_stable_and_differs_per_host(fixture_host, monkeypatch):
    first = attributes(fixture_host, monkeypatch)["service.instance.id"]
    assert first == attributes(fixture_host, monkeypatch)["service.instance.id"]
    other = attributes(fixture_host, monkeypatch, OTEL_RESOURCE_ATTRIBUTES="host.id=another-machine")
    assert other["service.instance.id"] != first
    assert other["service.instance.id"] == str(uuid.uuid5(INSTANCE_NAMESPACE, "another-machine/hostagent"))


def test_environment_adds_and_overrides_attributes(fixture_host, monkeypatch):
    found = attributes(fixture_host, monkeypatch,
                       OTEL_RESOURCE_ATTRIBUTES="k8s.node.name=node-1,host.name=node-1,k8s.cluster.name=prod",
                       OTEL_SERVICE_NAME="edge-agent")
    assert (found["k8s.node.name"], found["host.name"], found["k8s.cluster.name"]) == ("node-1", "node-1", "prod")
    assert found["service.name"] == "edge-agent"


def test_cpu_identity_is_opt_in_and_read_from_cpuinfo_and_sysfs(fixture_host, monkeypatch):
    found = attributes(fixture_host, monkeypatch, ResourceConfig(host_cpu=True))
    assert {key: value for key, value in found.items() if key.startswith("host.cpu.")} == {
        "host.cpu.vendor.id": "GenuineIntel", "host.cpu.family": "6", "host.cpu.model.id": "85",
        "host.cpu.model.name": "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", "host.cpu.stepping": "4",
        "host.cpu.cache.l2.size": 1024 * 1024}  # index2 of cpu0's caches, not the L3 cpuinfo names


def test_network_addresses_are_opt_in_and_read_from_the_host_root(fixture_host, monkeypatch):
    found = attributes(fixture_host, monkeypatch, ResourceConfig(host_network=True))
    # the fixture's routing trie lists 10.0.0.7 in two tables, loopback's addresses are left out
    assert list(found["host.ip"]) == ["10.0.0.7", "fe80::5054:ff:fe12:3456"]
    assert list(found["host.mac"]) == ["52-54-00-12-34-56"]


def test_network_addresses_are_those_getifaddrs_gives_on_this_machine():
    interfaces = {name: addresses for name, addresses in psutil.net_if_addrs().items() if name != "lo"}
    expected_ips = {a.address.split("%")[0] for addresses in interfaces.values() for a in addresses
                    if a.family in (socket.AF_INET, socket.AF_INET6)}
    expected_macs = {a.address.upper().replace(":", "-") for addresses in interfaces.values() for a in addresses
                     if a.family == psutil.AF_LINK and a.address not in ("", "00:00:00:00:00:00")}
    found = network_addresses(Host("/"))
    assert set(found.get("host.ip", [])) == expected_ips
    assert set(found.get("host.mac", [])) == expected_macs


def test_no_cloud_where_the_firmware_names_none(tmp_path, monkeypatch):
    from collector.host import Host
    (tmp_path / "proc").mkdir()
    assert not any(key.startswith("cloud.") for key in attributes(Host(tmp_path), monkeypatch))
