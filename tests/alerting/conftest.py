"""Fixtures for the alerting tests: notification sinks and a real Alertmanager running the shipped config."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.testing import GATEWAYS, free_port, require_binary

from .am_server import shipped_alertmanager_in
from .notification_sinks import HttpSink, SmtpSink


@pytest.fixture(scope="session")
def amtool() -> Path:
    return require_binary("amtool")


@pytest.fixture(scope="module")
def gateway_kind() -> str:
    """The gateway alert data goes through; a module overriding this with params gets new sinks (and so a new
    Alertmanager) for each, so no notification of one run can satisfy the next."""
    return GATEWAYS[0]


@pytest.fixture(scope="module")
def http_sink(gateway_kind):
    with HttpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def smtp_sink(gateway_kind):
    with SmtpSink(free_port()) as sink:
        yield sink


@pytest.fixture(scope="module")
def shipped_alertmanager(tmp_path_factory, http_sink, smtp_sink):
    with shipped_alertmanager_in(tmp_path_factory.mktemp("alertmanager"), http_sink, smtp_sink) as server:
        yield server
