"""`python -m pipeline.run` (make run) as a user runs it: a real stack on free ports, stopped by a signal."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline import run
from pipeline.run import GATEWAY_PORTS, PORTS, Supervised, build, env_name, parse_args
from pipeline.services import (
    REPO_ROOT,
    Otelcol,
    PortInUse,
    Prometheus,
    ServerFailed,
    VictoriaMetrics,
    Vmagent,
    http_get,
    port_is_free,
)
from pipeline.testing import GATEWAYS, free_port, interruptible_by_ctrl_c, require_binary, wait_for

MINIMAL_ALERTMANAGER = "route: {receiver: local}\nreceivers: [{name: local}]\n"
SAMPLES = "count_over_time(system_memory_limit_bytes[1h])"


# Jobs whose `up` each backend holds, per gateway.
SCRAPED_JOBS = {"vmagent": set(Vmagent.SCRAPED_JOBS),
                "otelcol": {"otelcol", "prometheus", "victoriametrics", "vmalert", "alertmanager"}}


class Stack:
    def __init__(self, tmp_path: Path, gateway: str = GATEWAYS[0]):
        for name in ("prometheus", "victoria-metrics", "vmalert", "alertmanager", "vmagent", "otelcol"):
            require_binary(name)
        self.gateway = gateway
        self.data_dir = tmp_path / "data"
        self.ports = {name: free_port() for name in PORTS}
        # No test may reach outside this machine: the repository's receivers point at real services.
        self.alertmanager_config = tmp_path / "alertmanager.yml"
        self.alertmanager_config.write_text(MINIMAL_ALERTMANAGER)
        self.output = tmp_path / "run.out"
        self.process: subprocess.Popen | None = None
        self.prometheus = Prometheus(self.ports["prometheus"], tmp_path / "unused")
        self.victoriametrics = VictoriaMetrics(self.ports["victoriametrics"], tmp_path / "unused")

    def argv(self) -> list[str]:
        ports = [argument for name, port in self.ports.items() for argument in (f"--{name}-port", str(port))]
        return [sys.executable, "-m", "pipeline.run", "--data-dir", str(self.data_dir),
                "--agent-interval", "1s", "--status-interval", "1",
                "--alertmanager-config", str(self.alertmanager_config), *ports]

    def environment(self) -> dict[str, str]:
        """The collector is the default gateway, chosen by not choosing; vmagent as the README chooses it
        (`PIPELINE_GATEWAY=vmagent make run`)."""
        return {**os.environ, **({"PIPELINE_GATEWAY": self.gateway} if self.gateway != GATEWAYS[0] else {})}

    def start(self) -> None:
        with open(self.output, "w") as output:
            self.process = subprocess.Popen(self.argv(), cwd=REPO_ROOT, env=self.environment(), stdout=output,
                                            stderr=subprocess.STDOUT, preexec_fn=interruptible_by_ctrl_c)
        wait_for(lambda: "pipeline running" in self.text() or self.process.poll() is not None, timeout=120,
                 what="the stack to start")
        assert self.process.poll() is None, self.text()

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(60)

    def text(self) -> str:
        return self.output.read_text()

    def status_counts(self) -> list[tuple[int, int]]:
        """(Prometheus, VictoriaMetrics) host series counts of each status line printed so far."""
        return [(int(prometheus), int(victoriametrics)) for prometheus, victoriametrics in re.findall(
            r"prometheus: (\d+) host series, newest \d+s old  \|  victoriametrics: (\d+) host series", self.text())]

    def banner_urls(self) -> dict[str, str]:
        """label -> the URL the banner prints for it."""
        return dict(re.findall(r"^  (\S.*?)\s{2,}(http://\S+)", self.text(), re.MULTILINE))

    def samples(self, backend) -> float:
        result = backend.query(SAMPLES)
        return float(result[0]["value"][1]) if result else 0.0

    def process_listening_on(self, port: int) -> int:
        """The pid of the stack's process that listens on `port` (found through its socket's inode)."""
        inodes = {line.split()[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                  if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"}
        for proc in Path("/proc").iterdir():
            try:
                if str(self.data_dir) in os.readlink(proc / "cwd") and any(
                        os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes
                        for fd in (proc / "fd").iterdir()):
                    return int(proc.name)
            except OSError:
                continue
        raise AssertionError(f"nothing of the stack listens on {port}")

    def leftovers(self) -> list[str]:
        """Processes still working in the stack's data directory."""
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if str(self.data_dir) in os.readlink(proc / "cwd"):
                    found.append((proc / "cmdline").read_text().replace("\0", " "))
            except OSError:
                continue
        return found


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path)
    yield stack
    if stack.process and stack.process.poll() is None:
        stack.stop(signal.SIGKILL)


@pytest.fixture(params=GATEWAYS)
def any_stack(request, tmp_path):
    stack = Stack(tmp_path, request.param)
    yield stack
    if stack.process and stack.process.poll() is None:
        stack.stop(signal.SIGKILL)


def scraped_jobs(backend) -> set[str]:
    """The jobs the gateway scraped successfully, as the backend saw it."""
    return {sample["metric"]["job"] for sample in backend.query("up == 1")}


def rule_groups(url: str) -> list:
    return json.loads(http_get(url + "/api/v1/rules"))["data"]["groups"]


def test_run_starts_serves_refuses_a_second_run_stops_and_keeps_its_data(any_stack):
    stack = any_stack
    stack.start()
    assert f"gateway ({stack.gateway})" in stack.text()
    backends = (stack.prometheus, stack.victoriametrics)
    for backend in backends:
        wait_for(lambda: stack.samples(backend) >= 3, timeout=60, what=f"agent data in {backend.name}")
    wait_for(lambda: stack.status_counts()[-1:] and 0 not in stack.status_counts()[-1], timeout=15,
             what="a status line counting series in both backends")
    assert re.search(r"\|  agent ready, backlog \d+ KiB in \d+ files  \|  alerts firing: prometheus \d+, "
                     r"vmalert \d+, in alertmanager \d+$", stack.text().rstrip().splitlines()[-1])
    urls = stack.banner_urls()
    assert {"Alertmanager", "Prometheus", "VictoriaMetrics", "vmalert", "agent", "dashboards"} <= set(urls)
    for label, url in urls.items():
        # The gateway's URL is where agents send OTLP (POST); every other one is a page or API that answers GET.
        request = urllib.request.Request(url, data=b"", headers={"Content-Type": "application/x-protobuf"}) \
            if label.startswith("gateway") else url
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 204), f"{label} {url}: {response.status}"
    for backend in backends:
        wait_for(lambda: scraped_jobs(backend) == SCRAPED_JOBS[stack.gateway], timeout=45,
                 what=f"every pipeline component scraped into {backend.name}")
    if sorted((REPO_ROOT / "rules").glob("*.rules.yml")):
        assert rule_groups(stack.prometheus.url), "Prometheus loaded no rules"
        assert rule_groups(f"http://127.0.0.1:{stack.ports['vmalert']}"), "vmalert loaded no rules"

    second = subprocess.run(stack.argv(), cwd=REPO_ROOT, env=stack.environment(), capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 1
    assert "already running" in second.stderr and str(stack.data_dir) in second.stderr

    before = {backend.name: stack.samples(backend) for backend in backends}
    assert stack.stop(signal.SIGINT) == 0, stack.text()
    assert stack.text().rstrip().endswith("stopped")
    assert stack.leftovers() == []
    assert all(port_is_free(port) for port in stack.ports.values())

    stack.start()
    for backend in backends:
        assert stack.samples(backend) >= before[backend.name], f"{backend.name} lost data over a restart"
    assert stack.stop(signal.SIGTERM) == 0, stack.text()
    assert stack.leftovers() == []


@pytest.mark.parametrize("via", ["option", "environment"])
def test_busy_port_names_the_port_and_how_to_change_it(stack, via):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv, env = stack.argv(), stack.environment()
        if via == "option":
            argv[argv.index("--vmalert-port") + 1] = str(port)
        else:
            del argv[argv.index("--vmalert-port"):argv.index("--vmalert-port") + 2]
            env[env_name("vmalert-port")] = str(port)
        done = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"port {port} (vmalert) is already in use" in done.stderr
    assert "--vmalert-port" in done.stderr and "PIPELINE_VMALERT_PORT" in done.stderr
    assert stack.leftovers() == []


@pytest.mark.parametrize(("gateway", "name"), [("otelcol", "otlp-http"), ("otelcol", "otlp-grpc"),
                                             ("vmagent", "vmagent")])
def test_a_busy_port_of_the_chosen_gateway_is_named_before_anything_starts(stack, gateway, name):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = stack.argv()
        argv[argv.index(f"--{name}-port") + 1] = str(port)
        done = subprocess.run([*argv, "--gateway", gateway], cwd=REPO_ROOT, env=stack.environment(),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"port {port} ({name}) is already in use") and f"--{name}-port" in done.stderr
    assert "starting" not in done.stdout
    assert stack.leftovers() == []


@pytest.mark.parametrize("gateway", ["vmagent", "otelcol"])
def test_every_component_is_scraped_once_into_each_backend(tmp_path, gateway):
    ports = {name: free_port() for name in PORTS}
    args = parse_args(["--data-dir", str(tmp_path), *(f"--{name}-port={port}" for name, port in ports.items())])
    servers = {type(server).__name__: server for _, server, _ in build(args, gateway)}
    components = {job: f"127.0.0.1:{ports[job]}"
                  for job in ("prometheus", "victoriametrics", "vmalert", "alertmanager")}
    if gateway == "vmagent":
        assert servers["Vmagent"].scrape_targets == {"vmagent": f"127.0.0.1:{ports['vmagent']}", **components}
        expected_by_backends = {}
    else:
        expected_by_backends = {**components, "otelcol": f"127.0.0.1:{ports['otelcol-telemetry']}"}
    assert servers["Prometheus"].scrape_targets == servers["VictoriaMetrics"].scrape_targets == expected_by_backends


def test_a_collector_that_cannot_run_is_named_before_anything_starts(stack, tmp_path):
    missing = tmp_path / "otelcol-contrib"
    done = subprocess.run([*stack.argv(), "--otelcol-binary", str(missing)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == f"python -m pipeline.run: --otelcol-binary {missing}: expected an executable file\n"
    assert "starting" not in done.stdout
    assert stack.leftovers() == []


def test_the_status_line_shows_a_gateway_outage_and_the_recovery(stack):
    stack.start()
    last_line = lambda: stack.text().rstrip().splitlines()[-1]  # noqa: E731
    # Host data in both backends first: a just-started agent is ready before its first export went through.
    flowing = r"prometheus: [1-9]\d* host series, newest \d+s old  \|  victoriametrics: [1-9]\d* host series, " \
              r"newest \d+s old  \|  agent ready, backlog 0 KiB in 0 files"
    wait_for(lambda: re.search(flowing, last_line()), timeout=60, what="host data flowing to a ready agent")
    gateway = stack.process_listening_on(stack.ports[GATEWAY_PORTS[stack.gateway][0]])
    os.kill(gateway, signal.SIGSTOP)
    try:
        # The newest host sample ages, and after 5 minutes without one the backends say so.
        outage = (r"(?:newest (\d+)s old|no host data in the last 5m) "
                  r".*agent NOT READY \(last successful export \d+s ago\), backlog \d+ KiB in ([1-9]\d*) files")
        try:
            found = wait_for(lambda: re.search(outage, last_line()), timeout=90, what="the outage on the status line")
        except AssertionError as failure:
            raise AssertionError(f"{failure}; last status line: {last_line()}") from None
        assert found.group(1) is None or int(found.group(1)) >= 3
    finally:
        os.kill(gateway, signal.SIGCONT)
    wait_for(lambda: "agent ready, backlog 0 KiB in 0 files" in last_line(), timeout=60, what="the recovery")
    assert stack.stop(signal.SIGTERM) == 0


# A bad value of each kind, given as its option or its variable, and what the one line must say it may be.
BAD_VALUES = [
    ("gateway", "vmagnet", "otelcol or vmagent"),
    ("prometheus-port", "90g1", "a port number, 1-65535"),
    ("prometheus-port", "0", "a port number, 1-65535"),
    ("otlp-http-port", "70000", "a port number, 1-65535"),
    ("agent-interval", "10sec", "a duration such as 10s, 500ms or 5m"),
    ("agent-interval", "0s", "a duration such as 10s, 500ms or 5m"),
    ("status-interval", "-1", "a number of seconds above 0"),
    ("status-interval", "0", "a number of seconds above 0"),
    ("alertmanager-config", "/nonexistent/alertmanager.yml", "an existing file"),
    ("rules-dir", "/nonexistent/rules", "an existing directory"),
]


@pytest.mark.parametrize("via", ["option", "environment"])
@pytest.mark.parametrize(("name", "value", "allowed"), BAD_VALUES, ids=[f"{n}={v}" for n, v, _ in BAD_VALUES])
def test_a_bad_value_is_named_with_what_it_may_be_before_anything_starts(stack, via, name, value, allowed):
    argv, env = stack.argv(), stack.environment()
    if f"--{name}" in argv:
        del argv[argv.index(f"--{name}"):argv.index(f"--{name}") + 2]
    if via == "option":
        argv += [f"--{name}", value]
        named = f"--{name} {value}"
    else:
        env[env_name(name)] = value
        named = f"{env_name(name)}={value}"
    done = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and named in done.stderr and allowed in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert stack.leftovers() == []


def test_a_gateway_that_exits_is_restarted_and_the_outage_arrives_afterwards(stack):
    stack.start()
    wait_for(lambda: "agent ready, backlog 0 KiB in 0 files" in stack.text().rstrip().splitlines()[-1], timeout=60,
             what="a ready agent with an empty backlog")
    wait_for(lambda: all(stack.samples(backend) >= 3 for backend in (stack.prometheus, stack.victoriametrics)),
             timeout=60, what="agent data in both backends")
    gateway_port = stack.ports[GATEWAY_PORTS[stack.gateway][0]]
    gateway = stack.process_listening_on(gateway_port)
    exited_at = time.time()
    os.kill(gateway, signal.SIGTERM)
    wait_for(lambda: re.search(r"^gateway \(otelcol\) exited with status \d+ \(log \S+/otelcol/server\.log\): "
                               r"restarting in 5s$", stack.text(), re.MULTILINE),
             timeout=30, what="one line saying the gateway exited")
    # Meanwhile everything else runs, and the agent keeps what it cannot send.
    wait_for(lambda: re.search(r"agent NOT READY \(.*\), backlog \d+ KiB in [1-9]\d* files", stack.text()),
             timeout=30, what="the agent buffering while the gateway is away")
    wait_for(lambda: "gateway (otelcol) is back" in stack.text(), timeout=60, what="the gateway restarted")
    back_at = time.time()
    assert stack.process.poll() is None and stack.process_listening_on(gateway_port) != gateway
    wait_for(lambda: "agent ready, backlog 0 KiB in 0 files" in stack.text().rstrip().splitlines()[-1], timeout=60,
             what="the backlog drained")
    # The agent exports every second: the seconds of the outage hold (nearly) as many samples, sent afterwards.
    outage = int(back_at - exited_at)
    assert outage >= 5
    in_outage = f"count_over_time(system_memory_limit_bytes[{outage}s] @ {back_at:.0f})"
    for backend in (stack.prometheus, stack.victoriametrics):
        wait_for(lambda: (result := backend.query(in_outage)) and float(result[0]["value"][1]) >= outage - 2,
                 timeout=30, what=f"the outage's samples in {backend.name}")
    assert "stopped unexpectedly" not in stack.text()
    assert stack.stop(signal.SIGTERM) == 0
    assert stack.leftovers() == []


class ExitingServer:
    """Exits at once, every time it is started."""

    log_path = Path("/data/gateway/server.log")

    def __init__(self):
        self.process = subprocess.CompletedProcess([], returncode=-signal.SIGKILL)

    def running(self):
        return False

    def start(self, timeout):
        pass

    def log_tail(self):
        return "the log's last lines"

    def keep_log(self):
        return self.log_path.with_name("server.previous.log")


def test_a_server_exiting_soon_after_each_start_is_restarted_later_each_time_then_given_up(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(run.time, "monotonic", lambda: clock[0])
    said = []
    supervised = Supervised("gateway (otelcol)", ExitingServer())
    delays = []
    with pytest.raises(ServerFailed) as given_up:
        for _ in range(20):
            supervised.check(said.append)
            if supervised.restart_at is not None:
                delays.append(supervised.restart_at - clock[0])
                clock[0] = supervised.restart_at
                supervised.check(said.append)   # restarts it
                clock[0] += 1
    assert delays == [5, 10, 20, 40]
    assert said[0] == "gateway (otelcol) was killed by SIGKILL (log /data/gateway/server.log): restarting in 5s"
    assert said[1] == ("restarting gateway (otelcol) … "
                       "(the log of the run that ended: /data/gateway/server.previous.log)")
    assert said[2] == "gateway (otelcol) is back"
    assert said[3].endswith(", 2 times in a row soon after its start: restarting in 10s")
    assert str(given_up.value).startswith("gateway (otelcol) was killed by SIGKILL, 5 times in a row within 60s")
    assert str(given_up.value).endswith("the log's last lines")


class UnstartableServer(ExitingServer):
    """Exited once; every start after that fails."""

    def __init__(self):
        super().__init__()
        self.starts = 0

    def start(self, timeout):
        self.starts += 1
        raise ServerFailed("otelcol exited with 1:\nError: cannot start pipelines")


def test_a_server_that_fails_every_restart_is_given_up_at_the_fifth_failure_in_a_row(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(run.time, "monotonic", lambda: clock[0])
    said = []
    server = UnstartableServer()
    supervised = Supervised("gateway (otelcol)", server)
    delays = []
    with pytest.raises(ServerFailed) as given_up:
        for _ in range(20):
            supervised.check(said.append)   # the exit, then each failed restart
            delays.append(supervised.restart_at - clock[0])
            clock[0] = supervised.restart_at
    assert server.starts == 4 and delays == [5, 10, 20, 40]
    assert said[2] == ("gateway (otelcol) could not start: otelcol exited with 1: (log /data/gateway/server.log), "
                       "2 times in a row soon after its start: restarting in 10s")
    assert str(given_up.value).startswith(
        "gateway (otelcol) could not start: otelcol exited with 1:, 5 times in a row within 60s of its start")


def test_an_exit_after_a_long_run_starts_the_count_afresh(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(run.time, "monotonic", lambda: clock[0])
    said = []
    supervised = Supervised("gateway (otelcol)", ExitingServer())
    clock[0] += 7200
    supervised.check(said.append)                    # exits after two hours
    clock[0] = supervised.restart_at
    supervised.check(said.append)                    # restarts it
    supervised.check(said.append)                    # exits at once: the first quick exit
    assert [line.rsplit(": ", 1)[1] for line in (said[0], said[3])] == ["restarting in 5s", "restarting in 5s"]
    assert "times in a row" not in said[3]


def test_a_restart_keeps_the_log_that_says_why_the_server_ended(tmp_path):
    server = Prometheus(0, tmp_path)
    server.log_path.write_text("FATAL: the reason\n")
    assert server.keep_log().read_text() == "FATAL: the reason\n"
    assert not server.log_path.exists()


def test_the_log_tail_is_the_log_s_last_lines(tmp_path):
    server = Prometheus(0, tmp_path)
    server.log_path.write_text("".join(f"line {n}\n" for n in range(1, 101)))
    assert server.log_tail(3) == "line 98\nline 99\nline 100"


@pytest.mark.parametrize("held", ["port", "grpc_port", "health_port", "telemetry_port", "relay_port"])
def test_the_collector_does_not_start_while_any_of_its_ports_is_held(tmp_path, held):
    ports = {name: free_port() for name in ("port", "grpc_port", "health_port", "telemetry_port", "relay_port")}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports[held] = busy.getsockname()[1]
        # No binary: the check comes first, nothing is run.
        gateway = Otelcol(**ports, data_dir=tmp_path, prometheus_write_url="http://127.0.0.1:1/api/v1/write",
                          victoriametrics_write_url="http://127.0.0.1:2/api/v1/write", binary=tmp_path / "no-otelcol")
        with pytest.raises(PortInUse) as in_use:
            gateway.start(timeout=1)
    assert in_use.value.port == ports[held]
    assert gateway.process is None
