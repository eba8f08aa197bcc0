"""otel-config/gateway.yaml run by a real otelcol-contrib, configured only through its environment variables."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from pipeline import backends
from pipeline.services import HOST, Server
from pipeline.testing import free_port

GATEWAY_CONFIG = backends.REPO_ROOT / "otel-config" / "gateway.yaml"


def otelcol_contrib() -> Path:
    """The otelcol-contrib binary, or a skip: it is the one binary documented as unobtainable here
    (shared/FACTS.md), so this skip is allowed in CI too."""
    try:
        return backends.binary("otelcol-contrib")
    except backends.MissingBackend as missing:
        pytest.skip(f"{missing}; the official otel/opentelemetry-collector-contrib image ships it")


class Otelcol(Server):
    """The collector gateway; `port` is its health_check port (ready when GET / answers 200)."""

    name = "otelcol-contrib"
    ready_path = "/"

    def __init__(self, port: int, data_dir: Path, prometheus_write_url: str, victoriametrics_write_url: str,
                 config: Path = GATEWAY_CONFIG):
        super().__init__(port, data_dir)
        self.config = Path(config)
        self.grpc_port, self.http_port, self.telemetry_port = free_port(), free_port(), free_port()
        self.write_urls = {"PROMETHEUS_WRITE_URL": prometheus_write_url,
                           "VICTORIAMETRICS_WRITE_URL": victoriametrics_write_url}

    def argv(self) -> list[str]:
        return [str(otelcol_contrib()), "--config", str(self.config)]

    def environment(self) -> Mapping[str, str]:
        return {"OTELCOL_OTLP_GRPC_ENDPOINT": f"{HOST}:{self.grpc_port}",
                "OTELCOL_OTLP_HTTP_ENDPOINT": f"{HOST}:{self.http_port}",
                "OTELCOL_HEALTH_ENDPOINT": f"{HOST}:{self.port}",
                "OTELCOL_TELEMETRY_HOST": HOST,
                "OTELCOL_TELEMETRY_PORT": str(self.telemetry_port),
                "OTELCOL_STORAGE_DIR": str(self.data_dir / "storage"),
                **self.write_urls}

    @property
    def otlp_url(self) -> str:
        return f"http://{HOST}:{self.http_port}/v1/metrics"
