"""The stdlib HTTP transport: basic auth from the URL, a kept-alive connection the gateway closed, and a
request answered after the timeout, which stays in flight rather than being sent twice (over TLS too)."""
import base64
import socket
import ssl
import threading
import time

import pytest

from collector.config import ExporterConfig, load
from collector.transport import HttpTransport, Outcome, tls_context
from tests.reliability.tls import CertificateAuthority


class SilentlyClosingServer:
    """Answers each request with HTTP/1.1 200 (keep-alive implied), then closes the socket without saying so:
    what a gateway does to a connection it considers idle. `delay`: seconds before it answers; `tls`: https."""

    def __init__(self, delay: float = 0.0, tls: ssl.SSLContext | None = None):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.delay, self.tls = delay, tls
        self.connections = 0
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://user:p%40ss@127.0.0.1:{self.listener.getsockname()[1]}/v1/metrics"

    def _serve(self):
        while True:
            connection, _ = self.listener.accept()
            self.connections += 1
            if self.tls:
                connection = self.tls.wrap_socket(connection, server_side=True)
            with connection:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += connection.recv(65536)
                header, _, body = head.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in header.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(body) < length:
                    body += connection.recv(65536)
                self.requests.append(header)
                time.sleep(self.delay)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def test_a_connection_closed_by_the_gateway_is_reopened_and_url_credentials_are_basic_auth():
    server = SilentlyClosingServer()
    transport = HttpTransport(ExporterConfig(endpoint=server.url, compression="none"))
    assert [transport.send(b"x")[0] for _ in range(3)] == [Outcome.SENT] * 3
    assert len(server.requests) == 3
    expected = b"Authorization: Basic " + base64.b64encode(b"user:p@ss")
    assert all(expected in header for header in server.requests)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_request_answered_after_the_timeout_stays_in_flight_and_is_sent_once(tmp_path, scheme):
    # https: the TLS 1.3 session tickets the server sends after the handshake make the socket readable at once
    ca = CertificateAuthority(tmp_path)
    server = SilentlyClosingServer(delay=1.2, tls=ca.server_context() if scheme == "https" else None)
    transport = HttpTransport(ExporterConfig(endpoint=server.url, timeout=0.5, certificate=str(ca.bundle)))
    outcomes = [transport.send(b"x")]
    while outcomes[-1][0] is Outcome.PENDING:
        outcomes.append(transport.wait())
    assert [answer.outcome for answer in outcomes] == [Outcome.PENDING, Outcome.PENDING, Outcome.SENT]
    assert outcomes[0][1].startswith(f"no answer within 0.5s from {scheme}://127.0.0.1:")
    assert (server.connections, len(server.requests)) == (1, 1)


@pytest.mark.parametrize("text, verified", [("false", True), ("FALSE", True), ("true", False)])
def test_otel_insecure_decides_whether_the_gateway_certificate_is_checked(text, verified):
    context = tls_context(load(None, environ={"OTEL_EXPORTER_OTLP_INSECURE": text}).exporter)
    assert (context.verify_mode == ssl.CERT_REQUIRED, context.check_hostname) == (verified, verified)
    assert context.verify_mode == (ssl.CERT_REQUIRED if verified else ssl.CERT_NONE)
