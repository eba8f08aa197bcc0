"""The manifests agree with the gateway configs and the agent: ports, paths, endpoints, files, sizes."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from collector.config import ExporterConfig, HealthConfig
from collector.units import ByteSize, Duration
from pipeline.services import OTELCOL_GOGC, agent_executable, flags_from_file
from tests.deploy.manifests import (
    KUBERNETES,
    OTELCOL_OVERLAYS,
    OVERLAYS,
    REPO,
    config_map_data,
    container,
    container_port,
    expand,
    find,
    pod_environment,
    pod_spec,
    quantity_bytes,
    render,
    workloads,
)
from tests.gateway.gateway_check import FSYNC_SETTING, resolve, without_relays

OTEL_CONFIG = REPO / "otel-config"
OTELCOL_COMPONENT = KUBERNETES / "components" / "otelcol-gateway"
VMAGENT_COMPONENT = KUBERNETES / "components" / "vmagent-gateway"
EXPECTED_EXPORTERS = {
    "both": {"otlphttp/prometheus", "otlphttp/victoriametrics"},
    "prometheus": {"otlphttp/prometheus"},
    "victoriametrics": {"otlphttp/victoriametrics"},
    "scaled": {"otlphttp/victoriametrics"},
}


def merge(base, override):
    """The collector's merge of several --config files: mappings merge, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{key: merge(base.get(key), value) for key, value in override.items()}}
    return override


def otelcol_config(manifests: list[dict]) -> dict:
    """What the gateway container runs: its --config files merged, env placeholders expanded."""
    statefulset = find(manifests, "StatefulSet")
    spec = container(statefulset)
    data = config_map_data(manifests, "hostagent-gateway-config")
    [config_mount] = [m for m in spec["volumeMounts"] if m["name"] == "config"]
    merged = {}
    for arg in spec["args"]:
        path = Path(arg.removeprefix("--config="))
        assert str(path.parent) == config_mount["mountPath"], f"{arg} is not in the mounted ConfigMap"
        merged = merge(merged, yaml.safe_load(data[path.name]))
    return expand(merged, pod_environment(manifests, statefulset))


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def service_port_for(manifests: list[dict], url: str) -> int:
    """The gateway container port that receives what is sent to url (a Service address)."""
    parts = urlsplit(url)
    service = find(manifests, "Service", parts.hostname)
    [port] = [p for p in service["spec"]["ports"] if p["port"] == parts.port]
    return container_port(container(find(manifests, "StatefulSet")), port["targetPort"])


def test_otelcol_gateway_config_is_a_copy_of_otel_config():
    assert (OTELCOL_COMPONENT / "gateway.yaml").read_text() == (OTEL_CONFIG / "gateway.yaml").read_text(), \
        "run deploy/kubernetes/sync-configs"


@pytest.mark.parametrize("name", ["relabel.yml", "scrape.yml"])
def test_vmagent_config_file_is_a_copy_of_otel_config(rendered, name):
    assert (VMAGENT_COMPONENT / name).read_text() == (OTEL_CONFIG / "vmagent" / name).read_text(), \
        "run deploy/kubernetes/sync-configs"
    assert name in config_map_data(rendered["vmagent"], "hostagent-vmagent-config")


def test_vmagent_args_are_the_flags_file(rendered):
    # The flags exactly as `make run` passes them to vmagent.
    flags = flags_from_file(OTEL_CONFIG / "vmagent" / "vmagent.flags")
    args = container(find(rendered["vmagent"], "StatefulSet"))["args"]
    assert args == flags, "run deploy/kubernetes/sync-configs"


@pytest.mark.parametrize("overlay", OTELCOL_OVERLAYS)
def test_otelcol_listens_where_the_manifests_point(rendered, overlay):
    manifests = rendered[overlay]
    config = otelcol_config(manifests)
    spec = container(find(manifests, "StatefulSet"))
    protocols = config["receivers"]["otlp"]["protocols"]
    assert port_of(protocols["grpc"]["endpoint"]) == container_port(spec, "otlp-grpc")
    assert port_of(protocols["http"]["endpoint"]) == container_port(spec, "otlp-http")
    health = config["extensions"]["health_check"]
    assert port_of(health["endpoint"]) == container_port(spec, "health") == 13133
    for probe in ("livenessProbe", "readinessProbe"):
        assert spec[probe]["httpGet"]["path"] == health.get("path", "/")
        assert container_port(spec, spec[probe]["httpGet"]["port"]) == port_of(health["endpoint"])
    [reader] = config["service"]["telemetry"]["metrics"]["readers"]
    assert int(reader["pull"]["exporter"]["prometheus"]["port"]) == container_port(spec, "metrics") == 8888


@pytest.mark.parametrize("overlay", OTELCOL_OVERLAYS)
def test_otelcol_never_listens_on_or_sends_to_loopback_in_a_pod(rendered, overlay):
    """Only the relay between a queue and its remote-write exporter stays inside the pod."""
    text = yaml.safe_dump(without_relays(otelcol_config(rendered[overlay])))
    assert "127.0.0.1" not in text and "localhost" not in text


@pytest.mark.parametrize("overlay", OTELCOL_OVERLAYS)
def test_otelcol_overlay_selects_its_backends(rendered, overlay):
    config = otelcol_config(rendered[overlay])
    exporters = set(config["service"]["pipelines"]["metrics"]["exporters"])
    assert exporters == EXPECTED_EXPORTERS[overlay]
    assert exporters <= set(config["exporters"])


@pytest.mark.parametrize("overlay", OTELCOL_OVERLAYS)
def test_otelcol_queues_are_on_the_persistent_volume(rendered, overlay):
    manifests = rendered[overlay]
    config = otelcol_config(manifests)
    statefulset = find(manifests, "StatefulSet")
    claims = {t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]}
    persistent = [m["mountPath"] for m in container(statefulset)["volumeMounts"] if m["name"] in claims]
    environment = {item["name"]: item.get("value", "") for item in container(statefulset)["env"]}
    for name in config["service"]["pipelines"]["metrics"]["exporters"]:
        storage = config["exporters"][name]["sending_queue"]["storage"]
        directory = resolve(config["extensions"][storage]["directory"], environment)
        assert directory in persistent, f"{name}: its queue in {directory} is not on a persistent volume"


# A queued agent request on the disk of a file_storage queue (docs/deploy.md, "Queue size"); compaction writes a
# second copy of a queue's file before it frees the first.
QUEUED_REQUEST_BYTES = 25 * 2**10


@pytest.mark.parametrize("overlay", OTELCOL_OVERLAYS)
def test_otelcol_full_queues_fit_their_volume_with_room_to_compact(rendered, overlay):
    manifests = rendered[overlay]
    config = otelcol_config(manifests)
    [claim] = find(manifests, "StatefulSet")["spec"]["volumeClaimTemplates"]
    queues = config["service"]["pipelines"]["metrics"]["exporters"]
    requests = sum(int(config["exporters"][name]["sending_queue"]["queue_size"]) for name in queues)
    assert 2 * requests * QUEUED_REQUEST_BYTES <= quantity_bytes(claim["spec"]["resources"]["requests"]["storage"])


def test_otelcol_queue_size_is_a_site_setting(rendered):
    manifests = rendered["both"]
    environment = pod_environment(manifests, find(manifests, "StatefulSet"))
    assert environment["OTELCOL_QUEUE_SIZE"] == config_map_data(manifests, "hostagent-settings")["OTELCOL_QUEUE_SIZE"]
    assert otelcol_config(manifests)["exporters"]["otlphttp/prometheus"]["sending_queue"]["queue_size"] == 10000


@pytest.mark.parametrize("overlay", OTELCOL_OVERLAYS)
def test_otelcol_memory_limiter_has_a_limit_to_work_from(rendered, overlay):
    limiter = otelcol_config(rendered[overlay])["processors"]["memory_limiter"]
    if "limit_percentage" in limiter:
        assert "memory" in container(find(rendered[overlay], "StatefulSet"))["resources"]["limits"]


@pytest.mark.parametrize("overlay", OTELCOL_OVERLAYS)
def test_otelcol_runs_with_the_garbage_collector_setting_it_was_measured_with(rendered, overlay):
    manifests = rendered[overlay]
    assert pod_environment(manifests, find(manifests, "StatefulSet"))["GOGC"] == OTELCOL_GOGC


@pytest.mark.parametrize("overlay", OTELCOL_OVERLAYS)
def test_otelcol_closes_agent_connections_between_exports(rendered, overlay):
    """A Service balances connections: an idle timeout below the agents' interval makes every export connect anew,
    so agents spread again over the replicas after a rolling update or a scale-up (tests/gateway sees the collector
    close an idle agent connection)."""
    manifests = rendered[overlay]
    http = otelcol_config(manifests)["receivers"]["otlp"]["protocols"]["http"]
    agent = yaml.safe_load(config_map_data(manifests, "hostagent-agent-config")["agent.yaml"])
    assert Duration.parse(http["idle_timeout"]) < Duration.parse(agent["exporter"]["interval"])


@pytest.mark.parametrize("overlay", OTELCOL_OVERLAYS)
def test_otelcol_fsync_is_a_site_setting(rendered, overlay):
    """Off unless a site's overlay adds OTELCOL_STORAGE_FSYNC=true to hostagent-settings (docs/deploy.md)."""
    manifests = rendered[overlay]
    [item] = [e for e in container(find(manifests, "StatefulSet"))["env"] if e["name"] == FSYNC_SETTING]
    ref = item["valueFrom"]["configMapKeyRef"]
    assert (ref["key"], ref["optional"]) == (FSYNC_SETTING, True)
    assert ref["name"].startswith("hostagent-settings-"), "the site settings ConfigMap (name with its hash)"
    assert otelcol_config(manifests)["extensions"]["file_storage"]["fsync"] is False


def test_vmagent_listens_where_the_manifests_point(rendered):
    manifests = rendered["vmagent"]
    statefulset = find(manifests, "StatefulSet")
    environment = pod_environment(manifests, statefulset)
    assert port_of(environment["VMAGENT_LISTEN"]) == container_port(container(statefulset), "otlp-http")
    mounts = {m["name"]: m["mountPath"] for m in container(statefulset)["volumeMounts"]}
    relabel = Path(environment["VMAGENT_RELABEL_CONFIG"])
    assert str(relabel.parent) == mounts["config"]
    assert relabel.name in config_map_data(manifests, "hostagent-vmagent-config")
    assert environment["VMAGENT_QUEUE_DIR"] == mounts["queue"]


def test_vmagent_volume_holds_every_queue(rendered):
    statefulset = find(rendered["vmagent"], "StatefulSet")
    args = container(statefulset)["args"]
    urls = [a for a in args if a.startswith("-remoteWrite.url=")]
    [per_url] = [ByteSize.parse(a.split("=", 1)[1]) for a in args if a.startswith("-remoteWrite.maxDiskUsagePerURL=")]
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    assert quantity_bytes(claim["spec"]["resources"]["requests"]["storage"]) > len(urls) * per_url


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_sends_to_the_gateway_receiver(rendered, overlay):
    manifests = rendered[overlay]
    endpoint = pod_environment(manifests, find(manifests, "DaemonSet"))["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
    gateway = container(find(manifests, "StatefulSet"))
    assert service_port_for(manifests, endpoint) == container_port(gateway, "otlp-http")
    # otelcol: where the agent sends by default (OTLP/HTTP on 4318, /v1/metrics); vmagent: its OTLP path.
    default = urlsplit(ExporterConfig().url)
    if gateway["name"] == "vmagent":
        assert urlsplit(endpoint).path == "/opentelemetry/v1/metrics"
    else:
        assert (urlsplit(endpoint).port, urlsplit(endpoint).path) == (default.port, default.path)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_health_port_is_the_agent_default_and_the_probed_port(rendered, overlay):
    manifests = rendered[overlay]
    daemonset = find(manifests, "DaemonSet")
    spec = container(daemonset)
    listen = pod_environment(manifests, daemonset)["HOSTAGENT_HEALTH__LISTEN"]
    assert port_of(listen) == port_of(HealthConfig().listen) == container_port(spec, "health") == 13134
    assert "$(" not in listen, "a variable is used before it is defined"
    # The kubelet probes the pod's IP and `kubectl port-forward` connects to the pod's loopback: both are in the
    # pod's own network namespace, which has no other interface.
    assert listen.rpartition(":")[0] == "0.0.0.0"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_config_map_key_a_pod_reads_exists(rendered, overlay):
    for workload in workloads(rendered[overlay]):
        pod_environment(rendered[overlay], workload)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_backlog_fits_its_volume(rendered, overlay):
    manifests = rendered[overlay]
    daemonset = find(manifests, "DaemonSet")
    backlog = yaml.safe_load(config_map_data(manifests, "hostagent-agent-config")["agent.yaml"])["backlog"]
    volumes = {v["name"]: v for v in pod_spec(daemonset)["volumes"]}
    [mount] = [m for m in container(daemonset)["volumeMounts"]
               if backlog["directory"].startswith(m["mountPath"] + "/")]
    size_limit = quantity_bytes(volumes[mount["name"]]["emptyDir"]["sizeLimit"])
    assert ByteSize.parse(backlog["max_bytes"]) < size_limit


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_config_map_passes_check_config_with_the_pod_environment(rendered, overlay, tmp_path):
    manifests = rendered[overlay]
    daemonset = find(manifests, "DaemonSet")
    config = tmp_path / "agent.yaml"
    config.write_text(config_map_data(manifests, "hostagent-agent-config")["agent.yaml"])
    # host_root (/hostfs) exists only in the pod: the environment points it at a directory with a proc/stat.
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "stat").write_text("cpu  1 2 3 4\n")
    environment = {**pod_environment(manifests, daemonset), "HOSTAGENT_HOST_ROOT": str(tmp_path)}
    result = subprocess.run([str(agent_executable()), "check-config", str(config)], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", **environment}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert environment["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] in result.stdout


def test_agent_image_tag_is_the_package_version(rendered):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for overlay, manifests in rendered.items():
        assert container(find(manifests, "DaemonSet"))["image"] == f"hostagent:{version}", overlay


def test_the_documented_site_overlay_takes_effect(tmp_path):
    [example] = re.findall(r"```yaml\n(# deploy/kubernetes/overlays/mycluster/kustomization.yaml\n.*?)```",
                           (REPO / "docs" / "deploy.md").read_text(), re.DOTALL)
    kustomization = yaml.safe_load(example)
    # The same overlay, in a temporary folder: its paths re-pointed from overlays/mycluster to there.
    documented_home, site = KUBERNETES / "overlays" / "mycluster", tmp_path / "mycluster"
    site.mkdir()
    kustomization["resources"] = [os.path.relpath((documented_home / path).resolve(), site)
                                  for path in kustomization["resources"]]
    (site / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    manifests = render(site)
    settings = kustomization["configMapGenerator"][0]["literals"]
    expected = dict(literal.split("=", 1) for literal in settings)
    agent_env = pod_environment(manifests, find(manifests, "DaemonSet"))
    assert f"k8s.cluster.name={expected['CLUSTER_NAME']}" in agent_env["OTEL_RESOURCE_ATTRIBUTES"]
    gateway_env = pod_environment(manifests, find(manifests, "StatefulSet"))
    assert gateway_env["PROMETHEUS_WRITE_URL"] == expected["PROMETHEUS_WRITE_URL"]
    image = kustomization["images"][0]
    assert container(find(manifests, "DaemonSet"))["image"] == f"{image['newName']}:{image['newTag']}"


def test_the_documented_settings_are_the_defaults():
    table_row = re.compile(r"^\| `([A-Z_]+)` \| [^|]+ \| `([^`]+)` \|$", re.MULTILINE)
    rows = table_row.findall((REPO / "docs" / "deploy.md").read_text())
    defaults = dict(line.split("=", 1) for line in (KUBERNETES / "base" / "settings.env").read_text().splitlines())
    assert dict(rows) == defaults


def test_sync_configs_brings_every_copy_up_to_date(tmp_path):
    copy = tmp_path / "deploy" / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    shutil.copytree(OTEL_CONFIG, tmp_path / "otel-config")
    (tmp_path / "otel-config" / "gateway.yaml").write_text("# edited\n")
    (tmp_path / "otel-config" / "vmagent" / "relabel.yml").write_text("# edited\n")
    flags = tmp_path / "otel-config" / "vmagent" / "vmagent.flags"
    flags.write_text(flags.read_text() + "-remoteWrite.showURL\n")
    subprocess.run([sys.executable, str(copy / "sync-configs")], check=True, timeout=60)
    assert (copy / "components" / "otelcol-gateway" / "gateway.yaml").read_text() == "# edited\n"
    assert (copy / "components" / "vmagent-gateway" / "relabel.yml").read_text() == "# edited\n"
    statefulset = yaml.safe_load((copy / "components" / "vmagent-gateway" / "statefulset.yaml").read_text())
    assert container(statefulset)["args"][-1] == "-remoteWrite.showURL"
    assert container(statefulset)["args"][:-1] == container(find(render(KUBERNETES / "overlays" / "vmagent"),
                                                                   "StatefulSet"))["args"]
