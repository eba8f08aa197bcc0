"""The dashboard viewer in headless Chromium (Debian's, driven by playwright-core) against `make run`'s stack
started on free ports: every panel of every dashboard shows data on either backend, and a silence created on the
alerts page silences a firing alert in Alertmanager. Screenshots go to $VIEWER_SCREENSHOTS (default: tmp)."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.run import PORTS
from pipeline.services import REPO_ROOT, Alertmanager, Prometheus, VictoriaMetrics, http_get
from pipeline.testing import free_port, interruptible_by_ctrl_c, require_binary, wait_for
from tests.ui.browser import browse, require_browser

TEST_ALERT = "ViewerTestAlwaysFiring"
TEST_RULES = f"""groups:
  - name: viewer-test
    interval: 1s
    rules:
      - alert: {TEST_ALERT}
        expr: max by (host_name) (system_uptime_seconds) > 0
        labels: {{severity: info}}
        annotations:
          summary: fires as soon as a host reports
          runbook_url: http://localhost:3000/runbooks/HostStoppedReporting.md
"""
# What the last panels to fill need: the alert's ALERTS_FOR_STATE, and two scrapes of the components in each backend.
READY_QUERIES = ('ALERTS_FOR_STATE and ignoring (alertstate) ALERTS{alertstate="firing"}',
                 "rate(vm_rows_inserted_total[40s])", "rate(prometheus_tsdb_head_samples_appended_total[40s])",
                 "rate(otelcol_receiver_accepted_metric_points[40s])")
# Panels that rightly show "No data" on these machines, with the reason (tests/grafana proves their queries with the
# data made for them: a fake systemd, textfiles; cgroup v2 and swap cannot be had here).
EMPTY_HERE = {
    ("host-detail", "Swap usage"): "no swap on these machines",
    **{("workloads", title): "cgroup v1 on these machines; the source reads cgroup v2"
       for title in ("Cgroup CPU", "Cgroup memory against its limit", "Cgroups")},
    **{("workloads", title): "no systemd on these machines" for title in ("Units by state", "Units not active")},
    ("workloads", "Textfiles"):
        "make run's textfile directory (.data/agent/textfile) is empty until a user adds a file",
}
DASHBOARDS = sorted(path.stem for path in (REPO_ROOT / "grafana" / "dashboards").glob("*.json"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    for name in ("prometheus", "victoria-metrics", "otelcol", "vmalert", "alertmanager"):
        require_binary(name)
    require_browser()
    base = tmp_path_factory.mktemp("viewer-stack")
    rules = base / "rules"
    rules.mkdir()
    for path in (REPO_ROOT / "rules").glob("*.rules.yml"):
        shutil.copy(path, rules)
    (rules / "viewer-test.rules.yml").write_text(TEST_RULES)
    (base / "alertmanager.yml").write_text("route: {receiver: local, group_wait: 1s}\nreceivers: [{name: local}]\n")
    ports = {name: free_port() for name in PORTS}
    argv = [sys.executable, "-m", "pipeline.run", "--data-dir", str(base / "data"),
            "--agent-interval", "1s", "--status-interval", "5", "--rules-dir", str(rules),
            "--alertmanager-config", str(base / "alertmanager.yml"),
            *(argument for name, port in ports.items() for argument in (f"--{name}-port", str(port)))]
    with open(base / "run.out", "w") as output:
        process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT,
                                   preexec_fn=interruptible_by_ctrl_c)
    alertmanager = Alertmanager(ports["alertmanager"], base / "unused")
    try:
        wait_for(lambda: "pipeline running" in (base / "run.out").read_text() or process.poll() is not None,
                 timeout=120, what="the stack")
        assert process.poll() is None, (base / "run.out").read_text()
        wait_for(lambda: any(a["labels"]["alertname"] == TEST_ALERT for a in alertmanager.alerts()), timeout=90,
                 what=f"{TEST_ALERT} in Alertmanager")
        backends = (Prometheus(ports["prometheus"], base / "unused"),
                    VictoriaMetrics(ports["victoriametrics"], base / "unused"))
        wait_for(lambda: all(backend.query(expr) for backend in backends for expr in READY_QUERIES), timeout=90,
                 what="alerts and the components' rates in both backends")
        yield {"url": f"http://127.0.0.1:{ports['viewer']}", "alertmanager": alertmanager}
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)


def test_every_panel_of_every_dashboard_shows_data_on_either_backend(stack, tmp_path):
    shots = Path(os.environ.get("VIEWER_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    views = browse("dashboards", stack["url"], str(shots))
    assert sorted({view["uid"] for view in views}) == DASHBOARDS
    assert {view["datasource"] for view in views} == {"prometheus", "victoriametrics"}
    empty = [f"{view['uid']} on {view['datasource']}: {panel['title']} is {panel['state']} ({panel['text']!r})"
             for view in views for panel in view["panels"]
             if panel["state"] != "data"
             and not (panel["state"] == "nodata" and (view["uid"], panel["title"]) in EMPTY_HERE)]
    assert not empty, "\n".join(empty)
    switched = [view for view in views if view["datasource"] == "victoriametrics"]
    assert all("var-datasource=victoriametrics" in view["url"] for view in switched)
    by_backend = {(view["uid"], view["datasource"]): [panel["title"] for panel in view["panels"]] for view in views}
    for uid in DASHBOARDS:
        panels = json.loads((REPO_ROOT / "grafana" / "dashboards" / f"{uid}.json").read_text())["panels"]
        titles = [panel["title"] for panel in panels if panel["type"] != "row"]
        assert by_backend[uid, "prometheus"] == by_backend[uid, "victoriametrics"] == titles
    for uid in DASHBOARDS:
        assert (shots / f"{uid}.png").stat().st_size > 20_000
    titles = {(uid, title) for uid in DASHBOARDS for title in by_backend[uid, "prometheus"]}
    assert set(EMPTY_HERE) <= titles, "EMPTY_HERE names a panel that does not exist"


def test_a_silence_created_on_the_alerts_page_silences_the_firing_alert(stack):
    page = browse("silence", stack["url"], TEST_ALERT)
    assert page["result"].startswith("silence ") and page["result"].endswith(" created")
    assert any(f'alertname="{TEST_ALERT}"' in row for row in page["silences"])

    def silenced():
        alerts = [a for a in stack["alertmanager"].alerts() if a["labels"]["alertname"] == TEST_ALERT]
        return alerts and all(a["status"]["state"] == "suppressed" and a["status"]["silencedBy"] for a in alerts)

    wait_for(silenced, timeout=30, what=f"{TEST_ALERT} suppressed by the silence")
    silences = json.loads(http_get(stack["alertmanager"].url + "/api/v2/silences"))
    matchers = [s["matchers"] for s in silences if s["status"]["state"] == "active"]
    assert [{"name": "alertname", "value": TEST_ALERT, "isRegex": False, "isEqual": True}] in matchers
