"""The gateway closes an agent's kept-alive connection between exports, so a Service spreads agents again after a
rolling update or a scale-up (a Service balances connections, not requests; docs/gateway.md, "Agent connections")."""

import select

import pytest

from collector.config import ExporterConfig
from collector.transport import HttpTransport, Outcome
from pipeline.testing import GATEWAYS, free_port, gateway_server, running

INTERVAL = ExporterConfig().interval


def closed_by_peer(sock, within: float) -> bool:
    """Whether the peer closes the idle connection within `within` seconds (readable, and nothing to read)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(within * 1000)) and sock.recv(1) == b""


@pytest.mark.parametrize("kind", GATEWAYS)
def test_the_gateway_closes_an_idle_agent_connection_before_the_next_export(tmp_path, kind):
    """otel-config/gateway.yaml and vmagent.flags as make run, compose and every Kubernetes overlay run them; the
    agent's own transport: its connection is closed before its next export is due, and that export goes out on a
    new one."""
    unused = f"http://127.0.0.1:{free_port()}/api/v1/write"
    with running(gateway_server(kind, free_port(), tmp_path, unused, unused)) as gateway:
        transport = HttpTransport(ExporterConfig(endpoint=gateway.otlp_url, compression="none"))
        try:
            assert transport.send(b"").outcome is Outcome.SENT
            first = transport.connection.sock
            assert closed_by_peer(first, within=INTERVAL - 1), f"still open {INTERVAL - 1:g}s after an export"
            assert transport.send(b"").outcome is Outcome.SENT
            assert transport.connection.sock is not first
        finally:
            transport.close()
