"""pytest plugin: real backends on 127.0.0.1, free ports, temporary directories (loaded by tests/conftest.py).

Helpers (those of `pipeline.stack`, re-exported, plus two)
    require_binary(name) -> Path   the backend binary ("otelcol": the project's collector build);
                                   skips the test when missing (fails it when env CI is set)
    unavailable(message)           skip the test for a missing prerequisite (fail it when env CI is set)
A `pipeline.backends.MissingBackend` raised in a fixture or a test (a server's binary missing) skips it the same way.

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
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import backends, otelcol
from pipeline.services import Agent, Alertmanager, Prometheus, VictoriaMetrics, Vmalert
from pipeline.stack import (
    AGENT_INTERVAL,
    GATEWAYS,
    Pipeline,
    agent_data_in_both,
    exporting,
    free_port,
    gateway_pipeline_in,
    gateway_server,
    otelcol_gateway,
    running,
    wait_for,
)

__all__ = ["AGENT_INTERVAL", "GATEWAYS", "Pipeline", "agent_data_in_both", "exporting", "free_port",
           "gateway_pipeline_in", "gateway_server", "otelcol_gateway", "require_binary", "running", "unavailable",
           "wait_for"]


def interruptible_by_ctrl_c() -> None:
    """Popen's preexec_fn for a process a test stops as Ctrl-C does: a shell without job control starts background
    commands (a suite run with `&`, nohup) with SIGINT ignored, which a Python child would keep."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def require_binary(name: str) -> Path:
    try:
        return otelcol.binary() if name == "otelcol" else backends.binary(name)
    except backends.MissingBackend as missing:
        unavailable(str(missing))


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
    with gateway_pipeline_in(base, request.param) as pipeline, \
            exporting(Agent(free_port(), base / "agent", pipeline.gateway.otlp_url, interval=AGENT_INTERVAL),
                      pipeline) as agent:
        pipeline.agent = agent
        yield pipeline


def unavailable(message: str):
    """Skip the test for a missing prerequisite, saying how to get it; in CI (env CI set) fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must not skip)", pytrace=False)
    pytest.skip(message)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    try:
        return (yield)
    except backends.MissingBackend as missing:
        unavailable(str(missing))


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    try:
        return (yield)
    except backends.MissingBackend as missing:
        unavailable(str(missing))
