"""The agent's OTLP/gRPC export against a real gRPC OTLP receiver: agent -> rotel -> VictoriaMetrics.

rotel (PyPI `rotel`, a collector that ships its binary) receives OTLP/gRPC and forwards OTLP/HTTP to
VictoriaMetrics. The agent is pointed at rotel's gRPC port only: an HTTP/protobuf request there fails,
so data in VictoriaMetrics proves the gRPC path.
"""
from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path

from pipeline import backends
from pipeline.services import HOST, Agent, Server, VictoriaMetrics, port_is_free
from pipeline.testing import free_port, running, wait_for


def rotel_binary() -> Path:
    try:
        import rotel
    except ImportError:
        raise backends.MissingBackend("rotel is not installed: run `make venv` (it is a test dependency)") from None
    return Path(rotel.__file__).parent / "rotel-agent"


class Rotel(Server):
    """rotel: OTLP/gRPC in on `port`, OTLP/HTTP out to `export_base` (the exporter appends /v1/metrics)."""

    name = "rotel"

    def __init__(self, port: int, http_port: int, data_dir: Path, export_base: str):
        super().__init__(port, data_dir)
        self.http_port = http_port
        self.export_base = export_base

    def argv(self) -> list[str]:
        return [str(rotel_binary()), "start",
                "--otlp-grpc-endpoint", f"{HOST}:{self.port}",
                "--otlp-http-endpoint", f"{HOST}:{self.http_port}",
                "--exporter", "otlp",
                "--otlp-exporter-protocol", "http",
                "--otlp-exporter-endpoint", self.export_base,
                "--metrics-batch-timeout", "200ms",
                "--pid-file", str(self.data_dir / "rotel.pid"),
                "--log-file", str(self.data_dir / "rotel.log")]

    def is_ready(self) -> bool:
        # rotel serves no HTTP health path: ready once its gRPC port accepts connections.
        return not port_is_free(self.port)


class GrpcAgent(Agent):
    """The agent exporting with OTEL_EXPORTER_OTLP_PROTOCOL=grpc to a bare host:port endpoint."""

    def environment(self) -> Mapping[str, str]:
        return {**super().environment(), "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}


def test_agent_grpc_export_reaches_victoriametrics_through_rotel(tmp_path):
    victoriametrics = VictoriaMetrics(free_port(), tmp_path / "victoria-metrics")
    rotel = Rotel(free_port(), free_port(), tmp_path / "rotel", victoriametrics.url + "/opentelemetry")
    with running(victoriametrics), running(rotel):
        # The agent is ready only after an export succeeded.
        agent = GrpcAgent(free_port(), tmp_path / "agent", f"http://{HOST}:{rotel.port}", interval="1s")
        with running(agent):
            try:
                series = wait_for(lambda: victoriametrics.series('{__name__="system_cpu_time_seconds_total"}'),
                                  what="system_cpu_time_seconds_total in VictoriaMetrics")
            except AssertionError as missing:
                raise AssertionError(f"{missing}\nrotel:\n{rotel.log_tail()}\nagent:\n{agent.log_tail()}") from None
            seconds = wait_for(lambda: victoriametrics.query('sum(system_cpu_time_seconds_total{cpu_mode="user"})'),
                               what="a value for cpu_mode=user")
    assert {"user", "system", "idle"} <= {labels.get("cpu_mode") for labels in series}
    assert {labels.get("host_name") for labels in series} == {socket.gethostname()}
    assert float(seconds[0]["value"][1]) > 0
