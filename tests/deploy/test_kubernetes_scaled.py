"""The scaled overlay and the VictoriaMetrics cluster it writes to: the autoscaler, what happens to a replica's
queue on scale-down, and the cluster's wiring (docs/deploy.md, "Beyond one machine")."""

from urllib.parse import urlsplit

import pytest

from pipeline.services import VICTORIAMETRICS_DEDUP
from tests.deploy.manifests import (
    KUBERNETES,
    VICTORIAMETRICS_CLUSTER,
    container,
    container_port,
    find,
    pod_environment,
    pod_spec,
    render,
)

SCALED = KUBERNETES / "overlays" / "scaled"


@pytest.fixture(scope="module")
def cluster() -> list[dict]:
    return render(VICTORIAMETRICS_CLUSTER)


def args_of(workload: dict) -> dict[str, str]:
    return dict(arg.lstrip("-").split("=", 1) for arg in container(workload)["args"])


def test_the_gateway_writes_to_vminsert(rendered, cluster):
    environment = pod_environment(rendered["scaled"], find(rendered["scaled"], "StatefulSet"))
    url = urlsplit(environment["VICTORIAMETRICS_OTLP_URL"])
    service = find(cluster, "Service", "vminsert")
    assert url.hostname == f"vminsert.{service['metadata']['namespace']}.svc"
    [port] = service["spec"]["ports"]
    assert url.port == port["port"]
    assert container_port(container(find(cluster, "Deployment", "vminsert")), port["targetPort"]) == 8480
    assert url.path == "/insert/0/opentelemetry/v1/metrics"
    # What it sends is OTLP: vminsert gives it the Prometheus names the remote-write translation gives Prometheus.
    assert args_of(find(cluster, "Deployment", "vminsert"))["opentelemetry.usePrometheusNaming"] == "true"


@pytest.mark.parametrize(("component", "port_name"), [("vminsert", "vminsert"), ("vmselect", "vmselect")])
def test_every_vmstorage_replica_is_a_storage_node(cluster, component, port_name):
    storage = find(cluster, "StatefulSet", "vmstorage")
    service = find(cluster, "Service", storage["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None", "stable per-replica names need a headless Service"
    namespace = storage["metadata"]["namespace"]
    port = container_port(container(storage), port_name)
    expected = [f"vmstorage-{index}.vmstorage.{namespace}.svc:{port}" for index in range(storage["spec"]["replicas"])]
    assert args_of(find(cluster, "Deployment", component))["storageNode"].split(",") == expected
    assert args_of(storage)[f"{port_name}Addr"] == f":{port}"


def test_cluster_components_listen_where_their_services_point(cluster):
    for name, port in (("vminsert", 8480), ("vmselect", 8481)):
        workload = find(cluster, "Deployment", name)
        assert args_of(workload)["httpListenAddr"] == f":{port}"
        assert container_port(container(workload), "http") == port
    storage = find(cluster, "StatefulSet", "vmstorage")
    [claim] = storage["spec"]["volumeClaimTemplates"]
    [mount] = container(storage)["volumeMounts"]
    assert mount["name"] == claim["metadata"]["name"] and args_of(storage)["storageDataPath"] == mount["mountPath"]


@pytest.mark.parametrize(("kind", "name"), [("StatefulSet", "vmstorage"), ("Deployment", "vmselect")])
def test_the_cluster_stores_and_answers_a_resent_request_once(cluster, kind, name):
    """As make run's VictoriaMetrics (docs/reliability.md): vmstorage folds the copies, vmselect those still
    unmerged and the replicas of -replicationFactor (VictoriaMetrics' cluster docs ask for it on both)."""
    flag, value = VICTORIAMETRICS_DEDUP.lstrip("-").split("=")
    assert args_of(find(cluster, kind, name))[flag] == value


def test_cluster_pods_are_unprivileged(cluster):
    for workload in (m for m in cluster if m["kind"] in ("StatefulSet", "Deployment")):
        security = {**pod_spec(workload)["securityContext"], **container(workload)["securityContext"]}
        assert security["runAsNonRoot"] is True and security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]} and security["allowPrivilegeEscalation"] is False


def test_the_autoscaler_drives_the_gateway_on_cpu(rendered):
    manifests = rendered["scaled"]
    autoscaler, gateway = find(manifests, "HorizontalPodAutoscaler"), find(manifests, "StatefulSet")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("StatefulSet", gateway["metadata"]["name"])
    [metric] = autoscaler["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    assert "cpu" in container(gateway)["resources"]["requests"], "utilisation is measured against the request"
    assert "replicas" not in gateway["spec"], "a fixed count would be reset by every kubectl apply"


def test_scale_down_is_slow_and_keeps_the_queue(rendered):
    manifests = rendered["scaled"]
    scale_down = find(manifests, "HorizontalPodAutoscaler")["spec"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 600
    assert all(policy["type"] == "Pods" and policy["value"] == 1 for policy in scale_down["policies"])
    gateway = find(manifests, "StatefulSet")
    assert gateway["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenScaled": "Retain", "whenDeleted": "Retain"}
    drain = container(gateway)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert drain + 30 <= pod_spec(gateway)["terminationGracePeriodSeconds"], "the collector needs time to stop after"
