"""Notifications end to end, with real processes only.

Fake hosts write CPU time through each gateway (the project's collector, vmagent) into Prometheus and
VictoriaMetrics. Prometheus and vmalert evaluate the shipped rules (with `for` shortened) and notify the same
Alertmanager, which runs the shipped config with its endpoints pointed at a local HTTP sink and a local SMTP server.
Each evaluator labels its alerts `evaluator=...`, so every assertion names the backend it proves.

- e2e-hot   99 % busy: critical pages (webhook + email), its warning is inhibited; then idle: resolved.
- e2e-warm  88 % busy: warning to chat (Slack + Discord); then idle: resolved.
- e2e-muted 99 % busy behind a silence made with `amtool silence add`: suppressed, never notified.
"""
from __future__ import annotations

import re
import subprocess
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from pipeline.services import Prometheus, VictoriaMetrics, Vmalert
from pipeline.testing import GATEWAYS, free_port, gateway_server, running, wait_for
from rules.check import RULE_FILES

from .am_api import get
from .otlp_samples import FakeHost, push

EVALUATORS = {"prometheus", "vmalert"}
ALERT = "HostCpuBusy"
RUNBOOK = f"http://localhost:3000/runbooks/{ALERT}.md"
TIMEOUT = 90


class EvaluatingVmalert(Vmalert):
    def argv(self) -> list[str]:
        # vmalert evaluates 30 s in the past by default; VictoriaMetrics here serves samples after 1 s.
        return [*super().argv(), "-rule.evalDelay=1s"]


def fast_rule_files(destination: Path) -> list[Path]:
    """rules/*.rules.yml evaluated every second, alerts firing at once and resolving at once."""
    destination.mkdir(parents=True)
    files = []
    for source in RULE_FILES:
        document = yaml.safe_load(source.read_text())
        for group in document["groups"]:
            group.pop("interval", None)
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "0s"
                    rule.pop("keep_firing_for", None)
        files.append(destination / source.name)
        files[-1].write_text(yaml.safe_dump(document, sort_keys=False))
    assert files, "no rule files in rules/"
    return files


class Feeder(threading.Thread):
    """Writes every host's current sample each second, like an agent exporting every second."""

    def __init__(self, otlp_url: str, hosts: list[FakeHost]):
        super().__init__(daemon=True)
        self.otlp_url = otlp_url
        self.hosts = {host.name: host for host in hosts}
        self.stopping = threading.Event()
        self.errors: list[Exception] = []

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            for host in self.hosts.values():
                try:
                    push(self.otlp_url, host.now())
                except Exception as error:  # noqa: BLE001 - reported by the tests, not lost in a thread
                    self.errors.append(error)


HOT, WARM, MUTED = "e2e-hot", "e2e-warm", "e2e-muted"
BUSY = {HOT: 0.99, WARM: 0.88, MUTED: 0.99}


@pytest.fixture(scope="module", params=GATEWAYS)
def gateway_kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def gateway(gateway_kind, tmp_path_factory, shipped_alertmanager):
    base = tmp_path_factory.mktemp(f"end-to-end-{gateway_kind}")
    rules = fast_rule_files(base / "rules")
    with ExitStack() as stack:
        vm = stack.enter_context(running(VictoriaMetrics(free_port(), base / "victoria-metrics")))
        prom = stack.enter_context(running(Prometheus(
            free_port(), base / "prometheus", rule_files=rules, alertmanager_url=shipped_alertmanager.url,
            evaluation_interval="1s")))
        stack.enter_context(running(EvaluatingVmalert(
            free_port(), base / "vmalert", vm.url, rule_files=rules, notifier_url=shipped_alertmanager.url,
            evaluation_interval="1s")))
        # Prometheus drops alerts until its discovery has found the Alertmanager (and resends after a minute).
        wait_for(lambda: prom.api("alertmanagers")["activeAlertmanagers"], 30, "Prometheus to find Alertmanager")
        yield stack.enter_context(running(gateway_server(gateway_kind, free_port(), base / "gateway",
                                                         prom.write_url, vm.write_url)))


@pytest.fixture(scope="module")
def silence_id(amtool, shipped_alertmanager) -> str:
    done = subprocess.run(
        [amtool, "silence", "add", f"--alertmanager.url={shipped_alertmanager.url}", "--author=e2e",
         "--comment=maintenance of e2e-muted", "--duration=1h", f"alertname={ALERT}", f"host_name={MUTED}"],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def feeder(gateway, silence_id):
    """The hosts' last 30 seconds, then one sample per second until the module ends."""
    hosts = [FakeHost(name, busy) for name, busy in BUSY.items()]
    for host in hosts:
        push(gateway.otlp_url, host.history(seconds=30, step=5))
    feeder = Feeder(gateway.otlp_url, hosts)
    feeder.start()
    yield feeder
    feeder.stopping.set()
    feeder.join()
    assert not feeder.errors, feeder.errors


def alerts_in(notification, host: str, status: str, severity: str) -> list[dict]:
    return [a for a in notification.body["alerts"]
            if a["labels"].get("alertname") == ALERT and a["labels"].get("host_name") == host
            and a["labels"].get("severity") == severity and a["status"] == status]


def wait_for_evaluators(http_sink, path: str, host: str, status: str, severity: str) -> list:
    """The notifications at `path` about `host`, once both evaluators' alerts arrived with `status`."""
    def seen() -> list:
        found = [n for n in http_sink.inbox.items() if n.path == path and alerts_in(n, host, status, severity)]
        evaluators = {a["labels"]["evaluator"] for n in found for a in alerts_in(n, host, status, severity)}
        return found if evaluators == EVALUATORS else []
    return wait_for(seen, TIMEOUT, f"{status} {severity} {ALERT} for {host} at {path} from {sorted(EVALUATORS)}")


def title(status: str, host: str, severity: str) -> re.Pattern:
    """The title of a Slack or Discord message and the subject of an email (template hostagent.title)."""
    return re.compile(rf"\[{status}\] {ALERT} on {host} \({severity}\)")


def wait_for_chat(http_sink, path: str, pattern: re.Pattern) -> dict:
    """The first Slack attachment or Discord embed at `path` whose title matches."""
    def seen() -> dict | None:
        for notification in http_sink.inbox.items():
            if notification.path == path:
                message = (notification.body.get("attachments") or notification.body.get("embeds"))[0]
                if pattern.fullmatch(message["title"]):
                    return message
        return None
    return wait_for(seen, TIMEOUT, f"a message titled {pattern.pattern!r} at {path}")


def wait_for_mail(smtp_sink, subject: re.Pattern):
    return wait_for(lambda: smtp_sink.inbox.first(lambda mail: subject.fullmatch(mail.subject)), TIMEOUT,
                    f"an email with a subject matching {subject.pattern!r}")


@pytest.fixture(scope="module")
def firing(feeder, http_sink, smtp_sink):
    return {"page": wait_for_evaluators(http_sink, "/page/webhook", HOT, "firing", "critical"),
            "slack": wait_for_chat(http_sink, "/chat/slack", title("FIRING:\\d", WARM, "warning")),
            "discord": wait_for_chat(http_sink, "/chat/discord", title("FIRING:\\d", WARM, "warning")),
            "mail": wait_for_mail(smtp_sink, title("FIRING:\\d", HOT, "critical"))}


def test_critical_reaches_the_pager_webhook(firing):
    notification = firing["page"][0]
    assert notification.body["receiver"] == "page"
    assert notification.body["groupLabels"] == {"alertname": ALERT, "host_name": HOT}
    alert = alerts_in(notification, HOT, "firing", "critical")[0]
    assert alert["labels"]["job"] == "hostagent" and alert["labels"]["instance"] == f"{HOT}-id"
    assert alert["annotations"]["summary"] == f"CPU busy on {HOT}"
    assert re.search(r"is 9\d(\.\d+)?% busy", alert["annotations"]["description"]), alert["annotations"]
    assert alert["annotations"]["runbook_url"] == RUNBOOK


def test_critical_reaches_oncall_by_email(firing):
    mail = firing["mail"]
    assert mail.recipients == ("oncall@example.org",) and mail.sender == "alertmanager@example.org"
    for body in (mail.body("plain"), mail.body("html")):
        assert f"CPU busy on {HOT}" in body and RUNBOOK in body and "% busy" in body
        assert "silences/new?filter=" in body


def test_warning_reaches_slack_and_discord(firing):
    slack, discord = firing["slack"], firing["discord"]
    assert slack["color"] == "warning"
    assert f"*CPU busy on {WARM}*" in slack["text"] and f"<{RUNBOOK}|runbook>" in slack["text"]
    assert f"**CPU busy on {WARM}**" in discord["description"]
    assert f"[runbook]({RUNBOOK})" in discord["description"]


def alerts_from_every_evaluator(alertmanager, host: str, severity: str) -> list[dict]:
    def found() -> list[dict]:
        alerts = get(alertmanager.url, "alerts", alertname=ALERT, host_name=host, severity=severity)
        return alerts if {a["labels"]["evaluator"] for a in alerts} == EVALUATORS else []
    return wait_for(found, TIMEOUT, f"{severity} {ALERT} for {host} in Alertmanager from {sorted(EVALUATORS)}")


def test_critical_inhibits_the_same_warning(firing, shipped_alertmanager):
    warnings = alerts_from_every_evaluator(shipped_alertmanager, HOT, "warning")
    assert all(a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"] for a in warnings), warnings


def test_silenced_host_is_suppressed_and_never_notified(firing, shipped_alertmanager, silence_id, http_sink,
                                                       smtp_sink):
    muted = alerts_from_every_evaluator(shipped_alertmanager, MUTED, "critical")
    assert all(a["status"]["silencedBy"] == [silence_id] for a in muted), muted
    time.sleep(5)  # a few group intervals: a notification that escaped the silence would be here by now
    assert not [n for n in http_sink.inbox.items() if MUTED in str(n.body)]
    assert not [m for m in smtp_sink.inbox.items() if MUTED in m.subject]


@pytest.fixture(scope="module")
def resolved(feeder, firing, http_sink, smtp_sink):
    feeder.hosts[HOT].busy = feeder.hosts[WARM].busy = 0.0
    return {"page": wait_for_evaluators(http_sink, "/page/webhook", HOT, "resolved", "critical"),
            "slack": wait_for_chat(http_sink, "/chat/slack", title("RESOLVED", WARM, "warning")),
            "discord": wait_for_chat(http_sink, "/chat/discord", title("RESOLVED", WARM, "warning")),
            "mail": wait_for_mail(smtp_sink, title("RESOLVED", HOT, "critical"))}


def test_resolution_reaches_every_receiver(resolved):
    assert resolved["page"][-1].body["status"] == "resolved"
    assert "resolved" in resolved["mail"].body("plain")
    assert resolved["slack"]["color"] == "good"
    assert f"resolved {time.strftime('%Y-%m-%d', time.gmtime())}" in resolved["discord"]["description"]
