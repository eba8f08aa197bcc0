"""Every overlay renders and every object validates strictly against the pinned Kubernetes schemas."""

import copy

import kubernetes_validate
import pytest

from tests.deploy.manifests import KUBERNETES, NAMESPACE, OVERLAYS, VICTORIAMETRICS_CLUSTER, find, pod_spec, render

# The oldest Kubernetes the manifests support (docs/deploy.md) and the newest schema shipped offline.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
EXPECTED_KINDS = {"ServiceAccount", "ResourceQuota", "ConfigMap", "DaemonSet", "StatefulSet", "Service",
                  "PodDisruptionBudget", "NetworkPolicy"}
# The scaled overlay adds the gateway's autoscaler.
OVERLAY_KINDS = {overlay: EXPECTED_KINDS | ({"HorizontalPodAutoscaler"} if overlay == "scaled" else set())
                 for overlay in OVERLAYS}


def test_the_five_overlays_exist():
    assert set(OVERLAYS) == {"both", "prometheus", "victoriametrics", "vmagent", "scaled"}


def test_the_default_is_the_both_overlay(rendered):
    assert render(KUBERNETES) == rendered["both"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_every_kind(rendered, overlay):
    assert {m["kind"] for m in rendered[overlay]} == OVERLAY_KINDS[overlay]


def strict_errors(manifests: list[dict], version: str) -> list[str]:
    errors = []
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {error.message}")
    return errors


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly(rendered, overlay, version):
    errors = strict_errors(rendered[overlay], version)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_victoriametrics_cluster_validates_strictly(version):
    manifests = render(VICTORIAMETRICS_CLUSTER)
    assert {m["kind"] for m in manifests} == {"Service", "StatefulSet", "Deployment", "PodDisruptionBudget"}
    errors = strict_errors(manifests, version)
    assert not errors, "\n".join(errors)


def test_strict_validation_rejects_a_misspelt_field(rendered):
    daemonset = copy.deepcopy(find(rendered["both"], "DaemonSet"))
    pod_spec(daemonset)["hostNetwrok"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, KUBERNETES_VERSIONS[0], strict=True)


def test_every_namespaced_object_is_in_the_namespace_applied_first(rendered):
    namespace = find(render(NAMESPACE), "Namespace")["metadata"]["name"]
    for overlay, manifests in rendered.items():
        stray = [f"{m['kind']}/{m['metadata']['name']}" for m in manifests
                 if m["metadata"].get("namespace") != namespace]
        assert not stray, f"{overlay}: not in namespace {namespace}: {stray}"


def test_no_overlay_owns_a_namespace(rendered):
    """`kubectl delete -k <overlay>` deletes what the overlay renders: a Namespace among it would take the gateway's
    PersistentVolumeClaims (and their queues) with it."""
    for overlay, manifests in rendered.items():
        assert not [m for m in manifests if m["kind"] == "Namespace"], overlay


def test_the_namespace_step_admits_the_agent():
    """The agent's hostPath volume is allowed only at the privileged Pod Security level (baseline forbids it)."""
    [namespace] = render(NAMESPACE)
    assert namespace["kind"] == "Namespace" and namespace["metadata"]["name"] == "hostagent"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace["metadata"]["labels"]["app.kubernetes.io/part-of"] == "hostagent"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_namespace_step_validates_strictly(version):
    errors = strict_errors(render(NAMESPACE), version)
    assert not errors, "\n".join(errors)


def test_the_victoriametrics_cluster_goes_into_monitoring_without_owning_it():
    """monitoring is where the user's own Prometheus and VictoriaMetrics live by default (the settings' URLs):
    applying the cluster must not claim that namespace, nor deleting it remove what else is there."""
    manifests = render(VICTORIAMETRICS_CLUSTER)
    assert {m["metadata"].get("namespace") for m in manifests} == {"monitoring"}


def test_every_object_is_labelled_part_of_hostagent(rendered):
    for overlay, manifests in rendered.items():
        unlabelled = [f"{m['kind']}/{m['metadata']['name']}" for m in manifests
                      if m["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") != "hostagent"]
        assert not unlabelled, f"{overlay}: {unlabelled}"
