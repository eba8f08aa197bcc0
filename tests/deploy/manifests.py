"""Helpers for the deployment tests: paths, tools, rendered manifests and lookups in them."""

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from pipeline.testing import unavailable

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = sorted(path.name for path in (KUBERNETES / "overlays").iterdir() if path.is_dir())
OTELCOL_OVERLAYS = ("both", "prometheus", "victoriametrics", "scaled")
# The clustered backend the scaled overlay writes to (applied on its own, into the monitoring namespace).
VICTORIAMETRICS_CLUSTER = KUBERNETES / "victoriametrics-cluster"
# The hostagent namespace, applied once before any overlay and never deleted with one (its claims hold queues).
NAMESPACE = KUBERNETES / "namespace"
PLACEHOLDER = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def require_tool(name: str, how: str) -> str:
    """The path of a command-line tool; skips without it, except in CI (env CI set), where it fails."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not on PATH ({how})")
    return path


def render(directory: Path) -> list[dict]:
    kubectl = require_tool("kubectl", "kubectl ships its own kustomize: install the kubectl package")
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(manifests: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict) -> dict:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: expected one container"
    return containers[0]


def env(container_spec: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container_spec.get("env", [])}


def config_map_data(manifests: list[dict], prefix: str) -> dict[str, str]:
    """The data of the generated ConfigMap whose name (before kustomize's hash suffix) is prefix."""
    matches = [m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"].rsplit("-", 1)[0] == prefix]
    assert len(matches) == 1, f"expected one ConfigMap {prefix}-<hash>, found {len(matches)}"
    return matches[0]["data"]


def container_port(container_spec: dict, port: int | str) -> int:
    """A probe's or NetworkPolicy's port, named or numbered, as the container's port number."""
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container_spec.get("ports", []) if p.get("name") == port]
    assert numbers, f"container {container_spec['name']} has no port named {port}"
    return numbers[0]


def workloads(manifests: list[dict]) -> list[dict]:
    return [m for m in manifests if m["kind"] in ("DaemonSet", "StatefulSet", "Deployment")]


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory or storage quantity (binary suffixes, as these manifests use) in bytes."""
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    suffix = quantity[-2:]
    return int(float(quantity[:-2]) * suffixes[suffix]) if suffix in suffixes else int(quantity)


# What the downward API gives a pod on an example node.
FIELDS = {"spec.nodeName": "node-1", "status.podIP": "10.0.0.7"}


def pod_environment(manifests: list[dict], workload: dict) -> dict[str, str]:
    """The container's environment as the kubelet builds it on an example node ($(VAR) expanded)."""
    resolved = {}
    for name, item in env(container(workload)).items():
        if "fieldRef" in item.get("valueFrom", {}):
            resolved[name] = FIELDS[item["valueFrom"]["fieldRef"]["fieldPath"]]
        elif "value" in item:
            resolved[name] = re.sub(r"\$\((\w+)\)", lambda m: resolved.get(m.group(1), m.group(0)), item["value"])
        else:
            ref = item["valueFrom"]["configMapKeyRef"]
            data = find(manifests, "ConfigMap", ref["name"])["data"]
            if ref.get("optional") and ref["key"] not in data:
                continue
            assert ref["key"] in data, f"{name}: ConfigMap {ref['name']} has no key {ref['key']}"
            resolved[name] = data[ref["key"]]
    return resolved


def expand(config: dict, environment: dict[str, str]) -> dict:
    """A collector config with its ${env:NAME:-default} placeholders filled from environment."""
    def one(match):
        name, default = match.groups()
        assert name in environment or default is not None, f"${{env:{name}}} is set nowhere"
        return environment.get(name, default)
    return yaml.safe_load(PLACEHOLDER.sub(one, yaml.safe_dump(config)))
