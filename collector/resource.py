"""The agent's identity: resource attributes for every metric it sends.

Read locally, as the collector's resourcedetection `system` detector offers them: host and OS always;
CPU model and network addresses only when asked for (they add labels to every series); the cloud
provider from the firmware's DMI strings, with no call to a metadata endpoint.
"""

import ipaddress
import os
import platform
import socket
import uuid
from dataclasses import dataclass

from opentelemetry.sdk.resources import OTELResourceDetector, Resource

from collector import __version__
from collector.host import Host
from collector.sources.network import physical_address

try:  # the interpreter's own SHA-1, as the random module takes its SHA-512: hashlib (which uuid.uuid5 imports)
    from _sha1 import sha1  # loads OpenSSL's digests, 2 MiB of RSS for one hash at start-up
except ImportError:
    from hashlib import sha1

DEFAULT_SERVICE_NAME = "hostagent"
# semconv host.arch values for what platform.machine() reports
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm32", "ppc64le": "ppc64", "s390x": "s390x"}
# service.instance.id from an inherent ID: a UUIDv5 in the namespace the semantic conventions give for it
INSTANCE_NAMESPACE = uuid.UUID("4d63009a-8d0f-11ee-aad7-4c796ed8e320")
# /proc/cpuinfo field → semconv host.cpu.* attribute
CPUINFO = {"vendor_id": "host.cpu.vendor.id", "cpu family": "host.cpu.family", "model": "host.cpu.model.id",
           "model name": "host.cpu.model.name", "stepping": "host.cpu.stepping"}
# (DMI file, text it starts with) → (cloud.provider, cloud.platform)
CLOUDS = {
    ("sys_vendor", "Amazon EC2"): ("aws", "aws_ec2"),
    ("product_name", "Google Compute Engine"): ("gcp", "gcp_compute_engine"),
    ("chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77"): ("azure", "azure.vm"),  # Azure's fixed tag
}


@dataclass(frozen=True)
class ResourceConfig:
    # host.cpu.vendor.id, .family, .model.id, .model.name, .stepping, .cache.l2.size (from /proc/cpuinfo)
    host_cpu: bool = False
    # host.ip and host.mac of the host's interfaces (not loopback)
    host_network: bool = False


def build_resource(host: Host, environ=os.environ, config: ResourceConfig = ResourceConfig()) -> Resource:
    detected = {
        "service.name": DEFAULT_SERVICE_NAME,
        "service.version": __version__,
        "host.name": socket.gethostname(),
        "host.arch": ARCHITECTURES.get(platform.machine(), platform.machine()),
        "os.type": "linux",
        **read_os_release(host),
        **read_cloud(host),
    }
    if machine_id := read_machine_id(host):
        detected["host.id"] = machine_id
    if config.host_cpu:
        detected.update(read_cpuinfo(host))
    if config.host_network:
        detected.update(network_addresses(host))
    # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win over what we detect.
    attributes = {**detected, **OTELResourceDetector().detect().attributes}
    if environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = environ["OTEL_SERVICE_NAME"]
    attributes.setdefault("service.instance.id", str(uuid5(
        INSTANCE_NAMESPACE, f"{attributes.get('host.id') or attributes['host.name']}/{attributes['service.name']}")))
    return Resource.create(attributes)


def uuid5(namespace: uuid.UUID, name: str) -> uuid.UUID:
    """uuid.uuid5 (RFC 4122), without hashlib."""
    return uuid.UUID(bytes=sha1(namespace.bytes + name.encode()).digest()[:16], version=5)


def read_machine_id(host: Host) -> str | None:
    for relative in ("machine-id", "../var/lib/dbus/machine-id"):
        try:
            return host.read_etc(relative).strip() or None
        except OSError:
            continue
    return None


def read_os_release(host: Host) -> dict[str, str]:
    """os.description (PRETTY_NAME), os.name (NAME) and os.version (VERSION_ID) of the host's os-release."""
    try:
        text = host.read_etc("os-release")
    except OSError:
        return {}
    fields = {key: value.strip('"') for key, _, value in (line.partition("=") for line in text.splitlines())}
    found = {"os.description": fields.get("PRETTY_NAME"), "os.name": fields.get("NAME"),
             "os.version": fields.get("VERSION_ID")}
    return {key: value for key, value in found.items() if value}


def read_cpuinfo(host: Host) -> dict[str, str | int]:
    """The first processor's identity; every socket of a host runs the same model."""
    first = host.read_proc("cpuinfo").split("\n\n")[0]
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in first.splitlines())}
    found: dict[str, str | int] = {attribute: fields[key] for key, attribute in CPUINFO.items() if fields.get(key)}
    # cpuinfo's "cache size" is the last level on Intel and L2 on AMD: sysfs names the level.
    for index in sorted((host.root / "sys/devices/system/cpu/cpu0/cache").glob("index*")):
        level, size = read_or_empty(index / "level").strip(), read_or_empty(index / "size").strip()
        if level == "2" and size.endswith("K") and size[:-1].isdigit():
            found["host.cpu.cache.l2.size"] = int(size[:-1]) * 1024
    return found


def network_addresses(host: Host) -> dict[str, list[str]]:
    """host.ip and host.mac (semconv format: upper case, hyphens) of every interface but loopback: the addresses
    getifaddrs() gives, read from the host root: its network namespace's fib_trie and if_inet6, /sys/class/net."""
    ips = local_ipv4_addresses(read_or_empty(host.proc / host.net_file("fib_trie")))
    ips += local_ipv6_addresses(read_or_empty(host.proc / host.net_file("if_inet6")))
    macs = set()
    for interface in sorted((host.root / "sys/class/net").glob("*")):
        if interface.name != "lo" and (mac := physical_address(read_or_empty(interface / "address"))):
            macs.add(mac)
    return {key: value for key, value in (("host.ip", ips), ("host.mac", sorted(macs))) if value}


def local_ipv4_addresses(fib_trie: str) -> list[str]:
    """The kernel's local IPv4 addresses but loopback's: the leaves of the routing trie marked "/32 host LOCAL"."""
    found: dict[str, None] = {}  # each address is listed once in the Main and once in the Local table
    leaf = None
    for line in fib_trie.splitlines():
        text = line.strip()
        if text.startswith("|-- "):
            leaf = text[4:]
        elif text == "/32 host LOCAL" and leaf and not ipaddress.IPv4Address(leaf).is_loopback:
            found[leaf] = None
    return list(found)


def local_ipv6_addresses(if_inet6: str) -> list[str]:
    """Each line: the address in 32 hex digits, interface index, prefix length, scope, flags, interface name."""
    return [str(ipaddress.IPv6Address(int(fields[0], 16))) for fields in map(str.split, if_inet6.splitlines())
            if len(fields) == 6 and fields[5] != "lo"]


def read_or_empty(path) -> str:
    """The file's text, or "" where it cannot be read (no IPv6, no sysfs in a container, no DMI): nothing found."""
    try:
        return path.read_text()
    except OSError:
        return ""


def read_cloud(host: Host) -> dict[str, str]:
    dmi = host.root / "sys/class/dmi/id"
    for (name, prefix), (provider, platform_name) in CLOUDS.items():
        if read_or_empty(dmi / name).strip().startswith(prefix):
            return {"cloud.provider": provider, "cloud.platform": platform_name}
    return {}
