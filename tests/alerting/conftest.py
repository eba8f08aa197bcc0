"""Fixtures for the alerting tests: binaries, notification sinks, the local Alertmanager config."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from am_localconfig import local_config
from notification_sinks import HttpSink, SmtpSink
from pipeline.backends import MissingBackend, binary
from pipeline.services import Alertmanager


def require_binary(name: str) -> Path:
    # Provisional: replaced by pipeline.testing.require_binary once it lands.
    try:
        return binary(name)
    except MissingBackend as missing:
        if os.environ.get("CI"):
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def amtool() -> Path:
    return require_binary("amtool")


def free_port() -> int:
    # Provisional: replaced by pipeline.testing's port helper once it lands.
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def http_sink():
    with HttpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def smtp_sink():
    with SmtpSink(free_port()) as sink:
        yield sink


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory, http_sink, smtp_sink):
    """A real Alertmanager running the shipped config, notifying the local sinks."""
    require_binary("alertmanager")
    data_dir = tmp_path_factory.mktemp("alertmanager")
    config_file = data_dir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(local_config(http_sink.url, smtp_sink.hostport), sort_keys=False))
    with _DebianAlertmanager(free_port(), data_dir, config_file) as server:
        yield server


class _DebianAlertmanager(Alertmanager):
    # Provisional: Debian's build reads /usr/share/prometheus/alertmanager/default.tmpl, absent when the
    # package is only unpacked into .cache; overlay the cached /usr/share in a private mount namespace.
    def argv(self) -> list[str]:
        share = binary("alertmanager").parent.parent / "share"
        script = f'mount -t overlay overlay -o lowerdir={share}:/usr/share /usr/share && exec "$@"'
        return ["unshare", "--mount", "sh", "-c", script, "alertmanager", *super().argv()]
