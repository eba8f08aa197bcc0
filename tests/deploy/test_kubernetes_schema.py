"""Every overlay renders and every object validates strictly against the pinned Kubernetes schemas."""

import copy

import kubernetes_validate
import pytest

from tests.deploy.manifests import KUBERNETES, OVERLAYS, VICTORIAMETRICS_CLUSTER, find, pod_spec, render

# The oldest Kubernetes the manifests support (docs/deploy.md) and the newest schema shipped offline.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
EXPECTED_KINDS = {"Namespace", "ServiceAccount", "ResourceQuota", "ConfigMap", "DaemonSet", "StatefulSet", "Service",
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
    assert {m["kind"] for m in manifests} == {"Namespace", "Service", "StatefulSet", "Deployment",
                                               "PodDisruptionBudget"}
    errors = strict_errors(manifests, version)
    assert not errors, "\n".join(errors)


def test_strict_validation_rejects_a_misspelt_field(rendered):
    daemonset = copy.deepcopy(find(rendered["both"], "DaemonSet"))
    pod_spec(daemonset)["hostNetwrok"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, KUBERNETES_VERSIONS[0], strict=True)


def test_every_namespaced_object_is_in_the_overlay_namespace(rendered):
    for overlay, manifests in rendered.items():
        namespace = find(manifests, "Namespace")["metadata"]["name"]
        stray = [f"{m['kind']}/{m['metadata']['name']}" for m in manifests
                 if m["kind"] != "Namespace" and m["metadata"].get("namespace") != namespace]
        assert not stray, f"{overlay}: not in namespace {namespace}: {stray}"


def test_every_object_is_labelled_part_of_hostagent(rendered):
    for overlay, manifests in rendered.items():
        unlabelled = [f"{m['kind']}/{m['metadata']['name']}" for m in manifests
                      if m["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") != "hostagent"]
        assert not unlabelled, f"{overlay}: {unlabelled}"
