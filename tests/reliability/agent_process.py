"""The real agent (`collector run`) as a subprocess for fault tests: its own config, backlog directory and log."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.services import Agent
from pipeline.testing import free_port

BACKLOG_SUFFIX = ".otlp"


def merged(base: dict, extra: Mapping) -> dict:
    result = dict(base)
    for key, value in extra.items():
        result[key] = merged(result.get(key) or {}, value) if isinstance(value, Mapping) else value
    return result


class AgentProcess(Agent):
    """`collector run` exporting every second, ready as soon as it is alive (the gateway may well be away).

    `options` are merged into the generated YAML config; `wrapper` is a command the agent is started under."""

    ready_path = "/healthz"

    def __init__(self, data_dir: Path, endpoint: str, options: Mapping | None = None,
                 environment: Mapping[str, str] | None = None, wrapper: Sequence[str] = ()):
        super().__init__(free_port(), data_dir, endpoint, interval="1s")
        self.options = dict(options or {})
        self.extra_environment = dict(environment or {})
        self.wrapper = list(wrapper)

    def config(self) -> dict:
        return merged(super().config(), self.options)

    def argv(self) -> list[str]:
        return [*self.wrapper, *super().argv()]

    def environment(self) -> Mapping[str, str]:
        return {**super().environment(), **self.extra_environment}

    @property
    def backlog_dir(self) -> Path:
        return Path(self.config()["backlog"]["directory"])

    def backlog_files(self) -> list[Path]:
        return sorted(self.backlog_dir.glob(f"*{BACKLOG_SUFFIX}"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
