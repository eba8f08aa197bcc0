"""Inhibition and grouping in a real Alertmanager running the shipped config.

Every case posts its alerts for its own host, so cases cannot inhibit one another."""
from __future__ import annotations

import time

import pytest

from am_api import get, post_alerts
from pipeline.testing import wait_for


def alert(alertname: str, severity: str, host: str | None, **labels: str) -> dict:
    host_label = {"host_name": host} if host else {}
    return {"labels": {"alertname": alertname, "severity": severity, "job": "hostagent", **host_label, **labels},
            "annotations": {"summary": f"{alertname} test alert"}}


# (case, alerts posted first, the alert under test, whether it must be inhibited)
CASES = [
    ("critical silences the same warning",
     [alert("HostCpuBusy", "critical", "h1")], alert("HostCpuBusy", "warning", "h1"), True),
    ("critical leaves another host's warning",
     [alert("HostCpuBusy", "critical", "h2-other")], alert("HostCpuBusy", "warning", "h2"), False),
    ("critical leaves another alert's warning",
     [alert("HostMemoryUsed", "critical", "h3")], alert("HostCpuBusy", "warning", "h3"), False),
    ("warning never silences critical",
     [alert("HostCpuBusy", "warning", "h4")], alert("HostCpuBusy", "critical", "h4"), False),
    ("critical filesystem silences the warning for the same mountpoint",
     [alert("HostFilesystemUsed", "critical", "h5", system_filesystem_mountpoint="/var")],
     alert("HostFilesystemUsed", "warning", "h5", system_filesystem_mountpoint="/var"), True),
    ("critical filesystem leaves another mountpoint's warning",
     [alert("HostFilesystemUsed", "critical", "h6", system_filesystem_mountpoint="/var")],
     alert("HostFilesystemUsed", "warning", "h6", system_filesystem_mountpoint="/home"), False),
    ("host not reporting silences its warnings",
     [alert("HostNotReporting", "critical", "h7")], alert("HostCpuBusy", "warning", "h7"), True),
    ("host not reporting silences its criticals",
     [alert("HostNotReporting", "critical", "h8")], alert("HostMemoryUsed", "critical", "h8"), True),
    ("host not reporting silences its info",
     [alert("HostNotReporting", "critical", "h9")], alert("HostCpuAnomaly", "info", "h9"), True),
    ("host not reporting leaves other hosts",
     [alert("HostNotReporting", "critical", "h10-other")], alert("HostCpuBusy", "warning", "h10"), False),
    ("host not reporting leaves pipeline-wide alerts",
     [alert("HostNotReporting", "critical", "h11")], alert("GatewayExportFailing", "critical", None), False),
    ("host not reporting is never silenced by itself",
     [alert("HostNotReporting", "critical", "h12")], alert("HostNotReporting", "critical", "h12"), False),
]
SETTLE_SECONDS = 1.0


@pytest.fixture(scope="module")
def states(shipped_alertmanager) -> dict[str, dict]:
    """Post every case's alerts; once all expected inhibitions show, read each target's status."""
    post_alerts(shipped_alertmanager.url, [source for _, sources, _, _ in CASES for source in sources])
    post_alerts(shipped_alertmanager.url, [target for _, _, target, _ in CASES])
    expected = [target for _, _, target, inhibited in CASES if inhibited]
    wait_for(lambda: all(status_of(shipped_alertmanager.url, t)["inhibitedBy"] for t in expected),
             timeout=20, what="the expected inhibitions")
    time.sleep(SETTLE_SECONDS)  # the inhibitor has seen every source: a missing inhibition is real
    return {case: status_of(shipped_alertmanager.url, target) for case, _, target, _ in CASES}


def status_of(url: str, target: dict) -> dict:
    matches = [a for a in get(url, "alerts", **target["labels"]) if a["labels"] == target["labels"]]
    assert len(matches) == 1, matches
    return matches[0]["status"]


@pytest.mark.parametrize("case, sources, target, inhibited", CASES, ids=[c[0] for c in CASES])
def test_inhibition(states, case, sources, target, inhibited):
    status = states[case]
    assert (status["state"] == "suppressed") is inhibited, status
    assert bool(status["inhibitedBy"]) is inhibited, status


def test_alerts_are_grouped_by_alert_and_host(shipped_alertmanager):
    post_alerts(shipped_alertmanager.url, [alert("HostDiskBusy", "warning", host) for host in ("g1", "g2")])
    groups = [g["labels"] for g in get(shipped_alertmanager.url, "alerts/groups", alertname="HostDiskBusy")]
    assert sorted(groups, key=str) == [{"alertname": "HostDiskBusy", "host_name": "g1"},
                                       {"alertname": "HostDiskBusy", "host_name": "g2"}]
