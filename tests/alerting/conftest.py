"""Fixtures for the alerting tests: notification sinks and a real Alertmanager running the shipped config."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from am_localconfig import local_config
from notification_sinks import HttpSink, SmtpSink
from pipeline.backends import binary
from pipeline.services import Alertmanager
from pipeline.testing import free_port, require_binary, running


@pytest.fixture(scope="session")
def amtool() -> Path:
    return require_binary("amtool")


@pytest.fixture(scope="module")
def http_sink():
    with HttpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def smtp_sink():
    with SmtpSink(free_port()) as sink:
        yield sink


@pytest.fixture(scope="module")
def shipped_alertmanager(tmp_path_factory, http_sink, smtp_sink):
    """alertmanager/alertmanager.yml with its endpoints pointed at the local sinks and short timers."""
    data_dir = tmp_path_factory.mktemp("alertmanager")
    config_file = data_dir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(local_config(http_sink.url, smtp_sink.hostport), sort_keys=False))
    with running(_DebianAlertmanager(free_port(), data_dir, config_file)) as server:
        yield server


class _DebianAlertmanager(Alertmanager):
    # Provisional: Debian's build reads /usr/share/prometheus/alertmanager/default.tmpl, absent when the
    # package is only unpacked into .cache; overlay the cached /usr/share in a private mount namespace.
    def argv(self) -> list[str]:
        share = binary("alertmanager").parent.parent / "share"
        script = f'mount -t overlay overlay -o lowerdir={share}:/usr/share /usr/share && exec "$@"'
        return ["unshare", "--mount", "sh", "-c", script, "alertmanager", *super().argv()]
