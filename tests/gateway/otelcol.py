"""otelcol-contrib for the gateway tests: the binary, or a skip that is allowed even in CI."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import backends
from pipeline.services import Otelcol
from pipeline.testing import free_port


def otelcol_contrib() -> Path:
    """The otelcol-contrib binary, or a skip: it is the one binary documented as unobtainable here
    (shared/FACTS.md), so this skip is allowed in CI too."""
    try:
        return backends.binary("otelcol-contrib")
    except backends.MissingBackend as missing:
        pytest.skip(f"{missing}; the official otel/opentelemetry-collector-contrib image ships it")


def otelcol_gateway(port: int, data_dir: Path, prometheus_write_url: str, victoriametrics_write_url: str) -> Otelcol:
    """otel-config/gateway.yaml on free ports, built like the vmagent gateway (same four arguments)."""
    return Otelcol(port, data_dir, prometheus_write_url, victoriametrics_write_url,
                   grpc_port=free_port(), health_port=free_port(), telemetry_port=free_port())
