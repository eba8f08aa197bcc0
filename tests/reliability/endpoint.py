"""A real HTTP(S) server on 127.0.0.1 standing in for a gateway that misbehaves: it keeps every OTLP request
it gets (so the agent's self-metrics can be read even when they are refused) and answers as it is told —
any status and body, after a delay, over TLS with or without client certificates."""
from __future__ import annotations

import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler

from pipeline.http_serving import LocalHttpServer
from tests.reliability.otlp import decode


class Endpoint:
    def __init__(self, status: int = 200, content_type: str = "application/x-protobuf", body: bytes = b"",
                 delay: float = 0.0, tls: ssl.SSLContext | None = None, port: int = 0):
        self.status, self.content_type, self.body, self.delay = status, content_type, body, delay
        self.requests = []
        self.headers = []
        self.lock = threading.Lock()
        self.http = LocalHttpServer(self._handler(), port)
        self.http.server.handle_error = lambda *_: None  # failed TLS handshakes are the point of some tests
        if tls:
            self.http.server.socket = tls.wrap_socket(self.http.server.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.http.start()

    @property
    def port(self) -> int:
        return self.http.port

    def url(self, path: str = "/v1/metrics") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def received(self) -> list:
        with self.lock:
            return list(self.requests)

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _handler(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint.lock:
                    endpoint.headers.append(dict(self.headers))
                    endpoint.requests.append(decode(body, self.headers.get("Content-Encoding")))
                time.sleep(endpoint.delay)
                self.send_response(endpoint.status)
                self.send_header("Content-Type", endpoint.content_type)
                self.send_header("Content-Length", str(len(endpoint.body)))
                self.end_headers()
                self.wfile.write(endpoint.body)

            def log_message(self, *args):
                pass

        return Handler
