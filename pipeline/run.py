"""`make run`: the whole pipeline on 127.0.0.1 — gateway, Prometheus, VictoriaMetrics, vmalert, Alertmanager
and the agent — with data under .data/ that survives a restart. A server that exits is restarted (Supervised);
Ctrl-C or SIGTERM stops everything.

    python -m pipeline.run [--prometheus-port 9090 ...] [--data-dir .data] [--gateway otelcol|vmagent]

Every option also reads an environment variable (PIPELINE_PROMETHEUS_PORT, PIPELINE_DATA_DIR, ...): see --help.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import sys
import time
import urllib.error
from contextlib import ExitStack
from pathlib import Path

from collector.units import Duration
from pipeline import backends, otelcol
from pipeline.services import (
    HOST,
    REPO_ROOT,
    Agent,
    Alertmanager,
    Otelcol,
    PortInUse,
    Prometheus,
    Server,
    ServerFailed,
    VictoriaMetrics,
    Viewer,
    Vmagent,
    Vmalert,
    http_get,
    port_is_free,
)

PORTS = {
    "prometheus": 9090, "alertmanager": 9093, "victoriametrics": 8428, "vmalert": 8880, "vmagent": 8429,
    "otlp-http": 4318, "otlp-grpc": 4317, "otelcol-health": 13133, "otelcol-telemetry": 8888,
    "otelcol-prometheus-relay": 4320, "agent-health": 13134, "viewer": 3000,
}
# The agent's opt-in sources, on so that the dashboards' panels have data: per-core CPU, connections, top processes,
# the workload sources (a process group for the agent itself; systemd and cgroup v2 where the host has them; a
# textfile directory, .data/agent/textfile, for the user's *.prom files).
AGENT_SOURCES = {"cpu": {"per_cpu": True}, "network": {"connections": True}, "top_processes": {"enabled": True},
                 "process_groups": {"enabled": True, "groups": {"hostagent": {"cmdline": ["collector run"]}}},
                 "systemd": {"enabled": True}, "cgroup": {"enabled": True}}
GATEWAY_PORTS = {"vmagent": ("vmagent",),
                 "otelcol": ("otlp-http", "otlp-grpc", "otelcol-health", "otelcol-telemetry",
                             "otelcol-prometheus-relay")}
ALERTMANAGER_CONFIG = REPO_ROOT / "alertmanager" / "alertmanager.yml"
RULES_DIR = REPO_ROOT / "rules"
EXIT_FAILED, EXIT_USAGE = 1, 2
RESTART_DELAY, RESTART_TIMEOUT = 5.0, 60.0
QUICK_EXIT, QUICK_EXITS_ALLOWED = 60.0, 5


class Stop(Exception):
    """SIGTERM, handled like Ctrl-C."""


def env_name(option: str) -> str:
    return "PIPELINE_" + option.upper().replace("-", "_")


def port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise ValueError("a port number, 1-65535")
    return int(text)


def duration(text: str) -> str:
    """The agent's export interval, kept as written (the agent's config reads it)."""
    try:
        if Duration.parse(text) > 0:
            return text
    except ValueError:
        pass
    raise ValueError("a duration such as 10s, 500ms or 5m, above 0")


def seconds(text: str) -> float:
    try:
        if float(text) > 0:
            return float(text)
    except ValueError:
        pass
    raise ValueError("a number of seconds above 0, such as 5 or 0.5")


def existing_file(text: str) -> Path:
    if not Path(text).is_file():
        raise ValueError("an existing file")
    return Path(text)


def existing_directory(text: str) -> Path:
    if not Path(text).is_dir():
        raise ValueError("an existing directory")
    return Path(text)


def one_of(*choices: str):
    def choice(text: str) -> str:
        if text not in choices:
            raise ValueError(" or ".join(choices))
        return text
    return choice


def executable_file(text: str) -> Path:
    if not (Path(text).is_file() and os.access(text, os.X_OK)):
        raise ValueError("an executable file")
    return Path(text)


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Every option checked in one place, given as an option or as its variable, before anything starts: a bad
    value is one line naming the option or the variable and what it may be (exit 2)."""
    parser = Parser(prog="python -m pipeline.run", description=__doc__.split("\n\n")[0])
    checks: dict[str, tuple[object, object]] = {}   # option -> (default, check: text -> value or ValueError)

    def option(name: str, default, check, help: str = ""):
        shown_default = "" if default is None else f"; default {default}"
        parser.add_argument(f"--{name}", metavar=name.rsplit("-", 1)[-1].upper(),
                            help=f"{help} (env {env_name(name)}{shown_default})".lstrip())
        checks[name] = default, check

    for name, default in PORTS.items():
        option(f"{name}-port", default, port)
    option("data-dir", REPO_ROOT / ".data", Path, help="where every server keeps its data")
    option("gateway", "otelcol", one_of("otelcol", "vmagent"),
           help="otelcol: the project's OpenTelemetry Collector build (make otelcol); vmagent: VictoriaMetrics' agent")
    option("otelcol-binary", None, executable_file,
           help="run this collector (e.g. an otelcol-contrib of the same release) instead of the project's build")
    option("agent-interval", "10s", duration, help="the agent's export interval")
    # The repository's alertmanager.yml notifies real mail and chat services once its secrets are set: opt in.
    option("alertmanager-config", None, existing_file,
           help=f"Alertmanager configuration, e.g. {ALERTMANAGER_CONFIG.relative_to(REPO_ROOT)} with its secrets "
                "in place; default: a built-in one that notifies nobody")
    option("rules-dir", RULES_DIR, existing_directory, help="Prometheus and vmalert load its *.rules.yml")
    option("status-interval", 5.0, seconds, help="seconds between status lines")
    args = parser.parse_args(argv)
    for name, (default, check) in checks.items():
        dest = name.replace("-", "_")
        given, text = f"--{name}", getattr(args, dest)
        if text is None:
            given, text = env_name(name), os.environ.get(env_name(name))
        if text is None:
            setattr(args, dest, default)
            continue
        try:
            setattr(args, dest, check(text))
        except ValueError as problem:
            shown = f"--{name} {text}" if given.startswith("--") else f"{given}={text}"
            parser.exit(EXIT_USAGE, f"{parser.prog}: {shown}: expected {problem}\n")
    return args


def busy_port_error(args: argparse.Namespace, gateway: str) -> str | None:
    gateway_specific = {name for names in GATEWAY_PORTS.values() for name in names}
    for name in PORTS:
        if name in gateway_specific and name not in GATEWAY_PORTS[gateway]:
            continue
        port = getattr(args, f"{name.replace('-', '_')}_port")
        if not port_is_free(port):
            return (f"port {port} ({name}) is already in use on {HOST}: "
                    f"choose another with --{name}-port PORT or {env_name(name + '-port')}=PORT")
    return None


def component_addresses(args: argparse.Namespace) -> dict[str, str]:
    """job -> host:port of the components whose own metrics the pipeline alerts on."""
    return {job: f"{HOST}:{getattr(args, f'{job}_port')}"
            for job in ("prometheus", "victoriametrics", "vmalert", "alertmanager")}


def build(args: argparse.Namespace, gateway: str) -> list[tuple[str, Server, str]]:
    """(label, server, what to open) in start order."""
    data, rules = args.data_dir, sorted(args.rules_dir.glob("*.rules.yml"))
    components = component_addresses(args)
    # The components' own metrics: the vmagent gateway scrapes them into both backends. The collector scrapes
    # nothing (docs/gateway.md): then each backend scrapes them and the collector itself, as in compose.
    backend_scrapes = {**components, "otelcol": f"{HOST}:{args.otelcol_telemetry_port}"} if gateway == "otelcol" else {}
    alertmanager = Alertmanager(args.alertmanager_port, data / "alertmanager", args.alertmanager_config)
    victoriametrics = VictoriaMetrics(args.victoriametrics_port, data / "victoria-metrics",
                                      scrape_targets=backend_scrapes, force_flush=False)
    prometheus = Prometheus(args.prometheus_port, data / "prometheus", rule_files=rules,
                            alertmanager_url=alertmanager.url, scrape_targets=backend_scrapes)
    vmalert = Vmalert(args.vmalert_port, data / "vmalert", victoriametrics.url, rule_files=rules,
                      notifier_url=alertmanager.url)
    if gateway == "otelcol":
        gateway_server = Otelcol(args.otlp_http_port, data / "otelcol", prometheus.write_url,
                                 victoriametrics.write_url, grpc_port=args.otlp_grpc_port,
                                 health_port=args.otelcol_health_port, telemetry_port=args.otelcol_telemetry_port,
                                 relay_port=args.otelcol_prometheus_relay_port,
                                 binary=args.otelcol_binary)
        gateway_note = f"OTLP/HTTP in; OTLP/gRPC at {HOST}:{args.otlp_grpc_port}"
    else:
        gateway_server = Vmagent(args.vmagent_port, data / "vmagent", prometheus.write_url, victoriametrics.write_url,
                                 scrape_targets=components)
        gateway_note = "OTLP/HTTP in"
    textfiles = data / "agent" / "textfile"
    textfiles.mkdir(parents=True, exist_ok=True)
    agent = Agent(args.agent_health_port, data / "agent", gateway_server.otlp_url, interval=args.agent_interval,
                  sources={**AGENT_SOURCES, "textfile": {"enabled": True, "directory": str(textfiles)}})
    viewer = Viewer(args.viewer_port, data / "viewer", prometheus.url, victoriametrics.url, alertmanager.url)
    return [
        # Debian's builds leave out Alertmanager's UI and VictoriaMetrics' vmui: the viewer (last line) shows both.
        ("Alertmanager", alertmanager, f"{alertmanager.url}/api/v2/alerts  API; alerts from Prometheus and vmalert"),
        ("VictoriaMetrics", victoriametrics,
         f"{victoriametrics.url}/api/v1/status/tsdb  series statistics; PromQL API at /api/v1/query"),
        ("Prometheus", prometheus,
         f"{prometheus.url}/classic/graph  UI; rules at /classic/rules, alerts at /classic/alerts"),
        ("vmalert", vmalert, f"{vmalert.url}  the same rules against VictoriaMetrics"),
        (f"gateway ({gateway})", gateway_server, f"{gateway_server.otlp_url}  {gateway_note}"),
        ("agent", agent, f"{agent.url}/readyz  exporting every {args.agent_interval}"),
        ("dashboards", viewer, f"{viewer.url}/  the Grafana dashboards on either backend; alerts and silences "
                               f"at {viewer.url}/alerts"),
    ]


def missing_binary_error(args: argparse.Namespace, gateway: str) -> str | None:
    needed = (("alertmanager", "victoria-metrics", "prometheus", "vmalert")
              + (("vmagent",) if gateway == "vmagent" else ()))
    try:
        for name in needed:
            backends.binary(name)
        if gateway == "otelcol" and args.otelcol_binary is None:
            otelcol.binary()
    except backends.MissingBackend as missing:
        return str(missing)
    return None


# The agents' own series (every one carries host_name), without rule results (recorded names have a colon).
HOST_SERIES = '{host_name!="", __name__!~".+:.+|ALERTS|ALERTS_FOR_STATE"}'
NEWEST_HOST_SAMPLE_AGE = "time() - max(timestamp(system_uptime_seconds))"


def status_line(servers: dict[str, Server]) -> str:
    """Per backend the host series and the age of the newest host sample, the agent's readiness and backlog,
    and the alerts firing; a part that cannot be read shows "?"."""
    def attempt(read) -> str:
        try:
            return str(read())
        except (OSError, RuntimeError, ValueError, KeyError):
            return "?"

    def host_data(backend) -> str:
        series = backend.query(f"count({HOST_SERIES})")
        age = backend.query(NEWEST_HOST_SAMPLE_AGE)
        if not series or not age:
            return "no host data in the last 5m"
        return f"{int(float(series[0]['value'][1]))} host series, newest {float(age[0]['value'][1]):.0f}s old"

    def readiness(agent) -> str:
        try:
            http_get(agent.ready_url, timeout=2)
            return "ready"
        except urllib.error.HTTPError as not_ready:
            return f"NOT READY ({not_ready.read().decode(errors='replace').strip()})"

    def backlog(agent) -> str:
        files = [path for path in (agent.data_dir / "backlog").rglob("*") if path.is_file()]
        return f"backlog {sum(path.stat().st_size for path in files) / 1024:.0f} KiB in {len(files)} files"

    def firing(server) -> int:
        alerts = json.loads(http_get(server.url + "/api/v1/alerts"))["data"]["alerts"]
        return sum(alert["state"] == "firing" for alert in alerts)

    agent = servers["agent"]
    return (f"{time.strftime('%H:%M:%S')}  prometheus: {attempt(lambda: host_data(servers['Prometheus']))}  |  "
            f"victoriametrics: {attempt(lambda: host_data(servers['VictoriaMetrics']))}  |  "
            f"agent {attempt(lambda: readiness(agent))}, {attempt(lambda: backlog(agent))}  |  alerts firing: "
            f"prometheus {attempt(lambda: firing(servers['Prometheus']))}, "
            f"vmalert {attempt(lambda: firing(servers['vmalert']))}, "
            f"in alertmanager {attempt(lambda: len(servers['Alertmanager'].alerts()))}")


def hold_lock(data_dir: Path):
    """The open lock file while this is the only run using `data_dir`, else None."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "run.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "?"
        handle.close()
        print(f"the pipeline is already running with data in {data_dir} (pid {owner}): "
              f"stop it first (Ctrl-C in its terminal, or kill {owner})", file=sys.stderr)
        return None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


class Supervised:
    """A server the launcher restarts when it exits, as a supervisor would: after RESTART_DELAY, doubled for each
    exit in a row within QUICK_EXIT of its start after the first; the run ends at the QUICK_EXITS_ALLOWED-th such
    exit in a row, with the end of its log."""

    def __init__(self, label: str, server: Server):
        self.label, self.server = label, server
        self.started = time.monotonic()
        self.quick_exits = 0
        self.restart_at: float | None = None

    def check(self, say) -> None:
        """Notice an exit and schedule the restart; restart when it is due."""
        now = time.monotonic()
        if self.restart_at is None and not self.server.running():
            self.schedule(exit_status(self.server.process.returncode), now - self.started < QUICK_EXIT, say)
        elif self.restart_at is not None and now >= self.restart_at:
            say(f"restarting {self.label} … (the log of the run that ended: {self.server.keep_log()})")
            try:
                self.server.start(timeout=RESTART_TIMEOUT)
            except (ServerFailed, PortInUse) as failure:
                self.schedule(f"could not start: {str(failure).splitlines()[0]}", True, say)
                return
            self.started, self.restart_at = time.monotonic(), None
            say(f"{self.label} is back")

    def schedule(self, reason: str, quick: bool, say) -> None:
        self.quick_exits = self.quick_exits + 1 if quick else 0
        if self.quick_exits >= QUICK_EXITS_ALLOWED:
            raise ServerFailed(f"{self.label} {reason}, {self.quick_exits} times in a row within {QUICK_EXIT:.0f}s "
                               f"of its start: giving up (log {self.server.log_path}):\n{self.server.log_tail()}")
        delay = RESTART_DELAY * 2 ** max(0, self.quick_exits - 1)
        again = f", {self.quick_exits} times in a row soon after its start" if self.quick_exits > 1 else ""
        say(f"{self.label} {reason} (log {self.server.log_path}){again}: restarting in {delay:.0f}s")
        self.restart_at = time.monotonic() + delay


def exit_status(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def watch(servers: dict[str, Server], interval: float) -> None:
    supervised = [Supervised(label, server) for label, server in servers.items()]
    tty = sys.stdout.isatty()

    def say(line: str) -> None:
        print(("\r\033[K" if tty else "") + line, flush=True)

    while True:
        for server in supervised:
            server.check(say)
        if tty:
            print("\r\033[K" + status_line(servers), end="", flush=True)
        else:
            print(status_line(servers), flush=True)
        time.sleep(interval)


def raise_stop(signum, frame):
    raise Stop()


def preflight(args: argparse.Namespace, gateway: str) -> tuple[int, str] | None:
    """(exit code, message) when the stack cannot start; checked before anything starts."""
    try:
        backends.ensure()
    except RuntimeError as failure:
        return EXIT_FAILED, f"could not fetch the backends: {failure}"
    if error := missing_binary_error(args, gateway):
        return EXIT_FAILED, error
    if error := busy_port_error(args, gateway):
        return EXIT_USAGE, error
    return None


def serve(planned: list[tuple[str, Server, str]], args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, raise_stop)
    width = max(len(label) for label, _, _ in planned)
    with ExitStack() as running:
        try:
            for label, server, _ in planned:
                print(f"starting {label} …", flush=True)
                server.start()
                running.callback(server.stop)
            print(f"\npipeline running on {HOST}, data in {args.data_dir} — Ctrl-C stops everything", flush=True)
            for label, _, where in planned:
                print(f"  {label:<{width}}  {where}", flush=True)
            watch({label: server for label, server, _ in planned}, args.status_interval)
        except (KeyboardInterrupt, Stop):
            print("\nstopping …", flush=True)
        except (ServerFailed, PortInUse, backends.MissingBackend) as failure:
            print(f"\n{failure}\nstopping …", file=sys.stderr, flush=True)
            return EXIT_FAILED
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lock = hold_lock(args.data_dir)
    if lock is None:
        return EXIT_FAILED
    with lock:
        if problem := preflight(args, args.gateway):
            code, message = problem
            print(message, file=sys.stderr)
            return code
        return serve(build(args, args.gateway), args)


if __name__ == "__main__":
    sys.exit(main())
