"""Static checks of alertmanager/ with amtool: config, templates, and where every alert is routed."""
from __future__ import annotations

import re
import subprocess

import pytest

from .am_localconfig import ALERTMANAGER_DIR, ALERTMANAGER_YML, REPO_ROOT, load, secret_files

CPU = {"alertname": "HostCpuBusy", "host_name": "web-1", "job": "hostagent", "instance": "i-1"}

# (case, labels, the receiver that must get it)
ROUTES = [
    ("critical pages", {**CPU, "severity": "critical"}, "page"),
    ("warning goes to chat", {**CPU, "severity": "warning"}, "chat"),
    ("info goes to the digest", {**CPU, "severity": "info"}, "info"),
    ("pipeline-wide critical pages", {"alertname": "TelemetryIngestionStopped", "severity": "critical"}, "page"),
    ("no severity falls back to chat", {"alertname": "Unclassified", "host_name": "web-1"}, "chat"),
    ("unknown severity falls back to chat", {**CPU, "severity": "page"}, "chat"),
]
# (case, labels, a receiver that must NOT be the one)
MISROUTES = [
    ("critical is not only chatted", {**CPU, "severity": "critical"}, "chat"),
    ("warning never pages", {**CPU, "severity": "warning"}, "page"),
    ("info never pages", {**CPU, "severity": "info"}, "page"),
    ("info stays out of chat", {**CPU, "severity": "info"}, "chat"),
    ("severity matching is exact", {**CPU, "severity": "Critical"}, "page"),
]
SECRETS_DIR = "/etc/alertmanager/secrets/"
DOCS = REPO_ROOT / "docs" / "alerting.md"
EQUALITY_MATCHER = re.compile(r'^(\w+)="([^"]*)"$')


def routes_test(amtool, receiver: str, labels: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}",
         f"--verify.receivers={receiver}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True, text=True, timeout=30)


def test_check_config_passes(amtool):
    done = subprocess.run([amtool, "check-config", ALERTMANAGER_YML], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    config = load()
    assert f"{len(config['receivers'])} receivers" in done.stdout
    assert f"{len(config['inhibit_rules'])} inhibit rules" in done.stdout


def test_no_secret_is_inline():
    config = load()
    for receiver in config["receivers"]:
        for kind, integrations in receiver.items():
            for entry in integrations if kind != "name" else []:
                inline = {"url", "api_url", "webhook_url", "auth_password"} & set(entry)
                assert not inline, f"{receiver['name']}/{kind} has inline secret fields {inline}"
    assert not {"smtp_auth_password", "slack_api_url"} & set(config["global"])


def test_every_secret_file_is_documented():
    files = secret_files(load())
    assert files
    documented = DOCS.read_text()
    for path in files:
        assert path.startswith(SECRETS_DIR), path
        assert f"`{path}`" in documented, f"{path} is missing from {DOCS.name}"


@pytest.mark.parametrize("case, labels, receiver", ROUTES, ids=[c[0] for c in ROUTES])
def test_alert_reaches_its_receiver(amtool, case, labels, receiver):
    done = routes_test(amtool, receiver, labels)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == [receiver]


@pytest.mark.parametrize("case, labels, receiver", MISROUTES, ids=[c[0] for c in MISROUTES])
def test_alert_does_not_reach_the_wrong_receiver(amtool, case, labels, receiver):
    done = routes_test(amtool, receiver, labels)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "did not match" in done.stdout


def test_routing_table_covers_every_route():
    route = load()["route"]
    assert {receiver for _, _, receiver in ROUTES} == {r["name"] for r in load()["receivers"]}
    assert any("severity" not in labels and receiver == route["receiver"] for _, labels, receiver in ROUTES)
    for child in route["routes"]:
        matchers = dict(EQUALITY_MATCHER.match(m).groups() for m in child["matchers"])
        assert any(receiver == child["receiver"] and matchers.items() <= labels.items()
                   for _, labels, receiver in ROUTES), f"no routing case for {child}"


def test_alerts_are_grouped_by_alert_and_host():
    assert load()["route"]["group_by"] == ["alertname", "host_name"]


def template_names() -> list[str]:
    return sorted(set(re.findall(r'template "([\w.]+)"', ALERTMANAGER_YML.read_text())))


@pytest.mark.parametrize("name", template_names())
def test_every_template_in_the_config_renders(amtool, name):
    kind = "html" if name.endswith(".html") else "text"
    done = subprocess.run(
        [amtool, "template", "render", f"--template.glob={ALERTMANAGER_DIR}/templates/*.tmpl",
         f"--template.type={kind}", f'--template.text={{{{ template "{name}" . }}}}'],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
