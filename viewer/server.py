"""The viewer's HTTP server: static pages, the dashboard JSON, runbooks, and a same-origin proxy to the backends.

    python -m viewer --port 3000 --prometheus http://127.0.0.1:9090 --victoriametrics http://127.0.0.1:8428 \\
        --alertmanager http://127.0.0.1:9093

Paths follow Grafana's, so the rules' dashboard_url works on either: /d/<uid>[/<slug>]?var-host=…
    /                                   redirect to the first dashboard
    /d/<uid>, /alerts                   the pages (viewer/static/)
    /runbooks/<Alert>.md                docs/runbooks/<Alert>.md, rendered
    /api/dashboards[/<uid>]             the dashboard list, one dashboard's JSON as Grafana would load it
    /api/datasources                    the data sources (uid, name), as grafana/provisioning names them
    /api/datasources/<uid>/<path>       proxied to that backend's HTTP API (GET and POST)
    /api/alertmanager/<path>            proxied to Alertmanager's API (GET, POST, DELETE)
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import html
import json
import re
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VIEWER_DIR = REPO_ROOT / "viewer"
DASHBOARDS_DIR = REPO_ROOT / "grafana" / "dashboards"
RUNBOOKS_DIR = REPO_ROOT / "docs" / "runbooks"
EXIT_USAGE = 2
# Each file the pages load, by URL: the viewer's own files and the npm packages' builds (make viewer).
FILES = {
    "/static/dashboard.js": VIEWER_DIR / "static" / "dashboard.js",
    "/static/alerts.js": VIEWER_DIR / "static" / "alerts.js",
    "/static/common.js": VIEWER_DIR / "static" / "common.js",
    "/static/style.css": VIEWER_DIR / "static" / "style.css",
    "/vendor/uPlot.iife.min.js": VIEWER_DIR / "node_modules" / "uplot" / "dist" / "uPlot.iife.min.js",
    "/vendor/uPlot.min.css": VIEWER_DIR / "node_modules" / "uplot" / "dist" / "uPlot.min.css",
    "/vendor/marked.umd.js": VIEWER_DIR / "node_modules" / "marked" / "lib" / "marked.umd.js",
}
PAGES = {"dashboard": VIEWER_DIR / "static" / "dashboard.html", "alerts": VIEWER_DIR / "static" / "alerts.html"}
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html; charset=utf-8",
         ".json": "application/json"}
DASHBOARD_PAGE = re.compile(r"^/d/([\w-]+)(?:/[\w-]*)?$")
RUNBOOK_PAGE = re.compile(r"^/runbooks/(\w+)\.md$")
DATASOURCE_NAMES = {"prometheus": "Prometheus", "victoriametrics": "VictoriaMetrics"}
RUNBOOK_TEMPLATE = """<!doctype html><html><head><meta charset="utf-8"><title>{name} runbook</title>
<link rel="stylesheet" href="/static/style.css"></head><body><nav class="top"><a href="/alerts">Alerts</a></nav>
<main class="runbook" id="runbook"></main><script id="markdown" type="text/markdown">{markdown}</script>
<script src="/vendor/marked.umd.js"></script><script>
document.getElementById("runbook").innerHTML = marked.parse(document.getElementById("markdown").textContent);
</script></body></html>"""


def dashboards() -> list[dict]:
    listed = []
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        listed.append({"uid": dashboard["uid"], "title": dashboard["title"]})
    return listed


class Viewer(BaseHTTPRequestHandler):
    datasources: dict[str, str] = {}   # uid -> base URL
    alertmanager: str = ""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/":
            return self.redirect(f"/d/{dashboards()[0]['uid']}")
        if DASHBOARD_PAGE.match(path):
            return self.send_file(PAGES["dashboard"])
        if path == "/alerts":
            return self.send_file(PAGES["alerts"])
        if path in FILES:
            return self.send_file(FILES[path])
        if match := RUNBOOK_PAGE.match(path):
            return self.runbook(match.group(1))
        if path == "/api/dashboards":
            return self.send_json(dashboards())
        if match := re.match(r"^/api/dashboards/([\w-]+)$", path):
            return self.send_file(DASHBOARDS_DIR / f"{match.group(1)}.json")
        if path == "/api/datasources":
            return self.send_json([{"uid": uid, "name": DATASOURCE_NAMES.get(uid, uid)} for uid in self.datasources])
        return self.proxy()

    def do_POST(self):
        self.proxy()

    def do_DELETE(self):
        self.proxy()

    def upstream(self) -> str | None:
        if match := re.match(r"^/api/datasources/([\w-]+)(/.*)$", self.path):
            base = self.datasources.get(match.group(1))
            return base + match.group(2) if base else None
        if self.path.startswith("/api/alertmanager/"):
            return self.alertmanager + self.path.removeprefix("/api/alertmanager")
        return None

    def proxy(self):
        url = self.upstream()
        if url is None:
            return self.send_error(404)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {key: self.headers[key] for key in ("Content-Type",) if self.headers.get(key)}
        request = urllib.request.Request(url, data=body, method=self.command, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, content_type, payload = response.status, response.headers.get("Content-Type"), response.read()
        except urllib.error.HTTPError as error:
            status, content_type, payload = error.code, error.headers.get("Content-Type"), error.read()
        except OSError as error:
            status, content_type, payload = 502, "text/plain", f"{url}: {error}".encode()
        self.send(status, payload, content_type or "application/octet-stream")

    def runbook(self, name: str):
        path = RUNBOOKS_DIR / f"{name}.md"
        if not path.is_file():
            return self.send_error(404, f"no runbook {name}")
        # Closing tags inside the markdown must not end the script element holding it.
        markdown = html.escape(path.read_text(), quote=False)
        self.send(200, RUNBOOK_TEMPLATE.format(name=name, markdown=markdown).encode(), TYPES[".html"])

    def redirect(self, location: str):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_file(self, path: Path):
        if not path.is_file():
            hint = " (run `make viewer`)" if "node_modules" in path.parts else ""
            return self.send_error(404, f"{path.name} not found{hint}")
        self.send(200, path.read_bytes(), TYPES.get(path.suffix, "application/octet-stream"))

    def send_json(self, data):
        self.send(200, json.dumps(data).encode(), TYPES[".json"])

    def send(self, status: int, payload: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m viewer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--prometheus", metavar="URL", help="Prometheus' base URL (data source uid prometheus)")
    parser.add_argument("--victoriametrics", metavar="URL", help="VictoriaMetrics' base URL (uid victoriametrics)")
    parser.add_argument("--alertmanager", metavar="URL", required=True, help="Alertmanager's base URL")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Viewer.datasources = {uid: url.rstrip("/") for uid, url in
                          (("prometheus", args.prometheus), ("victoriametrics", args.victoriametrics)) if url}
    Viewer.alertmanager = args.alertmanager.rstrip("/")
    try:
        server = ThreadingHTTPServer((args.host, args.port), Viewer)
    except OSError as failure:
        if failure.errno == errno.EADDRINUSE:
            problem = f"port {args.port} is already in use on {args.host}: choose another with --port PORT"
        else:
            problem = f"cannot listen on {args.host}:{args.port} ({failure.strerror}): change --host or --port"
        print(f"python -m viewer: {problem}", file=sys.stderr)
        return EXIT_USAGE
    print(f"viewer on http://{args.host}:{args.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0
