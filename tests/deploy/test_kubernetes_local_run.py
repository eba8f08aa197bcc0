"""The vmagent overlay's containers run here as processes, with the manifests' args, environment and
ConfigMaps; only addresses and mount paths are mapped to this machine. The agent's data must reach
Prometheus and VictoriaMetrics with the Kubernetes identity labels the DaemonSet sets."""

import json
import re
import urllib.error
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pipeline.services import Server, agent_executable, http_get
from pipeline.testing import free_port, require_binary, running, wait_for
from tests.deploy.dockerfile import final_stage
from tests.deploy.manifests import FIELDS, container, find, pod_environment, pod_spec

IDENTITY = {"__name__", "job", "instance", "host_name", "host_id", "os_type", "k8s_node_name", "k8s_cluster_name"}


class LocalContainer(Server):
    """A container of a rendered workload as a local process, ready when its readiness probe answers."""

    def __init__(self, manifests: list[dict], workload: dict, command: list[str], data_dir: Path,
                 port: int, overrides: dict[str, str]):
        super().__init__(port, data_dir)
        spec = container(workload)
        self.name = spec["name"]
        self.ready_path = spec["readinessProbe"]["httpGet"]["path"]
        mounts = self._mount_volumes(manifests, workload)
        # The executable is a path of this machine (which may itself lie under /tmp): only arguments are remapped.
        self.command = [command[0], *(_remap(part, mounts) for part in [*command[1:], *spec.get("args", [])])]
        self.env = {name: _remap(value, mounts) for name, value in pod_environment(manifests, workload).items()}
        self.env.update(overrides)

    def _mount_volumes(self, manifests, workload) -> dict[str, str]:
        """mountPath -> local path: the host's / stays /, ConfigMaps are written out, other volumes are empty."""
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        mounts = {}
        for mount in container(workload)["volumeMounts"]:
            volume = volumes.get(mount["name"], {})
            if "hostPath" in volume:
                mounts[mount["mountPath"]] = volume["hostPath"]["path"]
                continue
            local = self.data_dir / "volumes" / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = str(local)
            if "configMap" in volume:
                for key, text in find(manifests, "ConfigMap", volume["configMap"]["name"])["data"].items():
                    (local / key).write_text(text)
        for local_file in (self.data_dir / "volumes").rglob("*"):
            if local_file.is_file():
                local_file.write_text(_remap(local_file.read_text(), mounts))
        return mounts

    def argv(self) -> list[str]:
        return self.command

    def environment(self) -> dict[str, str]:
        return self.env


def _remap(text: str, mounts: dict[str, str]) -> str:
    """Every whole mount path (not /tmp inside /var/tmp or /tmpfs) replaced in one pass."""
    paths = "|".join(re.escape(path) for path in sorted(mounts, key=len, reverse=True))
    return re.sub(rf"(?<![\w./-])({paths})(?![\w.-])", lambda match: mounts[match.group(1)], text)


def _with_address(url: str, port: int) -> str:
    return urlunsplit(urlsplit(url)._replace(netloc=f"127.0.0.1:{port}"))


def _ready(url: str) -> bool:
    try:
        return bool(http_get(url))
    except urllib.error.HTTPError:
        return False


def _series(backend, expr: str) -> list[dict]:
    return [sample["metric"] for sample in backend.query(expr)]


def test_vmagent_overlay_delivers_with_kubernetes_identity(rendered, prometheus, victoriametrics, tmp_path):
    manifests = rendered["vmagent"]
    gateway, daemonset = find(manifests, "StatefulSet"), find(manifests, "DaemonSet")
    gateway_port, health_port = free_port(), free_port()
    vmagent = LocalContainer(manifests, gateway, [str(require_binary("vmagent"))], tmp_path / "vmagent", gateway_port, {
        "VMAGENT_LISTEN": f"127.0.0.1:{gateway_port}",
        "PROMETHEUS_WRITE_URL": prometheus.write_url,
        "VICTORIAMETRICS_WRITE_URL": victoriametrics.write_url,
    })
    [entrypoint] = [json.loads(args) for kind, args in final_stage() if kind == "ENTRYPOINT"]
    endpoint = pod_environment(manifests, daemonset)["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
    command = [str(agent_executable()), *entrypoint[1:]]
    agent = LocalContainer(manifests, daemonset, command, tmp_path / "agent", health_port, {
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": _with_address(endpoint, gateway_port),
        "HOSTAGENT_HEALTH__LISTEN": f"127.0.0.1:{health_port}",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    })
    node = FIELDS["spec.nodeName"]
    expr = f'system_uptime_seconds{{k8s_node_name="{node}", host_name="{node}", k8s_cluster_name="default"}}'
    with running(vmagent), running(agent):
        for backend in (prometheus, victoriametrics):
            [labels] = wait_for(lambda: _series(backend, expr), timeout=90, what=f"{expr} in {backend.name}")
            assert set(labels) == IDENTITY, f"{backend.name}: {sorted(labels)}"
        wait_for(lambda: _ready(agent.url + "/readyz"), what="the agent's readiness")
