"""Both transports against real local receivers: what goes over the wire (path, headers, compression, TLS) and
how each answer is classified (sent, retry later, rejected for good) and read (partial success, Retry-After)."""

import base64
import contextlib
import email.utils
import gzip
import logging
import socket
import ssl
import threading
import time
import zlib
from concurrent import futures
from http.server import BaseHTTPRequestHandler

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

from collector.config import ExporterConfig
from collector.transport import Answer, GrpcTransport, HttpTransport, Outcome, build_transport, reconnect_options
from pipeline.http_serving import LocalHttpServer
from pipeline.stack import free_port
from tests.collector.test_backlog import Clock
from tests.reliability.grpc_endpoint import GrpcTlsEndpoint
from tests.reliability.tls import CertificateAuthority

BODY = metrics_service_pb2.ExportMetricsServiceRequest().SerializeToString() + b"\x0a\x00"  # one empty resource
DECOMPRESS = {"gzip": gzip.decompress, "deflate": zlib.decompress, None: bytes}


class RecordingServer:
    """HTTP(S) on 127.0.0.1 answering every POST with `status`, `answer_headers` and `answer_body`, keeping
    (path, headers, body)."""

    def __init__(self, status=200, tls: ssl.SSLContext | None = None):
        self.status, self.requests = status, []
        self.answer_headers, self.answer_body = {}, b""
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.requests.append((self.path, dict(self.headers), body))
                self.send_response(recorder.status)
                for name, value in {**recorder.answer_headers, "Content-Length": len(recorder.answer_body)}.items():
                    self.send_header(name, str(value))
                self.end_headers()
                self.wfile.write(recorder.answer_body)

            def log_message(self, *args):
                pass

        self.http = LocalHttpServer(Handler)
        if tls:
            self.http.server.socket = tls.wrap_socket(self.http.server.socket, server_side=True)
        self.http.start()

    def url(self, path="/v1/metrics", scheme="http"):
        return f"{scheme}://127.0.0.1:{self.http.port}{path}"

    def stop(self):
        self.http.stop()


@pytest.fixture
def server():
    server = RecordingServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.mark.parametrize("compression", ["gzip", "deflate", "none"])
def test_http_sends_the_body_compressed_to_the_path_with_the_headers(server, tmp_path, compression):
    headers_file = tmp_path / "headers"
    headers_file.write_text("X-Api-Key=from-file\nX-Tenant=from-file\n")
    transport = HttpTransport(ExporterConfig(
        endpoint=server.url("/otlp/v1/metrics?tenant=a"), compression=compression, headers_file=str(headers_file),
        headers={"X-Tenant": "from-config", "Authorization": "Bearer token"}))
    assert transport.send(BODY) == Answer(Outcome.SENT)
    transport.close()
    path, headers, body = server.requests[0]
    encoding = None if compression == "none" else compression
    assert (path, headers.get("Content-Encoding"), DECOMPRESS[encoding](body)) == (
        "/otlp/v1/metrics?tenant=a", encoding, BODY)
    assert (headers["Content-Type"], headers["X-Api-Key"], headers["X-Tenant"], headers["Authorization"]) == (
        "application/x-protobuf", "from-file", "from-config", "Bearer token")


def test_http_posts_to_slash_when_the_endpoint_has_no_path_and_a_configured_authorization_wins(server):
    transport = HttpTransport(ExporterConfig(endpoint=server.url("").replace("://", "://u:p@"),
                                             headers={"Authorization": "Bearer token"}))
    assert transport.send(BODY)[0] is Outcome.SENT
    assert (server.requests[0][0], server.requests[0][1]["Authorization"]) == ("/", "Bearer token")
    without_password = build_transport(ExporterConfig(endpoint=server.url().replace("://", "://u@")))
    assert isinstance(without_password, HttpTransport) and without_password.send(BODY)[0] is Outcome.SENT
    assert server.requests[1][1]["Authorization"] == "Basic " + base64.b64encode(b"u:").decode()


@pytest.mark.parametrize("status, outcome", [
    (200, Outcome.SENT), (202, Outcome.SENT), (299, Outcome.SENT), (429, Outcome.RETRY), (502, Outcome.RETRY),
    (503, Outcome.RETRY), (504, Outcome.RETRY), (300, Outcome.REJECTED), (400, Outcome.REJECTED),
    (404, Outcome.REJECTED), (413, Outcome.REJECTED), (500, Outcome.REJECTED), (501, Outcome.REJECTED),
])
def test_http_statuses_are_sent_retry_or_rejected(server, status, outcome):
    server.status = status
    transport = HttpTransport(ExporterConfig(endpoint=server.url().replace("://", "://user:secret@")))
    reason = "" if outcome is Outcome.SENT else f"HTTP {status} from {server.url()}"
    assert transport.send(BODY) == Answer(outcome, reason)


def partial_success(rejected, message) -> metrics_service_pb2.ExportMetricsServiceResponse:
    response = metrics_service_pb2.ExportMetricsServiceResponse()
    response.partial_success.rejected_data_points = rejected
    response.partial_success.error_message = message
    return response


def test_http_reads_the_partial_success_of_a_protobuf_answer_and_nothing_from_another(server):
    transport = HttpTransport(ExporterConfig(endpoint=server.url()))
    server.answer_headers = {"Content-Type": "application/x-protobuf"}
    server.answer_body = partial_success(7, "7 data points rejected: out of order").SerializeToString()
    assert transport.send(BODY) == Answer(Outcome.SENT, "7 data points rejected: out of order", rejected_points=7)
    server.answer_body = b"<html>not protobuf</html>"  # the status says delivered: so it is
    assert transport.send(BODY) == Answer(Outcome.SENT)
    server.answer_headers = {"Content-Type": "text/plain"}  # not OTLP's answer (a proxy's text): not read as one
    server.answer_body = partial_success(7, "looks like a partial success").SerializeToString()
    assert transport.send(BODY) == Answer(Outcome.SENT)


@pytest.mark.parametrize("status, retry_after, wait", [
    (429, "30", 30), (503, "120", 120), (429, "0", 0), (429, "soon", 0), (429, "-5", 0), (429, None, 0),
    (502, "30", 0),  # OTLP asks Retry-After to be honoured on 429 and 503
])
def test_http_reads_retry_after_in_seconds_on_429_and_503(server, status, retry_after, wait):
    server.status, server.answer_headers = status, {} if retry_after is None else {"Retry-After": retry_after}
    transport = HttpTransport(ExporterConfig(endpoint=server.url()))
    assert transport.send(BODY) == Answer(Outcome.RETRY, f"HTTP {status} from {server.url()}", retry_after=wait)


def test_http_reads_retry_after_as_a_date(server):
    server.status = 503
    server.answer_headers = {"Retry-After": email.utils.formatdate(time.time() + 45, usegmt=True)}
    transport = HttpTransport(ExporterConfig(endpoint=server.url()))
    assert 43 <= transport.send(BODY).retry_after <= 45
    server.answer_headers = {"Retry-After": email.utils.formatdate(time.time() - 45, usegmt=True)}
    assert transport.send(BODY).retry_after == 0


def test_http_without_a_listener_is_retry_with_the_reason():
    transport = HttpTransport(ExporterConfig(endpoint=f"http://127.0.0.1:{free_port()}/v1/metrics", timeout=2))
    outcome, reason, *_ = transport.send(BODY)
    assert outcome is Outcome.RETRY and reason.startswith(f"ConnectionRefusedError from {transport.url}: ")


def tls_server(ca, client_ca=None):
    return RecordingServer(tls=ca.server_context(client_ca))


def test_https_verifies_the_gateway_against_the_given_ca_or_not_at_all_when_insecure(ca):
    server = tls_server(ca)
    try:
        url = server.url(scheme="https")
        outcome, reason, *_ = HttpTransport(ExporterConfig(endpoint=url, timeout=5)).send(BODY)
        assert outcome is Outcome.RETRY and reason.startswith(f"SSLError (SSLCertVerificationError) from {url}: ")
        assert HttpTransport(ExporterConfig(endpoint=url, certificate=str(ca.bundle))).send(BODY)[0] is Outcome.SENT
        assert HttpTransport(ExporterConfig(endpoint=url, insecure=True)).send(BODY)[0] is Outcome.SENT
        assert len(server.requests) == 2
    finally:
        server.stop()


def test_https_presents_the_client_certificate(ca):
    server = tls_server(ca, client_ca=ca.bundle)
    client = ca.issue("client", server=False)
    try:
        url = server.url(scheme="https")
        assert HttpTransport(ExporterConfig(endpoint=url, certificate=str(ca.bundle))).send(BODY)[0] is Outcome.RETRY
        assert HttpTransport(ExporterConfig(endpoint=url, certificate=str(ca.bundle),
                                            client_certificate=str(client.certificate),
                                            client_key=str(client.key))).send(BODY)[0] is Outcome.SENT
    finally:
        server.stop()


class PlainGrpcReceiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    """OTLP/gRPC without TLS, answering with `code` (OK when None) and keeping requests and metadata."""

    def __init__(self):
        self.code, self.delay, self.received = None, 0, []
        self.response = metrics_service_pb2.ExportMetricsServiceResponse()
        self.retry_delay: float | None = None  # seconds of RetryInfo in the refusal's status details
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Export(self, request, context):
        self.received.append((request.SerializeToString(), dict(context.invocation_metadata())))
        time.sleep(self.delay)
        if self.code:
            if self.retry_delay is not None:
                context.set_trailing_metadata([("grpc-status-details-bin", self._status_details())])
            context.abort(self.code, "told to refuse")
        return self.response

    def _status_details(self) -> bytes:
        retry_info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=int(self.retry_delay), nanos=round(self.retry_delay % 1 * 1e9)))
        status = status_pb2.Status(code=self.code.value[0], message="told to refuse")
        status.details.add().Pack(error_details_pb2.DebugInfo(detail="unrelated"))
        status.details.add().Pack(retry_info)
        return status.SerializeToString()


@pytest.fixture
def grpc_receiver():
    receiver = PlainGrpcReceiver()
    yield receiver
    receiver.server.stop(grace=None)


@pytest.mark.parametrize("compression", ["gzip", "deflate", "none"])
def test_grpc_sends_the_request_and_lowercased_headers(grpc_receiver, tmp_path, compression):
    headers_file = tmp_path / "headers"
    headers_file.write_text("X-Api-Key=from-file\n")
    config = ExporterConfig(protocol="grpc", endpoint=f"http://127.0.0.1:{grpc_receiver.port}", compression=compression,
                            headers={"X-Tenant": "t1"}, headers_file=str(headers_file))
    transport = build_transport(config)
    assert isinstance(transport, GrpcTransport) and transport.send(BODY) == Answer(Outcome.SENT)
    transport.close()
    body, metadata = grpc_receiver.received[0]
    assert body == BODY and (metadata["x-tenant"], metadata["x-api-key"]) == ("t1", "from-file")


@pytest.mark.parametrize("code, outcome", [
    (grpc.StatusCode.UNAVAILABLE, Outcome.RETRY), (grpc.StatusCode.DEADLINE_EXCEEDED, Outcome.RETRY),
    (grpc.StatusCode.ABORTED, Outcome.RETRY), (grpc.StatusCode.CANCELLED, Outcome.RETRY),
    (grpc.StatusCode.OUT_OF_RANGE, Outcome.RETRY), (grpc.StatusCode.DATA_LOSS, Outcome.RETRY),
    # without RetryInfo: the gateway gives no hope that it will ever take it (e.g. a message over its size limit)
    (grpc.StatusCode.RESOURCE_EXHAUSTED, Outcome.REJECTED), (grpc.StatusCode.INVALID_ARGUMENT, Outcome.REJECTED),
    (grpc.StatusCode.PERMISSION_DENIED, Outcome.REJECTED), (grpc.StatusCode.INTERNAL, Outcome.REJECTED),
])
def test_grpc_status_codes_are_retry_or_rejected(grpc_receiver, code, outcome):
    grpc_receiver.code = code
    url = f"http://127.0.0.1:{grpc_receiver.port}/"
    transport = GrpcTransport(ExporterConfig(protocol="grpc", endpoint=url))
    assert transport.send(BODY) == Answer(outcome, f"gRPC {code.name} from {url}: told to refuse")


@pytest.mark.parametrize("interval, initial, longest", [(10, 1000, 10000), (1, 1000, 1000), (0.5, 1000, 1000),
                                                         (3600, 1000, 30000)])
def test_grpc_reconnects_at_least_once_an_interval(interval, initial, longest):
    assert reconnect_options(interval) == [("grpc.initial_reconnect_backoff_ms", initial),
                                           ("grpc.max_reconnect_backoff_ms", longest)]


def test_grpc_reads_the_partial_success(grpc_receiver):
    grpc_receiver.response = partial_success(7, "7 data points rejected: out of order")
    transport = GrpcTransport(ExporterConfig(protocol="grpc", endpoint=f"http://127.0.0.1:{grpc_receiver.port}"))
    assert transport.send(BODY) == Answer(Outcome.SENT, "7 data points rejected: out of order", rejected_points=7)


@pytest.mark.parametrize("code, retry_delay, wait", [
    (grpc.StatusCode.RESOURCE_EXHAUSTED, 30, 30), (grpc.StatusCode.UNAVAILABLE, 2.5, 2.5),
    (grpc.StatusCode.UNAVAILABLE, None, 0),
])
def test_grpc_reads_the_retry_info_of_a_refusal(grpc_receiver, code, retry_delay, wait):
    grpc_receiver.code, grpc_receiver.retry_delay = code, retry_delay
    transport = GrpcTransport(ExporterConfig(protocol="grpc", endpoint=f"http://127.0.0.1:{grpc_receiver.port}"))
    assert transport.send(BODY) == Answer(Outcome.RETRY, f"gRPC {code.name} from {transport.url_for_logs}: told to "
                                                         "refuse", retry_after=wait)


def test_grpc_over_tls_verifies_the_gateway_and_presents_the_client_certificate(ca):
    client = ca.issue("grpc-client", server=False)
    with GrpcTlsEndpoint(ca, require_client_certificate=True) as gateway:
        def send(**tls):
            return GrpcTransport(ExporterConfig(protocol="grpc", endpoint=gateway.url, timeout=5, **tls)).send(BODY)
        assert send()[0] is Outcome.RETRY, "the system CAs do not know the test CA"
        assert send(certificate=str(ca.bundle))[0] is Outcome.RETRY, "no client certificate"
        assert send(certificate=str(ca.bundle), client_certificate=str(client.certificate),
                    client_key=str(client.key)) == Answer(Outcome.SENT)
        assert len(gateway.received()) == 1


def test_a_gateway_that_never_answers_is_pending_after_the_timeout_and_can_be_abandoned(grpc_receiver):
    """Past the timeout a request stays in flight (never sent twice, docs/reliability.md) until abandoned."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    try:
        started = time.monotonic()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        http = HttpTransport(ExporterConfig(endpoint=url, timeout=0.5))
        assert http.send(BODY) == Answer(Outcome.PENDING, f"no answer within 0.5s from {url}")
        http.abandon()
        grpc_receiver.delay = 3
        transport = GrpcTransport(ExporterConfig(protocol="grpc", endpoint=f"http://127.0.0.1:{grpc_receiver.port}",
                                                 timeout=0.5))
        assert transport.send(BODY) == Answer(Outcome.PENDING, f"no answer within 0.5s from {transport.url_for_logs}")
        transport.abandon()
        assert time.monotonic() - started < 2.5
    finally:
        silent.close()


def test_failover_moves_on_from_a_gateway_that_says_retry_and_round_the_list():
    first, second, third = RecordingServer(status=503), RecordingServer(), RecordingServer()
    try:
        transport = build_transport(ExporterConfig(endpoint=first.url(),
                                                   failover_endpoints=(second.url(), third.url())))
        assert transport.send(BODY) == Answer(Outcome.RETRY, f"HTTP 503 from {first.url()}")
        assert [transport.send(BODY) for _ in range(2)] == [Answer(Outcome.SENT)] * 2  # the next one, and it stays
        second.status = third.status = 503
        assert [transport.send(BODY)[0] for _ in range(2)] == [Outcome.RETRY] * 2
        first.status = 200
        assert transport.send(BODY) == Answer(Outcome.SENT)  # round the list: the first again
        assert (len(first.requests), len(second.requests), len(third.requests)) == (2, 3, 1)
        transport.close()
    finally:
        for server in (first, second, third):
            server.stop()


def test_failover_passes_over_a_gateway_that_asked_to_wait_and_waits_only_when_all_did():
    busy, healthy = RecordingServer(status=503), RecordingServer()
    busy.answer_headers = {"Retry-After": "300"}
    clock = Clock(1000.0)
    try:
        transport = build_transport(ExporterConfig(endpoint=busy.url(), failover_endpoints=(healthy.url(),)))
        transport.clock = clock
        assert transport.send(BODY) == Answer(Outcome.RETRY, f"HTTP 503 from {busy.url()}")  # no wait: the other
        healthy.status = 503  # refuses too, without asking to wait: tried again, the busy one passed over
        assert [transport.send(BODY).retry_after for _ in range(3)] == [0, 0, 0]
        healthy.answer_headers = {"Retry-After": "60"}
        clock.now += 10
        assert transport.send(BODY).retry_after == 60  # both asked: the sooner
        clock.now += 60
        healthy.status = 200
        assert transport.send(BODY) == Answer(Outcome.SENT)
        assert (len(busy.requests), len(healthy.requests)) == (1, 5)
        clock.now += 230  # the busy gateway's 300 s are over: it gets requests again when the healthy one refuses
        healthy.status, healthy.answer_headers = 503, {}
        transport.send(BODY)
        busy.status = 200
        assert transport.send(BODY) == Answer(Outcome.SENT) and len(busy.requests) == 2
        transport.close()
    finally:
        for server in (busy, healthy):
            server.stop()


def test_http_logs_each_post_at_debug_level(server, caplog):
    caplog.set_level(logging.DEBUG, logger="collector.transport")
    HttpTransport(ExporterConfig(endpoint=server.url(), compression="none")).send(BODY)
    assert [r.getMessage() for r in caplog.records] == [f"POST {server.url()}: {len(BODY)} bytes sent"]


def test_a_gateway_that_drops_the_connection_while_the_request_waits_is_retry_with_the_reason():
    listener = socket.create_server(("127.0.0.1", 0))

    def drop_after_a_second():
        connection, _ = listener.accept()
        connection.settimeout(1)
        with contextlib.suppress(TimeoutError):
            while connection.recv(65536):  # the whole request, so that closing is a clean end, not a reset
                pass
        connection.close()  # no answer: the gateway went down with the request

    threading.Thread(target=drop_after_a_second, daemon=True).start()
    try:
        transport = HttpTransport(ExporterConfig(endpoint=f"http://127.0.0.1:{listener.getsockname()[1]}/",
                                                 timeout=0.5, compression="none"))
        assert transport.send(BODY)[0] is Outcome.PENDING
        outcome = transport.wait()
        while outcome[0] is Outcome.PENDING:
            outcome = transport.wait()
        assert outcome == Answer(Outcome.RETRY, f"RemoteDisconnected from {transport.url}: Remote end closed "
                                                "connection without response")
    finally:
        listener.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_gateway_that_cannot_take_the_connection_is_retry_after_the_timeout(scheme):
    """A listener whose accept queue is full drops the handshake: connecting is bounded by the timeout too."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    queued = []
    for _ in range(4):  # fill the accept queue (never accepted)
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(full.getsockname())
        queued.append(client)
    result = []
    url = f"{scheme}://127.0.0.1:{full.getsockname()[1]}/"
    sending = threading.Thread(target=lambda: result.append(
        HttpTransport(ExporterConfig(endpoint=url, timeout=0.5)).send(BODY)), daemon=True)
    try:
        time.sleep(0.1)
        sending.start()
        sending.join(5)
        assert result == [Answer(Outcome.RETRY, f"TimeoutError from {url}: timed out")]
    finally:
        for client in queued:
            client.close()
        full.close()


class CountingProxy:
    """A TCP relay to `port` that counts the bytes the client sends."""

    def __init__(self, port):
        self.listener, self.port, self.sent = socket.create_server(("127.0.0.1", 0)), port, 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            threading.Thread(target=self._relay, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._relay, args=(upstream, client, False), daemon=True).start()

    def _relay(self, source, target, counted):
        while data := self._recv(source):
            self.sent += len(data) if counted else 0
            try:
                target.sendall(data)
            except OSError:  # the other side is gone: so is this direction
                break
        target.close()

    @staticmethod
    def _recv(sock):
        try:
            return sock.recv(65536)
        except OSError:
            return b""


@pytest.mark.parametrize("compression, compressed", [("gzip", True), ("deflate", True), ("none", False)])
def test_grpc_compresses_what_it_sends_as_configured(grpc_receiver, compression, compressed):
    proxy = CountingProxy(grpc_receiver.port)
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    request.resource_metrics.add().schema_url = "https://example.com/" + "a" * 100_000  # compresses to little
    transport = GrpcTransport(ExporterConfig(protocol="grpc", endpoint=f"http://127.0.0.1:{proxy.listener.getsockname()[1]}",
                                             compression=compression))
    assert transport.send(request.SerializeToString()) == Answer(Outcome.SENT)
    transport.close()
    proxy.listener.close()
    assert grpc_receiver.received[0][0] == request.SerializeToString()
    assert (proxy.sent < 20_000) is compressed


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_failed_export_names_the_gateway_it_failed_at_without_credentials(caplog, protocol):
    """With failover_endpoints the log says which gateway failed."""
    from collector.backlog import Backlog
    from collector.exporter import Sender
    from collector.faults import Faults
    from collector.telemetry import AgentTelemetry

    caplog.set_level(logging.INFO, logger="collector.exporter")
    path = "/v1/metrics" if protocol == "http/protobuf" else ""
    first, second = (f"http://127.0.0.1:{free_port()}{path}" for _ in range(2))
    # (gRPC sends no credentials from the URL: only HTTP's basic authentication has them)
    secret = first.replace("http://", "http://alice:s3cret@") if protocol == "http/protobuf" else first
    telemetry = AgentTelemetry()
    sender = Sender(build_transport(ExporterConfig(protocol=protocol, endpoint=secret, failover_endpoints=(second,),
                                                   timeout=2)),
                    Backlog(None, max_bytes=10_000, max_age=3600), telemetry,
                    Faults(telemetry, limit=3, on_fatal=lambda: None), patience=60)
    sender.deliver(BODY, 1, time.time())
    sender.deliver(BODY, 1, time.time() + 1)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and not any("s3cret" in m or "alice" in m for m in messages), messages
    kind = "ConnectionRefusedError" if protocol == "http/protobuf" else "gRPC UNAVAILABLE"
    for message, url in zip(messages, (first, second)):
        assert message.startswith(f"export: {kind} from {url}: ") and message.endswith(
            "; keeping data in the backlog"), message
