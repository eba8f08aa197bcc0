"""pytest plugin: real backends on 127.0.0.1, free ports, temporary directories (loaded by tests/conftest.py).

Helpers
    require_binary(name) -> Path   the backend binary ("otelcol": the project's collector build); skips the test when missing (fails it when env CI is set)
    free_port() -> int             a port nobody listens on right now
    running(server)                context manager: start a `pipeline.services` server, stop it afterwards;
                                   a missing binary skips (or, in CI, fails) like require_binary
    wait_for(check, timeout, what) poll `check()` until it returns something truthy, return that
    gateway_pipeline_in(dir, gateway)  context manager behind the gateway_pipeline fixture, for other scopes; the
                                   components' own metrics (gateway, both backends, any other `scrape_targets`)
                                   reach both backends as in `make run`
    gateway_server(kind, ...)      the otelcol or vmagent gateway on free ports (the four arguments of Vmagent)
    agent_data_in_both(pipeline)   True once an export the agent counted as successful is in both backends

Fixtures (function scope unless noted; every server is stopped afterwards)
    prometheus         Prometheus with the remote-write receiver            .url .write_url .query() .series()
    victoriametrics    VictoriaMetrics with Prometheus naming for OTLP      .url .write_url .otlp_url .query() .series()
    alertmanager       Alertmanager with a minimal config (one receiver)    .url .alerts()
    vmalert            vmalert without rules, reading `victoriametrics`, notifying `alertmanager`
    gateway_pipeline   Pipeline(prometheus, victoriametrics, gateway): a gateway (.otlp_url) feeding both, with the
                       three's own metrics (job otelcol or vmagent, prometheus, victoriametrics) in both too;
                       parametrised over GATEWAYS: every test using it runs through the collector and vmagent
    fed_pipeline       (module scope) gateway_pipeline plus `.agent`, the real agent exporting every second;
                       yields once the agent's data is queryable in both backends

For servers with your own rule files or configs, build them from `pipeline.services` inside `running(...)`:
    with running(Prometheus(free_port(), tmp_path / "prom", rule_files=[rule])) as prom: ...
"""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from pipeline import backends, otelcol
from pipeline.services import (HOST, Agent, Alertmanager, Otelcol, Prometheus, Server, VictoriaMetrics, Vmagent,
                               Vmalert)

T = TypeVar("T")
S = TypeVar("S", bound=Server)
AGENT_INTERVAL = "1s"
# The project's collector build first: it is the default gateway.
GATEWAYS = ("otelcol", "vmagent")


@dataclass
class Pipeline:
    prometheus: Prometheus
    victoriametrics: VictoriaMetrics
    gateway: Otelcol | Vmagent
    agent: Agent | None = None

    @property
    def backends(self) -> tuple[Prometheus, VictoriaMetrics]:
        return self.prometheus, self.victoriametrics


def require_binary(name: str) -> Path:
    try:
        return otelcol.binary() if name == "otelcol" else backends.binary(name)
    except backends.MissingBackend as missing:
        unavailable(str(missing))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def running(server: S) -> Iterator[S]:
    try:
        server.start()
    except backends.MissingBackend as missing:
        unavailable(str(missing))
    try:
        yield server
    finally:
        server.stop()


def wait_for(check: Callable[[], T], timeout: float = 60.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def otelcol_gateway(port: int, data_dir: Path, prometheus_write_url: str, victoriametrics_write_url: str,
                    **options) -> Otelcol:
    """otel-config/gateway.yaml on free ports, built like the vmagent gateway (same four arguments)."""
    return Otelcol(port, data_dir, prometheus_write_url, victoriametrics_write_url,
                   grpc_port=free_port(), health_port=free_port(), telemetry_port=free_port(),
                   relay_ports=(free_port(), free_port()), **options)


def gateway_server(kind: str, port: int, data_dir: Path, prometheus_write_url: str,
                   victoriametrics_write_url: str) -> Otelcol | Vmagent:
    return {"otelcol": otelcol_gateway, "vmagent": Vmagent}[kind](port, data_dir, prometheus_write_url,
                                                                   victoriametrics_write_url)


@contextmanager
def gateway_pipeline_in(base: Path, gateway: str = GATEWAYS[0],
                        scrape_targets: Mapping[str, str] | None = None) -> Iterator[Pipeline]:
    """As in `make run`: vmagent scrapes itself, both backends and `scrape_targets` into both backends; with the
    collector, each backend scrapes them and the collector itself (docs/gateway.md)."""
    vm = VictoriaMetrics(free_port(), base / "victoria-metrics")
    prom = Prometheus(free_port(), base / "prometheus")
    targets = {"prometheus": prom.address, "victoriametrics": vm.address, **(scrape_targets or {})}
    if gateway == "vmagent":
        server = Vmagent(free_port(), base / "vmagent", prom.write_url, vm.write_url, scrape_targets=targets)
    else:
        server = otelcol_gateway(free_port(), base / "otelcol", prom.write_url, vm.write_url)
        vm.scrape_targets = prom.scrape_targets = {"otelcol": server.telemetry_address, **targets}
    with ExitStack() as stack:
        for component in (vm, prom, server):
            stack.enter_context(running(component))
        yield Pipeline(prom, vm, server)


def agent_data_in_both(pipeline: Pipeline) -> bool:
    """True once an export the agent reported as successful is queryable in both backends."""
    expr = 'hostagent_export_requests_total{hostagent_outcome="success"} > 0'
    return all(backend.query(expr) for backend in pipeline.backends)


@pytest.fixture
def prometheus(tmp_path) -> Iterator[Prometheus]:
    with running(Prometheus(free_port(), tmp_path / "prometheus")) as server:
        yield server


@pytest.fixture
def victoriametrics(tmp_path) -> Iterator[VictoriaMetrics]:
    with running(VictoriaMetrics(free_port(), tmp_path / "victoria-metrics")) as server:
        yield server


@pytest.fixture
def alertmanager(tmp_path) -> Iterator[Alertmanager]:
    with running(Alertmanager(free_port(), tmp_path / "alertmanager")) as server:
        yield server


@pytest.fixture
def vmalert(tmp_path, victoriametrics, alertmanager) -> Iterator[Vmalert]:
    with running(Vmalert(free_port(), tmp_path / "vmalert", victoriametrics.url,
                         notifier_url=alertmanager.url)) as server:
        yield server


@pytest.fixture(params=GATEWAYS)
def gateway_pipeline(request, tmp_path) -> Iterator[Pipeline]:
    with gateway_pipeline_in(tmp_path, request.param) as pipeline:
        yield pipeline


@pytest.fixture(scope="module", params=GATEWAYS)
def fed_pipeline(request, tmp_path_factory) -> Iterator[Pipeline]:
    base = tmp_path_factory.mktemp(f"fed-pipeline-{request.param}")
    with gateway_pipeline_in(base, request.param) as pipeline:
        agent = Agent(free_port(), base / "agent", pipeline.gateway.otlp_url, interval=AGENT_INTERVAL)
        with running(agent):
            pipeline.agent = agent
            wait_for(lambda: agent_data_in_both(pipeline), what="the agent's data in Prometheus and VictoriaMetrics")
            yield pipeline


def unavailable(message: str):
    """Skip the test for a missing prerequisite, saying how to get it; in CI (env CI set) fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must not skip)", pytrace=False)
    pytest.skip(message)
