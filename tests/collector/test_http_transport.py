"""The stdlib HTTP transport: basic auth from the URL, and a kept-alive connection the gateway closed."""
import base64
import ssl
import socket
import threading

import pytest

from collector.config import ExporterConfig, load
from collector.transport import HttpTransport, Outcome, tls_context


class SilentlyClosingServer:
    """Answers each request with HTTP/1.1 200 (keep-alive implied), then closes the socket without saying so:
    what a gateway does to a connection it considers idle."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://user:p%40ss@127.0.0.1:{self.listener.getsockname()[1]}/v1/metrics"

    def _serve(self):
        while True:
            connection, _ = self.listener.accept()
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
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def test_a_connection_closed_by_the_gateway_is_reopened_and_url_credentials_are_basic_auth():
    server = SilentlyClosingServer()
    transport = HttpTransport(ExporterConfig(endpoint=server.url, compression="none"))
    assert [transport.send(b"x")[0] for _ in range(3)] == [Outcome.SENT] * 3
    assert len(server.requests) == 3
    expected = b"Authorization: Basic " + base64.b64encode(b"user:p@ss")
    assert all(expected in header for header in server.requests)


@pytest.mark.parametrize("text, verified", [("false", True), ("FALSE", True), ("true", False)])
def test_otel_insecure_decides_whether_the_gateway_certificate_is_checked(text, verified):
    context = tls_context(load(None, environ={"OTEL_EXPORTER_OTLP_INSECURE": text}).exporter)
    assert (context.verify_mode == ssl.CERT_REQUIRED, context.check_hostname) == (verified, verified)
    assert context.verify_mode == (ssl.CERT_REQUIRED if verified else ssl.CERT_NONE)
