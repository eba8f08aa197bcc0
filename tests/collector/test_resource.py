"""Identity: resource attributes from the host, overridable by the standard OTEL_* variables."""

import platform
import socket

from collector.resource import build_resource


def attributes(host, monkeypatch, **environ):
    for name in ("OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return dict(build_resource(host, environ).attributes)


def test_host_identity_from_the_host_root(fixture_host, monkeypatch):
    found = attributes(fixture_host, monkeypatch)
    assert found["host.id"] == "0123456789abcdef0123456789abcdef"
    assert found["os.description"] == "Debian GNU/Linux 12 (bookworm)"
    assert found["os.type"] == "linux"
    assert found["service.name"] == "hostagent"
    assert found["host.name"] == socket.gethostname()
    assert found["host.arch"] == {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def test_the_instance_id_is_stable_and_differs_per_host(fixture_host, monkeypatch):
    first = attributes(fixture_host, monkeypatch)["service.instance.id"]
    assert first == attributes(fixture_host, monkeypatch)["service.instance.id"]
    other = attributes(fixture_host, monkeypatch, OTEL_RESOURCE_ATTRIBUTES="host.id=another-machine")
    assert other["service.instance.id"] != first


def test_environment_adds_and_overrides_attributes(fixture_host, monkeypatch):
    found = attributes(fixture_host, monkeypatch,
                       OTEL_RESOURCE_ATTRIBUTES="k8s.node.name=node-1,host.name=node-1,k8s.cluster.name=prod",
                       OTEL_SERVICE_NAME="edge-agent")
    assert (found["k8s.node.name"], found["host.name"], found["k8s.cluster.name"]) == ("node-1", "node-1", "prod")
    assert found["service.name"] == "edge-agent"
