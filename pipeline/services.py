"""Real backend servers on one machine: start on a given port and data directory, wait until ready, stop.

Each server owns its `data_dir` (config files it writes, its storage, `server.log`).

    with Prometheus(port, tmp / "prom", rule_files=[...], alertmanager_url=am.url) as prom:
        prom.query("up")                      # -> list of {"metric": {...}, "value": [ts, "v"]}

Servers run in their own session (a terminal's Ctrl-C reaches only the parent, which stops them in
order) and get SIGTERM when the thread that started them dies, so a crashed parent leaves no orphans.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from collector.units import Duration
from pipeline import backends, otelcol

HOST = "127.0.0.1"
REPO_ROOT = backends.REPO_ROOT
VMAGENT_CONFIG_DIR = REPO_ROOT / "otel-config" / "vmagent"
DEBIAN_ALERTMANAGER_SHARE = Path("/usr/share/prometheus/alertmanager")
GATEWAY_CONFIG = REPO_ROOT / "otel-config" / "gateway.yaml"
# The collector gateway's Go garbage collector runs once the heap has grown 400 % past what the last collection kept
# (Go's default: 100 %): about a fifth less CPU per data point for a larger heap (docs/gateway.md, "CPU"). Compose and
# the Kubernetes StatefulSet set the same (tests/deploy).
OTELCOL_GOGC = "400"
# Prometheus' garbage collector, as its `runtime.gogc` (its own default since 2.53: 75). Receiving remote write, it
# spent half its CPU marking a heap that is mostly its head block: 200 gives that up for a larger heap
# (docs/deploy.md, "Kubernetes"). Compose's prometheus.yml sets the same (tests/deploy).
PROMETHEUS_GOGC = 200
VIEWER_LIBRARIES = REPO_ROOT / "viewer" / "node_modules"
SCRAPE_INTERVAL = "10s"  # as in otel-config/vmagent/scrape.yml
# Keep one sample per series and millisecond: a request delivered twice (its answer was lost, the agent sent it
# again) is stored once, and nothing else is thinned out (docs/reliability.md, "Nothing twice").
VICTORIAMETRICS_DEDUP = "-dedup.minScrapeInterval=1ms"
_PR_SET_PDEATHSIG = 1


class PortInUse(OSError):
    def __init__(self, server: str, port: int):
        super().__init__(f"{server}: port {port} on {HOST} is already in use")
        self.server, self.port = server, port


class ServerFailed(RuntimeError):
    pass


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket() as sock:
        # As the servers do: connections in TIME_WAIT don't make a port busy, a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


class Server:
    """A subprocess serving HTTP on HOST:port, ready when GET `ready_path` answers 200."""

    name = "server"
    ready_path = "/health"

    def __init__(self, port: int, data_dir: Path):
        self.port = port
        self.data_dir = Path(data_dir)
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def ready_url(self) -> str:
        return self.url + self.ready_path

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def keep_log(self) -> Path:
        """Set the log aside before a restart (start() begins a new one): it says why the last run ended."""
        previous = self.log_path.with_name("server.previous.log")
        if self.log_path.exists():
            self.log_path.replace(previous)
        return previous

    def argv(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> Mapping[str, str]:
        return {}

    def ports(self) -> tuple[int, ...]:
        return (self.port,)

    def start(self, timeout: float = 60.0) -> Server:
        for port in self.ports():
            if not port_is_free(port):
                raise PortInUse(self.name, port)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir,
                env={**os.environ, **self.environment()}, start_new_session=True, preexec_fn=_die_with_parent)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def is_ready(self) -> bool:
        """One readiness check; servers without an HTTP ready path override only this."""
        try:
            http_get(self.ready_url, timeout=2)
            return True
        except OSError:
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ServerFailed(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.is_ready():
                return
            if time.monotonic() > deadline:
                raise ServerFailed(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: nothing flushed or closed, as in a crash or an OOM kill."""
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self):
        return self.start() if self.process is None else self

    def __exit__(self, *exc):
        self.stop()


class PromApi:
    """The Prometheus HTTP query API and remote-write receiver, which VictoriaMetrics serves too."""

    url: str

    @property
    def write_url(self) -> str:
        return self.url + "/api/v1/write"

    def api(self, path: str, **params) -> object:
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            body = json.loads(http_get(f"{self.url}/api/v1/{path}?{query}", timeout=30))
        except urllib.error.HTTPError as error:
            raise RuntimeError(
                f"{self.url} {path} {params}: {error.code} {error.read().decode(errors='replace')}") from error
        if body.get("status") != "success":
            raise RuntimeError(f"{self.url} {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def series(self, match: str = '{__name__=~".+"}') -> list[dict[str, str]]:
        return self.api("series", **{"match[]": match, "start": time.time() - 3600})


def scrape_configs(targets: Mapping[str, str]) -> list[dict]:
    """Prometheus scrape configs for job -> host:port, at the interval of otel-config/vmagent/scrape.yml."""
    return [{"job_name": job, "scrape_interval": SCRAPE_INTERVAL, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()]


class Prometheus(Server, PromApi):
    """`scrape_targets` (job -> host:port): what it scrapes itself, for gateways that scrape nothing."""

    name = "prometheus"
    ready_path = "/-/ready"

    def __init__(self, port: int, data_dir: Path, rule_files: Iterable[Path] = (),
                 alertmanager_url: str | None = None, out_of_order_window: str = "2h",
                 evaluation_interval: str = "15s", scrape_targets: Mapping[str, str] | None = None):
        super().__init__(port, data_dir)
        self.rule_files = [Path(path).resolve() for path in rule_files]
        self.alertmanager_url = alertmanager_url
        self.out_of_order_window = out_of_order_window
        self.evaluation_interval = evaluation_interval
        self.scrape_targets = dict(scrape_targets or {})

    def config(self) -> dict:
        config = {
            # Which backend an alert comes from: Alertmanager's inhibitions compare it (alertmanager/alertmanager.yml).
            "global": {"evaluation_interval": self.evaluation_interval, "external_labels": {"evaluator": "prometheus"}},
            "storage": {"tsdb": {"out_of_order_time_window": self.out_of_order_window}},
            "runtime": {"gogc": PROMETHEUS_GOGC},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": scrape_configs(self.scrape_targets),
        }
        if self.alertmanager_url:
            target = urllib.parse.urlsplit(self.alertmanager_url)
            config["alerting"] = {"alertmanagers": [
                {"scheme": target.scheme, "static_configs": [{"targets": [target.netloc]}]}]}
        return config

    def argv(self) -> list[str]:
        config_file = self.data_dir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        # Debian's Prometheus looks for its UI at the absolute /usr/share/prometheus/web: show it the cached one.
        assets = backends.prometheus_web_assets()
        web_assets = [f"--web.local-assets={assets}"] if assets else []
        return [str(backends.binary("prometheus")), *web_assets,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                f"--web.listen-address={HOST}:{self.port}",
                "--web.enable-remote-write-receiver",
                "--web.enable-lifecycle"]


class VictoriaMetrics(Server, PromApi):
    """`scrape_targets` (job -> host:port): what it scrapes itself, for gateways that scrape nothing.
    `force_flush`: make every row received searchable before each query (tests); off, queries see rows once
    VictoriaMetrics flushes them itself, within seconds, and it logs nothing per query."""

    name = "victoria-metrics"

    def __init__(self, port: int, data_dir: Path, scrape_targets: Mapping[str, str] | None = None,
                 force_flush: bool = True):
        super().__init__(port, data_dir)
        self.scrape_targets = dict(scrape_targets or {})
        self.force_flush = force_flush

    def argv(self) -> list[str]:
        scrape = []
        if self.scrape_targets:
            config_file = self.data_dir / "scrape.yml"
            config_file.write_text(yaml.safe_dump({"scrape_configs": scrape_configs(self.scrape_targets)}))
            scrape = [f"-promscrape.config={config_file}"]
        return [str(backends.binary("victoria-metrics")),
                f"-httpListenAddr={HOST}:{self.port}",
                f"-storageDataPath={self.data_dir / 'storage'}",
                "-opentelemetry.usePrometheusNaming",
                # Make samples queryable one second after they arrive, not the default 30 s.
                "-search.latencyOffset=1s",
                "-search.disableCache",
                VICTORIAMETRICS_DEDUP,
                *scrape]

    @property
    def otlp_url(self) -> str:
        return self.url + "/opentelemetry/v1/metrics"

    def api(self, path: str, **params) -> object:
        # Rows become searchable only after a background flush (~10 s); tests must see every row received.
        if self.force_flush:
            http_get(self.url + "/internal/force_flush")
        return super().api(path, **params)


class Vmagent(Server):
    """The vmagent gateway: OTLP/HTTP in, relabelled, fanned out to Prometheus and VictoriaMetrics; it also
    scrapes itself and the pipeline's components named in `scrape_targets` (job -> host:port) into both.

    Its flags live in otel-config/vmagent/vmagent.flags, with %{VAR} placeholders that vmagent fills
    from the environment given here."""

    name = "vmagent"
    SCRAPED_JOBS = ("vmagent", "prometheus", "victoriametrics", "vmalert", "alertmanager")

    def __init__(self, port: int, data_dir: Path, prometheus_write_url: str, victoriametrics_write_url: str,
                 scrape_targets: Mapping[str, str] | None = None, config_dir: Path = VMAGENT_CONFIG_DIR):
        super().__init__(port, data_dir)
        self.config_dir = Path(config_dir)
        self.write_urls = {"PROMETHEUS_WRITE_URL": prometheus_write_url,
                           "VICTORIAMETRICS_WRITE_URL": victoriametrics_write_url}
        self.scrape_targets = {"vmagent": self.address, **(scrape_targets or {})}
        if unknown := set(self.scrape_targets) - set(self.SCRAPED_JOBS):
            raise ValueError(f"vmagent scrapes no job {sorted(unknown)}: only {', '.join(self.SCRAPED_JOBS)}")

    def argv(self) -> list[str]:
        return [str(backends.binary("vmagent")), *flags_from_file(self.config_dir / "vmagent.flags")]

    def environment(self) -> Mapping[str, str]:
        # scrape.yml needs every variable set: an empty one is a job without targets.
        targets = {f"{job.upper()}_SCRAPE_TARGETS": self.scrape_targets.get(job, "") for job in self.SCRAPED_JOBS}
        return {"VMAGENT_LISTEN": self.address,
                "VMAGENT_QUEUE_DIR": str(self.data_dir / "queues"),
                "VMAGENT_RELABEL_CONFIG": str(self.config_dir / "relabel.yml"),
                "VMAGENT_SCRAPE_CONFIG": str(self.config_dir / "scrape.yml"),
                **self.write_urls, **targets}

    @property
    def otlp_url(self) -> str:
        return self.url + "/opentelemetry/v1/metrics"


def victoriametrics_otlp_url(write_url: str) -> str:
    """VictoriaMetrics' OTLP endpoint beside its remote-write endpoint: single node `.../api/v1/write`, vminsert
    `.../insert/0/prometheus/api/v1/write` (the collector gateway sends OTLP there, docs/gateway.md)."""
    if not write_url.endswith("/api/v1/write"):
        raise ValueError(f"not a VictoriaMetrics remote-write URL (…/api/v1/write): {write_url}")
    return write_url.removesuffix("/api/v1/write").removesuffix("/prometheus") + "/opentelemetry/v1/metrics"


class Otelcol(Server):
    """The OpenTelemetry Collector gateway (otel-config/gateway.yaml), configured through its environment variables:
    the project's build (pipeline/otelcol.py) unless `binary` names another, e.g. an otelcol-contrib."""

    name = "otelcol"

    def __init__(self, port: int, data_dir: Path, prometheus_write_url: str, victoriametrics_write_url: str,
                 grpc_port: int, health_port: int, telemetry_port: int, relay_port: int,
                 config_files: Iterable[Path] = (GATEWAY_CONFIG,), binary: Path | None = None,
                 extra_environment: Mapping[str, str] | None = None):
        super().__init__(port, data_dir)
        self.grpc_port, self.health_port, self.telemetry_port = grpc_port, health_port, telemetry_port
        self.relay_port = relay_port
        self.config_files = [Path(path) for path in config_files]
        self.binary = binary
        self.extra_environment = dict(extra_environment or {})
        self.write_urls = {"PROMETHEUS_WRITE_URL": prometheus_write_url,
                           "VICTORIAMETRICS_OTLP_URL": victoriametrics_otlp_url(victoriametrics_write_url)}

    def ports(self) -> tuple[int, ...]:
        return self.port, self.grpc_port, self.health_port, self.telemetry_port, self.relay_port

    @property
    def ready_url(self) -> str:
        return f"http://{HOST}:{self.health_port}/"

    @property
    def otlp_url(self) -> str:
        return self.url + "/v1/metrics"

    @property
    def telemetry_address(self) -> str:
        return f"{HOST}:{self.telemetry_port}"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    def argv(self) -> list[str]:
        binary = self.binary or otelcol.binary()
        return [str(binary), *(f"--config={path}" for path in self.config_files)]

    def environment(self) -> Mapping[str, str]:
        return {"OTELCOL_OTLP_HTTP_ENDPOINT": f"{HOST}:{self.port}",
                "OTELCOL_OTLP_GRPC_ENDPOINT": f"{HOST}:{self.grpc_port}",
                "OTELCOL_HEALTH_ENDPOINT": f"{HOST}:{self.health_port}",
                "OTELCOL_TELEMETRY_HOST": HOST,
                "OTELCOL_TELEMETRY_PORT": str(self.telemetry_port),
                "OTELCOL_PROMETHEUS_RELAY_ENDPOINT": f"{HOST}:{self.relay_port}",
                "OTELCOL_STORAGE_DIR": str(self.storage_dir),
                "GOGC": OTELCOL_GOGC,
                **self.write_urls, **self.extra_environment}


class Vmalert(Server):
    name = "vmalert"

    def __init__(self, port: int, data_dir: Path, datasource_url: str, rule_files: Iterable[Path] = (),
                 notifier_url: str | None = None, evaluation_interval: str = "15s"):
        super().__init__(port, data_dir)
        self.datasource_url = datasource_url
        self.rule_files = [Path(path).resolve() for path in rule_files]
        self.notifier_url = notifier_url
        self.evaluation_interval = evaluation_interval

    def argv(self) -> list[str]:
        notifier = [f"-notifier.url={self.notifier_url}"] if self.notifier_url else ["-notifier.blackhole"]
        return [str(backends.binary("vmalert")),
                f"-httpListenAddr={HOST}:{self.port}",
                f"-datasource.url={self.datasource_url}",
                # Recording rules' results and alert state go back into the same VictoriaMetrics.
                f"-remoteWrite.url={self.datasource_url}",
                f"-remoteRead.url={self.datasource_url}",
                f"-evaluationInterval={self.evaluation_interval}",
                "-external.label=evaluator=vmalert",
                *notifier,
                *(f"-rule={path}" for path in self.rule_files)]


class Alertmanager(Server):
    name = "alertmanager"
    ready_path = "/-/ready"
    MINIMAL_CONFIG = {"route": {"receiver": "default"}, "receivers": [{"name": "default"}]}

    def __init__(self, port: int, data_dir: Path, config_file: Path | None = None):
        super().__init__(port, data_dir)
        self.config_file = Path(config_file).resolve() if config_file else None

    def argv(self) -> list[str]:
        config_file = self.config_file
        if config_file is None:
            config_file = self.data_dir / "alertmanager.yml"
            config_file.write_text(yaml.safe_dump(self.MINIMAL_CONFIG))
        return _with_debian_share([str(backends.binary("alertmanager")),
                                   f"--config.file={config_file}",
                                   f"--storage.path={self.data_dir / 'storage'}",
                                   f"--web.listen-address={HOST}:{self.port}",
                                   # No gossip: a single instance, and no second port to collide on.
                                   "--cluster.listen-address="])

    def alerts(self) -> list[dict]:
        return json.loads(http_get(self.url + "/api/v2/alerts"))


class Agent(Server):
    """The host agent (`collector run`), exporting OTLP/HTTP to `endpoint`; ready once an export succeeded."""

    name = "agent"
    ready_path = "/readyz"

    def __init__(self, port: int, data_dir: Path, endpoint: str, interval: str = "10s",
                 sources: Mapping[str, Mapping] | None = None):
        super().__init__(port, data_dir)
        self.endpoint = endpoint
        self.interval = interval
        self.sources = dict(sources or {})

    def config(self) -> dict:
        return {"exporter": {"endpoint": self.endpoint, "interval": self.interval},
                "health": {"listen": f"{HOST}:{self.port}"},
                "backlog": {"directory": str(self.data_dir / "backlog")},
                "sources": self.sources}

    def argv(self) -> list[str]:
        config_file = self.data_dir / "agent.yaml"
        config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        return [str(agent_executable()), "run", "--config", str(config_file)]

    def environment(self) -> Mapping[str, str]:
        # The standard variables win over the file: set them so that a developer's own shell can't redirect us.
        return {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": self.endpoint,
                "OTEL_METRIC_EXPORT_INTERVAL": str(int(Duration.parse(self.interval) * 1000))}


class Viewer(Server):
    """The built-in dashboard viewer (viewer/): the Grafana dashboards on either backend, Alertmanager's alerts and
    silences, and the runbooks; paths as Grafana's (/d/<uid>), so the rules' dashboard_url opens it."""

    name = "viewer"
    ready_path = "/api/datasources"

    def __init__(self, port: int, data_dir: Path, prometheus_url: str, victoriametrics_url: str,
                 alertmanager_url: str):
        super().__init__(port, data_dir)
        self.backend_urls = {"prometheus": prometheus_url, "victoriametrics": victoriametrics_url,
                             "alertmanager": alertmanager_url}

    def argv(self) -> list[str]:
        if not VIEWER_LIBRARIES.is_dir():
            raise backends.MissingBackend("the viewer's npm packages are not installed: run `make viewer`")
        urls = [argument for name, url in self.backend_urls.items() for argument in (f"--{name}", url)]
        return [sys.executable, "-m", "viewer", "--host", HOST, "--port", str(self.port), *urls]


def agent_executable() -> Path:
    beside_python = Path(sys.executable).parent / "collector"
    found = beside_python if beside_python.is_file() else shutil.which("collector")
    if not found:
        raise backends.MissingBackend("the agent's `collector` command is not installed: run `make venv`")
    return Path(found)


def _with_debian_share(command: list[str]) -> list[str]:
    """Debian's Alertmanager reads its default templates and UI from DEBIAN_ALERTMANAGER_SHARE, which a package
    that is only unpacked into the cache lacks: show it the cached copy in a private mount namespace."""
    share = Path(command[0]).parent.parent / "share"
    if DEBIAN_ALERTMANAGER_SHARE.is_dir() or not (share / "prometheus" / "alertmanager").is_dir():
        return command
    user_namespace = [] if os.geteuid() == 0 else ["--map-root-user"]
    script = f'mount -t overlay overlay -o "lowerdir={share}:/usr/share" /usr/share && exec "$@"'
    return ["unshare", "--mount", *user_namespace, "sh", "-c", script, "alertmanager", *command]


def flags_from_file(path: Path) -> list[str]:
    """One flag per line; blank lines and lines starting with '#' are ignored."""
    lines = (line.strip() for line in Path(path).read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
