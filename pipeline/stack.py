"""A throwaway pipeline on 127.0.0.1: servers on free ports in given directories, wired as in `make run`. Used by
the tests (through the pytest plugin `pipeline.testing`), the benchmarks and `make soak`.

    free_port() -> int             a port nobody listens on right now
    running(server)                context manager: start a `pipeline.services` server, stop it afterwards
    wait_for(check, timeout, what) poll `check()` until it returns something truthy, return that
    gateway_pipeline_in(dir, gateway)  both backends and a gateway feeding them; the components' own metrics
                                   (gateway, both backends, any other `scrape_targets`) reach both backends
    gateway_server(kind, ...)      the otelcol or vmagent gateway on free ports (the four arguments of Vmagent)
    agent_data_in_both(pipeline)   True once an export the agent counted as successful is in both backends
    exporting(agent, pipeline)     context manager: `running(agent)`, entered once its first export is in both backends

A missing binary raises `pipeline.backends.MissingBackend`, naming how to get it.
"""
from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pipeline.services import HOST, Agent, Otelcol, Prometheus, Server, VictoriaMetrics, Vmagent

T = TypeVar("T")
S = TypeVar("S", bound=Server)
A = TypeVar("A", bound=Agent)
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


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nobody listens on, and not one this process handed out before: the kernel may offer a just-closed
    port again at once, and a server with several ports (the collector has six) asks for them one after another."""
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@contextmanager
def running(server: S) -> Iterator[S]:
    server.start()
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
                   relay_port=free_port(), **options)


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


@contextmanager
def exporting(agent: A, pipeline: Pipeline) -> Iterator[A]:
    """`running(agent)`, yielding once an export of the agent is queryable in both of the pipeline's backends."""
    with running(agent):
        wait_for(lambda: agent_data_in_both(pipeline), what="the agent's first export in both backends")
        yield agent
