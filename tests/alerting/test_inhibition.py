"""Inhibition and grouping in a real Alertmanager running the shipped config.

Every case posts its alerts for its own host, so cases cannot inhibit one another."""
from __future__ import annotations

import re
import time

import pytest

from pipeline.testing import wait_for
from rules.build import load_thresholds
from tests.support.alert_rules import alert_labels

from .am_api import get, post_alerts
from .am_localconfig import ALERTMANAGER_YML, load
from .am_server import shipped_alertmanager_in

SILENT_HOST = "HostStoppedReporting"
NO_INGESTION = "TelemetryIngestionStopped"


def alert(alertname: str, severity: str, host: str | None, **labels: str) -> dict:
    host_label = {"host_name": host} if host else {}
    return {"labels": {"alertname": alertname, "severity": severity, "job": "hostagent", **host_label, **labels},
            "annotations": {"summary": f"{alertname} test alert"}}


def exporter_alert(severity: str, gateway: str, exporter: str) -> dict:
    """OtelcolExporterFailing as the rules raise it: no host_name, the gateway's scrape target and the exporter."""
    return alert("OtelcolExporterFailing", severity, None, job="otelcol", instance=f"{gateway}:8888", exporter=exporter)


PRW, VM = "prometheusremotewrite/prometheus", "otlphttp/victoriametrics"


# (case, alerts posted first, the alert under test, whether it must be inhibited)
CASES = [
    ("critical silences the same warning",
     [alert("HostCpuBusy", "critical", "h1")], alert("HostCpuBusy", "warning", "h1"), True),
    ("critical leaves another host's warning",
     [alert("HostCpuBusy", "critical", "h2-other")], alert("HostCpuBusy", "warning", "h2"), False),
    ("critical leaves another alert's warning",
     [alert("HostMemoryUsage", "critical", "h3")], alert("HostCpuBusy", "warning", "h3"), False),
    ("warning never silences critical",
     [alert("HostCpuBusy", "warning", "h4")], alert("HostCpuBusy", "critical", "h4"), False),
    ("critical filesystem silences the warning for the same mountpoint",
     [alert("HostFilesystemUsage", "critical", "h5", system_filesystem_mountpoint="/var")],
     alert("HostFilesystemUsage", "warning", "h5", system_filesystem_mountpoint="/var"), True),
    ("critical filesystem leaves another mountpoint's warning",
     [alert("HostFilesystemUsage", "critical", "h6", system_filesystem_mountpoint="/var")],
     alert("HostFilesystemUsage", "warning", "h6", system_filesystem_mountpoint="/home"), False),
    ("silent host: its warnings are silenced",
     [alert(SILENT_HOST, "critical", "h7")], alert("HostCpuBusy", "warning", "h7"), True),
    ("silent host: its criticals are silenced",
     [alert(SILENT_HOST, "critical", "h8")], alert("HostMemoryUsage", "critical", "h8"), True),
    ("silent host: its info alerts are silenced",
     [alert(SILENT_HOST, "critical", "h9")], alert("HostCpuAnomaly", "info", "h9"), True),
    ("silent host: other hosts are not",
     [alert(SILENT_HOST, "critical", "h10-other")], alert("HostCpuBusy", "warning", "h10"), False),
    ("silent host: pipeline-wide alerts are not",
     [alert(SILENT_HOST, "critical", "h11")], alert("VmagentRemoteWriteFailing", "warning", None), False),
    ("silent host: it does not silence itself",
     [alert(SILENT_HOST, "critical", "h12")], alert(SILENT_HOST, "critical", "h12"), False),
    # host_name is the node name in Kubernetes: clusters A and B both have a node h13 (h14), another machine
    # with another agent (instance); the rules' alerts carry job, instance and host_name, not the cluster.
    ("silent host: the alerts of its agent are silenced",
     [alert(SILENT_HOST, "critical", "h13", instance="i-h13-a", k8s_cluster_name="A")],
     alert("HostCpuBusy", "warning", "h13", instance="i-h13-a"), True),
    ("silent host: its namesake in another cluster is not",
     [alert(SILENT_HOST, "critical", "h14", instance="i-h14-a", k8s_cluster_name="A")],
     alert("HostCpuBusy", "warning", "h14", instance="i-h14-b"), False),
    # Each evaluator sees its own backend: a host silent on Prometheus (its samples refused there) can still report
    # to VictoriaMetrics, whose alerts about it are real.
    ("silent host on one backend: that backend's alerts of the host are silenced",
     [alert(SILENT_HOST, "critical", "h17", evaluator="prometheus")],
     alert("HostFilesystemUsage", "critical", "h17", evaluator="prometheus"), True),
    ("silent host on one backend: the other backend's alerts of the host are not",
     [alert(SILENT_HOST, "critical", "h18", evaluator="prometheus")],
     alert("HostFilesystemUsage", "critical", "h18", evaluator="vmalert"), False),
    # Gateway alerts carry no host_name: each case names gateways of its own.
    ("critical exporter leaves another gateway's other exporter's warning",
     [exporter_alert("critical", "gw-0", PRW)], exporter_alert("warning", "gw-1", VM), False),
    ("critical exporter leaves another exporter's warning on the same gateway",
     [exporter_alert("critical", "gw-2", PRW)], exporter_alert("warning", "gw-2", VM), False),
    ("critical exporter leaves the same exporter's warning on another gateway",
     [exporter_alert("critical", "gw-3a", VM)], exporter_alert("warning", "gw-3b", VM), False),
    ("critical exporter silences its own warning",
     [exporter_alert("critical", "gw-4", VM)], exporter_alert("warning", "gw-4", VM), True),
    ("critical remote write leaves another URL's warning on the same vmagent",
     [alert("VmagentRemoteWriteFailing", "critical", None, job="vmagent", instance="vm-5:8429", url="1:secret-url")],
     alert("VmagentRemoteWriteFailing", "warning", None, job="vmagent", instance="vm-5:8429", url="2:secret-url"),
     False),
    ("critical agent source leaves another source's warning",
     [alert("HostagentSourceFailing", "critical", "h15", instance="i-15", hostagent_source="temperature")],
     alert("HostagentSourceFailing", "warning", "h15", instance="i-15", hostagent_source="disk"), False),
    ("critical silences the same warning with all the agent's labels",
     [alert("HostFilesystemUsage", "critical", "h16", instance="i-16", system_device="/dev/sda1",
            system_filesystem_mountpoint="/var", system_filesystem_type="ext4", system_filesystem_mode="rw")],
     alert("HostFilesystemUsage", "warning", "h16", instance="i-16", system_device="/dev/sda1",
           system_filesystem_mountpoint="/var", system_filesystem_type="ext4", system_filesystem_mode="rw"), True),
]
# A backend that ingests nothing silences every silent host, so these run in an Alertmanager of their own.
INGESTION_CASES = [
    ("no ingestion: silent hosts are silenced",
     [alert(NO_INGESTION, "critical", None)], alert(SILENT_HOST, "critical", "n1"), True),
    ("no ingestion: other host alerts are not",
     [alert(NO_INGESTION, "critical", None)], alert("HostCpuBusy", "critical", "n2"), False),
    # Each evaluator sees its own backend: VictoriaMetrics ingesting nothing says nothing about Prometheus.
    ("no ingestion on one backend: its own silent hosts are silenced",
     [alert(NO_INGESTION, "critical", None, evaluator="vmalert")],
     alert(SILENT_HOST, "critical", "n3", evaluator="vmalert"), True),
    ("no ingestion on one backend: the other backend's silent hosts are not",
     [alert(NO_INGESTION, "critical", None, evaluator="vmalert")],
     alert(SILENT_HOST, "critical", "n4", evaluator="prometheus"), False),
]
SETTLE_SECONDS = 1.0


def inhibition_states(url: str, cases: list) -> dict[str, dict]:
    """Post the cases' alerts; once all expected inhibitions show, read each target's status."""
    post_alerts(url, [source for _, sources, _, _ in cases for source in sources])
    post_alerts(url, [target for _, _, target, _ in cases])
    expected = [target for _, _, target, inhibited in cases if inhibited]
    wait_for(lambda: all(status_of(url, t)["inhibitedBy"] for t in expected),
             timeout=20, what="the expected inhibitions")
    time.sleep(SETTLE_SECONDS)  # the inhibitor has seen every source: a missing inhibition is real
    return {case: status_of(url, target) for case, _, target, _ in cases}


def status_of(url: str, target: dict) -> dict:
    matches = [a for a in get(url, "alerts", **target["labels"]) if a["labels"] == target["labels"]]
    assert len(matches) == 1, matches
    return matches[0]["status"]


def assert_inhibited(status: dict, inhibited: bool) -> None:
    assert (status["state"] == "suppressed") is inhibited, status
    assert bool(status["inhibitedBy"]) is inhibited, status


@pytest.fixture(scope="module")
def states(shipped_alertmanager) -> dict[str, dict]:
    return inhibition_states(shipped_alertmanager.url, CASES)


@pytest.mark.parametrize("case, sources, target, inhibited", CASES, ids=[c[0] for c in CASES])
def test_inhibition(states, case, sources, target, inhibited):
    assert_inhibited(states[case], inhibited)


def test_ingestion_stopped_inhibition(tmp_path, http_sink, smtp_sink):
    with shipped_alertmanager_in(tmp_path / "alertmanager", http_sink, smtp_sink) as alertmanager:
        states = inhibition_states(alertmanager.url, INGESTION_CASES)
    for case, _, _, inhibited in INGESTION_CASES:
        assert_inhibited(states[case], inhibited)


def test_inhibition_names_alerts_the_rules_define():
    thresholds, _ = load_thresholds()
    named = set(re.findall(r'alertname!?="(\w+)"', ALERTMANAGER_YML.read_text()))
    assert named == {SILENT_HOST, NO_INGESTION}
    assert named <= set(thresholds), f"inhibition names alerts the rules do not define: {named - set(thresholds)}"


def test_a_critical_silences_only_the_warning_about_the_same_object():
    """Alertmanager compares only the `equal` labels, and labels absent from both alerts as equal: every label
    that tells two alerts of one name apart must be there, or a critical silences warnings about other objects."""
    rule, = [rule for rule in load()["inhibit_rules"] if rule.get("target_matchers") == ['severity="warning"']]
    assert set(rule["equal"]) == alert_labels() - {"severity"} | {"alertname"}


@pytest.mark.parametrize("alertname, severity, expected_groups", [
    ("HostDiskBusy", "warning", [{"alertname": "HostDiskBusy", "host_name": "g1"},
                                 {"alertname": "HostDiskBusy", "host_name": "g2"}]),
    ("HostNetworkAnomaly", "info", [{"alertname": "HostNetworkAnomaly"}]),  # the digest spans hosts
])
def test_alerts_are_grouped(shipped_alertmanager, alertname, severity, expected_groups):
    post_alerts(shipped_alertmanager.url, [alert(alertname, severity, host) for host in ("g1", "g2")])

    def groups() -> list[dict]:
        return get(shipped_alertmanager.url, "alerts/groups", alertname=alertname)

    wait_for(lambda: sum(len(g["alerts"]) for g in groups()) == 2, timeout=10, what=f"both {alertname} alerts grouped")
    assert sorted((g["labels"] for g in groups()), key=str) == expected_groups
