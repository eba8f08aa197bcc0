"""Policy checks on the rendered manifests: security, host access, probes, resources, scheduling."""

import re

import pytest
import yaml

from collector.config import Duration, HealthConfig
from tests.deploy.dockerfile import final_stage
from tests.deploy.manifests import (
    OVERLAYS,
    VICTORIAMETRICS_CLUSTER,
    config_map_data,
    container,
    container_port,
    find,
    pod_spec,
    quantity_bytes,
    render,
    workloads,
)

# Taints a node may carry; the agent must tolerate all of them (it belongs on every node).
NODE_TAINTS = (
    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
    {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
)
AGENT_RSS_TARGET_MIB = 40
MIB = 2**20


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    """Kubernetes' matching: an empty key with Exists matches every taint; an empty effect every effect."""
    def match(toleration):
        if toleration.get("effect") and toleration["effect"] != taint["effect"]:
            return False
        if toleration.get("operator", "Equal") == "Exists":
            return not toleration.get("key") or toleration["key"] == taint["key"]
        return toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get("value", "")
    return any(match(t) for t in tolerations)


def cpu_millicores(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000


def effective_security(workload: dict) -> dict:
    """The container's security settings with the pod-level ones it inherits."""
    return {**pod_spec(workload).get("securityContext", {}), **container(workload).get("securityContext", {})}


def all_workloads():
    return [pytest.param(overlay, kind, id=f"{overlay}-{kind}") for overlay in OVERLAYS
            for kind in ("DaemonSet", "StatefulSet")]


@pytest.mark.parametrize(("overlay", "kind"), all_workloads())
def test_containers_run_unprivileged(rendered, overlay, kind):
    workload = find(rendered[overlay], kind)
    security = effective_security(workload)
    assert security.get("runAsNonRoot") is True
    assert security.get("runAsUser", 0) != 0
    assert security.get("readOnlyRootFilesystem") is True
    assert security.get("allowPrivilegeEscalation") is False
    assert security.get("privileged", False) is False
    assert security.get("capabilities") == {"drop": ["ALL"]}, "drop ALL and add nothing"
    assert security.get("seccompProfile") == {"type": "RuntimeDefault"}


@pytest.mark.parametrize(("overlay", "kind"), all_workloads())
def test_no_service_account_token_in_pods(rendered, overlay, kind):
    spec = pod_spec(find(rendered[overlay], kind))
    assert spec["automountServiceAccountToken"] is False
    account = find(rendered[overlay], "ServiceAccount", spec["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("overlay", "kind"), all_workloads())
def test_probes_use_http_on_declared_ports(rendered, overlay, kind):
    workload = find(rendered[overlay], kind)
    spec = container(workload)
    for probe in ("livenessProbe", "readinessProbe"):
        assert probe in spec, f"{kind} has no {probe}"
        get = spec[probe]["httpGet"]
        declared = {p["containerPort"] for p in spec["ports"]}
        assert container_port(spec, get["port"]) in declared


@pytest.mark.parametrize(("overlay", "kind"), all_workloads())
def test_requests_and_limits_are_set_and_ordered(rendered, overlay, kind):
    resources = container(find(rendered[overlay], kind))["resources"]
    for resource, parse in (("cpu", cpu_millicores), ("memory", quantity_bytes)):
        request, limit = parse(resources["requests"][resource]), parse(resources["limits"][resource])
        assert 0 < request <= limit, f"{resource}: request {request} must be positive and <= limit {limit}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_memory_fits_the_measured_footprint(rendered, overlay):
    resources = container(find(rendered[overlay], "DaemonSet"))["resources"]
    # The request covers the measured RSS; the limit leaves room for a backlog replay and gzip buffers.
    assert quantity_bytes(resources["requests"]["memory"]) >= AGENT_RSS_TARGET_MIB * MIB
    assert quantity_bytes(resources["limits"]["memory"]) >= 2 * AGENT_RSS_TARGET_MIB * MIB


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_reads_the_host_through_its_root_not_its_namespaces(rendered, overlay):
    """The host's /proc/1/net, /proc/<pid> and /sys come through host_root; the agent's own pod network is what
    lets the gateway's NetworkPolicy select it (a hostNetwork pod's packets carry no pod identity)."""
    daemonset = find(rendered[overlay], "DaemonSet")
    spec = pod_spec(daemonset)
    assert not any(spec.get(field) for field in ("hostNetwork", "hostPID", "hostIPC"))
    assert spec.get("dnsPolicy", "ClusterFirst") == "ClusterFirst"
    assert not any("hostPort" in port for port in container(daemonset)["ports"])
    assert spec["priorityClassName"] == "system-node-critical"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_priority_class_is_admitted_by_a_quota(rendered, overlay):
    priority = pod_spec(find(rendered[overlay], "DaemonSet"))["priorityClassName"]
    [expression] = find(rendered[overlay], "ResourceQuota")["spec"]["scopeSelector"]["matchExpressions"]
    assert expression["scopeName"] == "PriorityClass" and expression["operator"] == "In"
    assert priority in expression["values"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_tolerates_every_taint(rendered, overlay):
    tolerations = pod_spec(find(rendered[overlay], "DaemonSet"))["tolerations"]
    untolerated = [taint for taint in NODE_TAINTS if not tolerates(tolerations, taint)]
    assert not untolerated


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_runs_only_on_linux_nodes(rendered, overlay):
    """It tolerates every taint, so the taint Windows nodes often carry does not keep it off them: there it never
    starts, and counts against maxUnavailable in every rollout."""
    assert pod_spec(find(rendered[overlay], "DaemonSet")).get("nodeSelector") == {"kubernetes.io/os": "linux"}


def test_toleration_matching_can_refuse():
    only_control_plane = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                           "effect": "NoSchedule"}]
    assert tolerates(only_control_plane, NODE_TAINTS[0])
    assert not tolerates(only_control_plane, NODE_TAINTS[1])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_host_filesystem_is_mounted_read_only_with_propagation(rendered, overlay):
    daemonset = find(rendered[overlay], "DaemonSet")
    host_volumes = {v["name"]: v["hostPath"]["path"] for v in pod_spec(daemonset)["volumes"] if "hostPath" in v}
    assert list(host_volumes.values()) == ["/"], "only the host's / is mounted from the host"
    [mount] = [m for m in container(daemonset)["volumeMounts"] if m["name"] in host_volumes]
    assert mount["readOnly"] is True
    assert mount["mountPropagation"] == "HostToContainer"
    agent_config = yaml.safe_load(config_map_data(rendered[overlay], "hostagent-agent-config")["agent.yaml"])
    assert agent_config["host_root"] == mount["mountPath"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_identity_comes_from_the_downward_api(rendered, overlay):
    variables = container(find(rendered[overlay], "DaemonSet"))["env"]
    by_name = {v["name"]: v for v in variables}
    assert by_name["K8S_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    attributes = dict(pair.split("=", 1) for pair in by_name["OTEL_RESOURCE_ATTRIBUTES"]["value"].split(","))
    assert attributes["k8s.node.name"] == attributes["host.name"] == "$(K8S_NODE_NAME)"
    # Kubernetes expands $(NAME) only for variables defined earlier in the list.
    order = [v["name"] for v in variables]
    for name, variable in by_name.items():
        for reference in _references(variable.get("value", "")):
            assert reference in order[:order.index(name)], f"{name} uses $({reference}) before it is defined"


def _references(value: str) -> list[str]:
    return re.findall(r"\$\(([A-Z0-9_]+)\)", value)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_rolls_out_node_by_node_batches(rendered, overlay):
    strategy = find(rendered[overlay], "DaemonSet")["spec"]["updateStrategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"]
    # Two agents on one node would write the same series (same host.id, same service.instance.id).
    assert strategy["rollingUpdate"].get("maxSurge", 0) in (0, "0", "0%"), "one agent per node, even in a rollout"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_agent_that_never_exports_is_never_counted_available(rendered, overlay):
    """/readyz answers ready for `ready_intervals` export intervals after start (collector/health.py), then the
    probe needs `failureThreshold` failures: only a pod ready for longer than that is known to export."""
    daemonset = find(rendered[overlay], "DaemonSet")
    [config_name] = [v["configMap"]["name"] for v in pod_spec(daemonset)["volumes"] if "configMap" in v]
    config = yaml.safe_load(config_map_data(rendered[overlay], config_name.rsplit("-", 1)[0])["agent.yaml"])
    probe = container(daemonset)["readinessProbe"]
    ready_intervals = config.get("health", {}).get("ready_intervals", HealthConfig().ready_intervals)
    grace = ready_intervals * Duration.parse(config["exporter"]["interval"])
    unready_after = grace + probe["failureThreshold"] * probe["periodSeconds"] + probe["timeoutSeconds"]
    assert probe["initialDelaySeconds"] + daemonset["spec"].get("minReadySeconds", 0) > unready_after


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_writes_only_to_its_own_empty_dirs(rendered, overlay):
    daemonset = find(rendered[overlay], "DaemonSet")
    volumes = {v["name"]: v for v in pod_spec(daemonset)["volumes"]}
    writable = [m for m in container(daemonset)["volumeMounts"] if not m.get("readOnly")]
    assert writable and all("emptyDir" in volumes[m["name"]] for m in writable)
    assert all("sizeLimit" in volumes[m["name"]]["emptyDir"] for m in writable)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_meets_the_restricted_pod_security_level(rendered, overlay):
    spec = pod_spec(find(rendered[overlay], "StatefulSet"))
    assert not any(spec.get(field) for field in ("hostNetwork", "hostPID", "hostIPC"))
    assert not any("hostPath" in volume for volume in spec.get("volumes", []))
    assert not any("hostPort" in port for c in spec["containers"] for port in c.get("ports", []))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_queue_is_on_a_persistent_volume(rendered, overlay):
    statefulset = find(rendered[overlay], "StatefulSet")
    claims = {t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]}
    mounted = {m["name"] for m in container(statefulset)["volumeMounts"]}
    assert claims and claims <= mounted


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_keeps_one_replica_through_disruptions(rendered, overlay):
    statefulset = find(rendered[overlay], "StatefulSet")
    budget = find(rendered[overlay], "PodDisruptionBudget")
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # The fewest replicas there will be: the fixed count, or the autoscaler's minimum (the scaled overlay).
    autoscalers = [m for m in rendered[overlay] if m["kind"] == "HorizontalPodAutoscaler"]
    fewest = autoscalers[0]["spec"]["minReplicas"] if autoscalers else statefulset["spec"]["replicas"]
    assert 1 <= budget["spec"]["minAvailable"] < fewest


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_admits_only_the_agent_pods(rendered, overlay):
    """Selected by their labels, the agents are admitted from any node whatever the CNI does to their packets; an
    address range would miss agents whose packets leave through an overlay tunnel with a pod-network source."""
    manifests = rendered[overlay]
    statefulset, policy = find(manifests, "StatefulSet"), find(manifests, "NetworkPolicy")
    gateway_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    agent_labels = find(manifests, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= gateway_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    agent_rule = policy["spec"]["ingress"][0]
    [source] = agent_rule["from"]
    assert set(source) == {"podSelector"}, "the agents' pods, in the gateway's namespace; no ipBlock"
    assert source["podSelector"]["matchLabels"].items() <= agent_labels.items()
    # A named port matches only pods that have it: vmagent has no otlp-grpc. The kubelet's probes need no rule:
    # traffic from a pod's own node is always allowed.
    named = {port["name"] for port in container(statefulset)["ports"]}
    agent_ports = {container_port(container(statefulset), p["port"]) for p in agent_rule["ports"] if p["port"] in named}
    service_targets = {container_port(container(statefulset), p["targetPort"])
                       for p in find(manifests, "Service")["spec"]["ports"]}
    assert agent_ports == service_targets, "the agent rule opens the Service's ports"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_metrics_are_announced_on_the_port_the_policy_opens_to_monitoring(rendered, overlay):
    statefulset = find(rendered[overlay], "StatefulSet")
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    [monitoring_rule] = find(rendered[overlay], "NetworkPolicy")["spec"]["ingress"][1:]
    [port] = [container_port(container(statefulset), p["port"]) for p in monitoring_rule["ports"]]
    assert annotations["prometheus.io/scrape"] == "true" and int(annotations["prometheus.io/port"]) == port


def test_no_two_workloads_share_a_user_or_group(rendered):
    """The agent reads the host's /proc through the host root: /proc/<pid>/environ of any process of its own uid on
    the node is open to it (the gateway's PROMETHEUS_WRITE_URL, credentials included). One uid and gid per workload."""
    identities = {}
    for manifests in [*rendered.values(), render(VICTORIAMETRICS_CLUSTER)]:
        for workload in workloads(manifests):
            security = pod_spec(workload)["securityContext"]
            # both gateways are named hostagent-gateway: the container tells them apart
            key = (workload["kind"], workload["metadata"]["name"], container(workload)["name"])
            identity = (security["runAsUser"], security["runAsGroup"])
            assert identities.setdefault(key, identity) == identity, f"{key} differs between overlays"
            assert security.get("fsGroup", identity[1]) == identity[1], f"{key}: its volumes' group is its own"
    users = [user for user, _ in identities.values()]
    groups = [group for _, group in identities.values()]
    assert len(set(users)) == len(users), identities
    assert len(set(groups)) == len(groups), identities
    assert not {0, 65534} & (set(users) | set(groups)), "neither root nor nobody, which other pods run as"


def test_the_agent_runs_as_its_images_user(rendered):
    [image_user] = [args for kind, args in final_stage() if kind == "USER"]
    for overlay, manifests in rendered.items():
        security = pod_spec(find(manifests, "DaemonSet"))["securityContext"]
        assert f"{security['runAsUser']}:{security['runAsGroup']}" == image_user, overlay
