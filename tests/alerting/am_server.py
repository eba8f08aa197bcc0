"""A real Alertmanager running the shipped config, its notifications going to local sinks."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from pipeline.services import Alertmanager
from pipeline.testing import free_port, running

from .am_localconfig import local_config
from .notification_sinks import HttpSink, SmtpSink


@contextmanager
def shipped_alertmanager_in(data_dir: Path, http_sink: HttpSink, smtp_sink: SmtpSink) -> Iterator[Alertmanager]:
    """alertmanager/alertmanager.yml with its endpoints pointed at the local sinks and short timers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config_file = data_dir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(local_config(http_sink.url, smtp_sink.hostport), sort_keys=False))
    with running(Alertmanager(free_port(), data_dir, config_file)) as server:
        yield server
