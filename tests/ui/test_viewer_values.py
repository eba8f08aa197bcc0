"""The viewer's pages in headless Chromium against a stand-in Prometheus answering known values (no backends to
start): the pages show what Grafana would for them. And the scripts a page loads share one global scope, where a
function declared twice silently replaces the first: each name is declared once."""
from __future__ import annotations

import json
import re
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.http_serving import LocalHttpServer
from pipeline.services import Viewer
from pipeline.testing import free_port, running
from tests.ui.browser import browse, require_browser
from viewer.server import FILES, PAGES

# The shares of "CPU utilisation by mode" (host-detail), in the order stacked: nice's running total is iowait's.
CPU_MODES = {"user": 0.5, "system": 0.25, "iowait": 0.125, "nice": 0.0}
# as the firing-alerts query returns it (grafana/dashgen/fleet_overview.py): the object's labels joined in `object`
ALERT = {"alertname": "FixtureAlert", "host_name": "fixture-host", "object": "/var", "severity": "warning",
         "instance": "fixture-agent"}
ALERT_AGE = 600  # seconds the alert has been firing
QUERY = "var-datasource=prometheus&from=now-15m&to=now&refresh=off"
TOP_LEVEL_NAME = re.compile(r"^(?:async\s+)?(?:function\*?|const|let|var|class)\s+(\w+)", re.MULTILINE)


class FixedPrometheus(LocalHttpServer):
    """Prometheus' query API with fixed answers: one value for every label; for the CPU-by-mode query, the
    CPU_MODES shares at every step; for the firing-alerts query, ALERT firing for ALERT_AGE; nothing otherwise."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.answer(["fixture-host"])

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = {name: values[0] for name, values in parse_qs(body).items()}
                path = urlsplit(self.path).path
                if path.endswith("/query_range"):
                    self.answer({"resultType": "matrix", "result": FixedPrometheus.matrix(form)})
                else:
                    self.answer({"resultType": "vector", "result": FixedPrometheus.vector(form)})

            def answer(self, data) -> None:
                payload = json.dumps({"status": "success", "data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        super().__init__(Handler)

    @staticmethod
    def matrix(form: dict) -> list[dict]:
        if "cpu_mode" not in form["query"]:
            return []
        times = range(int(form["start"]), int(form["end"]) + 1, int(form["step"]))
        return [{"metric": {"cpu_mode": mode}, "values": [[t, str(share)] for t in times]}
                for mode, share in CPU_MODES.items()]

    @staticmethod
    def vector(form: dict) -> list[dict]:
        if "ALERTS_FOR_STATE" not in form["query"]:
            return []
        now = int(form["time"])
        return [{"metric": ALERT, "value": [now, str((now - ALERT_AGE) * 1000)]}]


@pytest.fixture(scope="module")
def viewer_url(tmp_path_factory):
    require_browser()
    with FixedPrometheus() as prometheus, running(Viewer(free_port(), tmp_path_factory.mktemp("viewer"),
                                                         prometheus.url, prometheus.url, prometheus.url)) as viewer:
        yield viewer.url


def test_durations_read_as_grafana_formats_them(viewer_url):
    values = browse("evaluate", viewer_url, f"/d/fleet-overview?{QUERY}",
                    "fromNow(Date.now() - 600000)", 'formatValue(600000, "ms")')
    assert values == ["10 min ago", "10 min"]


def test_a_firing_alert_shows_how_long_it_has_been_active(viewer_url):
    panel = browse("panel", viewer_url, f"/d/fleet-overview?{QUERY}", "Firing alerts")
    assert panel["state"] == "data"
    assert panel["cells"] == [["Alert", "Host", "Object", "Severity", "Instance", "Active since"],
                              ["FixtureAlert", "fixture-host", "/var", "warning", "fixture-agent", "10 min ago"]]


def test_hovering_a_stacked_chart_shows_each_series_own_value(viewer_url):
    panel = browse("panel", viewer_url, f"/d/host-detail?{QUERY}", "CPU utilisation by mode")
    assert panel["state"] == "data"
    # Running totals would read 50%, 75%, 87.5%, 87.5%.
    assert {mode: panel["legend"][mode] for mode in CPU_MODES} == {
        "user": "50%", "system": "25%", "iowait": "12.5%", "nice": "0%"}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_scripts_of_a_page_declare_each_global_name_once(page):
    sources = [FILES[src] for src in re.findall(r'<script src="(/static/[^"]+)"', PAGES[page].read_text())]
    assert len(sources) >= 2
    declared = Counter(name for source in sources for name in TOP_LEVEL_NAME.findall(source.read_text()))
    assert [name for name, count in declared.items() if count > 1] == []
