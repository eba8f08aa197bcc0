"""The agent's identity: resource attributes for every metric it sends."""

import os
import platform
import socket
import uuid

from opentelemetry.sdk.resources import OTELResourceDetector, Resource

from collector import __version__
from collector.host import Host

DEFAULT_SERVICE_NAME = "hostagent"
# semconv host.arch values for what platform.machine() reports
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm32", "ppc64le": "ppc64", "s390x": "s390x"}
INSTANCE_NAMESPACE = uuid.UUID("7f3c9e52-8d0a-4f55-9a59-2f3d6e0c4b11")


def build_resource(host: Host, environ=os.environ) -> Resource:
    detected = {
        "service.name": DEFAULT_SERVICE_NAME,
        "service.version": __version__,
        "host.name": socket.gethostname(),
        "host.arch": ARCHITECTURES.get(platform.machine(), platform.machine()),
        "os.type": "linux",
    }
    if machine_id := read_machine_id(host):
        detected["host.id"] = machine_id
    if description := read_os_description(host):
        detected["os.description"] = description
    # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win over what we detect.
    attributes = {**detected, **OTELResourceDetector().detect().attributes}
    if environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = environ["OTEL_SERVICE_NAME"]
    attributes.setdefault("service.instance.id", str(uuid.uuid5(
        INSTANCE_NAMESPACE, f"{attributes.get('host.id') or attributes['host.name']}/{attributes['service.name']}")))
    return Resource.create(attributes)


def read_machine_id(host: Host) -> str | None:
    for relative in ("machine-id", "../var/lib/dbus/machine-id"):
        try:
            return host.read_etc(relative).strip() or None
        except OSError:
            continue
    return None


def read_os_description(host: Host) -> str | None:
    try:
        text = host.read_etc("os-release")
    except OSError:
        return None
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return fields.get("PRETTY_NAME", "").strip('"') or None
