"""A real OTLP/HTTP metrics receiver for tests and benchmarks: decodes every request and keeps it.

It keeps connections alive (HTTP/1.1), as a collector or vmagent does: a sender measured against it pays no TCP
connect and close per request that a real gateway would not make it pay."""

import contextlib
import gzip
import socket
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from pipeline.http_serving import LocalHttpServer

DECODERS = {"gzip": gzip.decompress, "deflate": zlib.decompress, None: lambda body: body}


class _KeepAliveServer(ThreadingHTTPServer):
    """Knows its open connections: a handler's thread serves its kept-alive connection until the client closes it,
    also after `shutdown`, so that a stopped receiver would still take requests. `server_close` ends them."""

    def __init__(self, *args):
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(*args)

    def process_request(self, request, client_address):
        with self.connections_lock:  # before the handler's thread starts: server_close sees every one
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that resets a kept-alive connection
            super().handle_error(request, client_address)

    def server_close(self):
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):  # the client closed it already
                    connection.shutdown(socket.SHUT_RDWR)  # the handler's read sees the end and its thread ends
        super().server_close()


def _names(request: ExportMetricsServiceRequest) -> set[str]:
    return {m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


class OtlpReceiver:
    def __init__(self, status: int = 200):
        self.requests: list[ExportMetricsServiceRequest] = []
        self.status = status
        self.arrived = threading.Condition()
        self.http = LocalHttpServer(self._handler(), server_class=_KeepAliveServer)
        self.http.start()

    @property
    def url(self) -> str:
        return f"{self.http.url}/v1/metrics"

    def wait_for(self, count: int, timeout: float = 20, metric: str | None = None) -> bool:
        """Until `count` requests arrived (only those carrying `metric`, if given)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.cycles(metric)) >= count, timeout)

    def cycles(self, metric: str | None = None) -> list[int]:
        """Indexes in `requests` of the requests that carry `metric` (of all, if None)."""
        return [index for index, request in enumerate(self.requests)
                if metric is None or metric in _names(request)]

    def metric_names(self) -> set[str]:
        return {name for request in self.requests for name in _names(request)}

    def resource_attributes(self) -> dict:
        resource = self.requests[-1].resource_metrics[0].resource
        return {a.key: a.value.string_value for a in resource.attributes}

    def stop(self):
        self.http.stop()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportMetricsServiceRequest.FromString(DECODERS[self.headers.get("Content-Encoding")](body))
                if receiver.status == 200:
                    with receiver.arrived:
                        receiver.requests.append(request)
                        receiver.arrived.notify_all()
                reply = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        return Handler
