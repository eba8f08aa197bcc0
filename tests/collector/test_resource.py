"""Identity: resource attributes from the host, overridable by the standard OTEL_* variables."""

import platform
import socket
import uuid

import psutil
import pytest

from collector.host import Host
from collector.render import CONFORMANCE_NOTES
from collector.resource import ResourceConfig, build_resource, network_addresses

DEFAULT_CONFIG = ResourceConfig()
# service.instance.id's note (semantic conventions v1.44.0, model/service/registry.yaml): an inherent ID "SHOULD be
# used as source of a UUID Version 5 and SHOULD use the following UUID as the namespace"
SEMCONV_INSTANCE_NAMESPACE = uuid.UUID("4d63009a-8d0f-11ee-aad7-4c796ed8e320")


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


# semconv host.arch (model/host/registry.yaml): amd64, arm32, arm64, ia64, ppc32, ppc64, s390x, x86
@pytest.mark.parametrize("machine, arch", [
    ("x86_64", "amd64"), ("aarch64", "arm64"), ("armv7l", "arm32"), ("ppc64le", "ppc64"), ("s390x", "s390x"),
    ("riscv64", "riscv64")])  # none in the model: as uname gives it
def test_host_arch_is_the_semconv_name_of_the_machine(fixture_host, monkeypatch, machine, arch):
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert attributes(fixture_host, monkeypatch)["host.arch"] == arch


def test_the_instance_id_is_stable_and_differs_per_host(fixture_host, monkeypatch):
    first = attributes(fixture_host, monkeypatch)["service.instance.id"]
    assert first == attributes(fixture_host, monkeypatch)["service.instance.id"]
    other = attributes(fixture_host, monkeypatch, OTEL_RESOURCE_ATTRIBUTES="host.id=another-machine")
    assert other["service.instance.id"] != first
    assert other["service.instance.id"] == str(uuid.uuid5(SEMCONV_INSTANCE_NAMESPACE, "another-machine/hostagent"))


def test_the_instance_id_is_a_uuid5_of_the_host_and_service_in_the_models_namespace(fixture_host, monkeypatch):
    found = attributes(fixture_host, monkeypatch, OTEL_SERVICE_NAME="edge-agent")
    instance = uuid.UUID(found["service.instance.id"])
    assert instance.version == 5
    assert instance == uuid.uuid5(SEMCONV_INSTANCE_NAMESPACE, "0123456789abcdef0123456789abcdef/edge-agent")


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


def cloud(provider: str, platform: str) -> dict[str, str]:
    return {"cloud.provider": provider, "cloud.platform": platform}


# The DMI strings of each cloud's virtual machines (/sys/class/dmi/id).
@pytest.mark.parametrize("dmi, expected", [
    ({"sys_vendor": "Amazon EC2", "product_name": "m5.large"}, cloud("aws", "aws_ec2")),
    ({"sys_vendor": "Google", "product_name": "Google Compute Engine"}, cloud("gcp", "gcp_compute_engine")),
    ({"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine",
      "chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77"}, cloud("azure", "azure.vm")),
    # Hyper-V outside Azure: the same vendor and product, another asset tag
    ({"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine",
      "chassis_asset_tag": "0000-0012-5671-8452-5402-9185-48"}, {}),
    ({"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}, {}),
    ({}, {}),  # no DMI (a container without /sys)
], ids=["aws", "gcp", "azure", "hyper-v", "qemu", "none"])
def test_the_cloud_is_read_from_the_firmwares_dmi_strings(tmp_path, monkeypatch, dmi, expected):
    (tmp_path / "proc").mkdir()
    (tmp_path / "sys/class/dmi/id").mkdir(parents=True)
    for name, text in dmi.items():
        (tmp_path / "sys/class/dmi/id" / name).write_text(text + "\n")
    found = attributes(Host(tmp_path), monkeypatch)
    assert {key: value for key, value in found.items() if key.startswith("cloud.")} == expected


def ec2_host(root) -> Host:
    """A host root of an EC2 virtual machine, as the agent reads it: a machine id and the firmware's DMI vendor."""
    (root / "proc").mkdir()
    (root / "etc").mkdir()
    (root / "etc/machine-id").write_text("fedcba9876543210fedcba9876543210\n")
    (root / "sys/class/dmi/id").mkdir(parents=True)
    (root / "sys/class/dmi/id/sys_vendor").write_text("Amazon EC2\n")
    return Host(root)


def test_host_id_on_a_cloud_vm_is_the_machine_id_unless_the_environment_names_the_instance(tmp_path, monkeypatch):
    """The model's host.id on a cloud VM is the provider's instance id, which only its metadata service answers for
    certain: the agent reads locally (as resourcedetection's `system` detector), a documented departure."""
    host = ec2_host(tmp_path)
    detected = attributes(host, monkeypatch)
    assert (detected["cloud.provider"], detected["host.id"]) == ("aws", "fedcba9876543210fedcba9876543210")
    named = attributes(host, monkeypatch, OTEL_RESOURCE_ATTRIBUTES="host.id=i-0af01c0123456789a")
    assert (named["cloud.provider"], named["host.id"]) == ("aws", "i-0af01c0123456789a")
    assert named["service.instance.id"] == str(uuid.uuid5(SEMCONV_INSTANCE_NAMESPACE, "i-0af01c0123456789a/hostagent"))
    notes = " ".join(CONFORMANCE_NOTES)
    assert "`host.id` is the machine id also on a cloud VM" in notes
    assert "OTEL_RESOURCE_ATTRIBUTES=host.id=" in notes
