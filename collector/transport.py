"""Sending one encoded OTLP metrics request (ExportMetricsServiceRequest bytes) over HTTP or gRPC.

The agent sends bytes rather than SDK objects so that a request that failed can be kept in the backlog
and sent again, byte for byte, when the gateway is back.

One request at a time is in flight. A request not answered within the timeout is still in flight (a frozen
gateway has it in its socket and stores it when it resumes): `send` then answers PENDING, and `wait` keeps
waiting for the answer on the same connection instead of sending the request a second time; `abandon`
gives it up.

The answer says more than the outcome: a partial success (data points the gateway refused for good in a request
it took) and how long a busy gateway asks the agent to wait (HTTP Retry-After, gRPC RetryInfo).
"""

import base64
import functools
import logging
import sys
import time
import urllib.parse
import zlib
from enum import Enum
from typing import NamedTuple

from collector.config import ExporterConfig, read_headers_file, refuse_passphrase
from collector.encoding import read_partial_success, read_retry_delay
from collector.http11 import Connection, ProtocolError, Response

log = logging.getLogger(__name__)


class Outcome(Enum):
    SENT = "sent"
    RETRY = "retry"  # the gateway is away, busy or slow: keep the request and send it again later
    REJECTED = "rejected"  # the gateway refused this request for good (malformed, too large)
    PENDING = "pending"  # no answer within the timeout yet: the request is still in flight


class Answer(NamedTuple):
    outcome: Outcome
    reason: str = ""  # why it was not SENT; for SENT, the gateway's message of a partial success
    rejected_points: int = 0  # SENT: data points the gateway refused for good (OTLP partial success)
    retry_after: float = 0.0  # RETRY: seconds the gateway asked the agent to wait before sending again


# OTLP/HTTP: these statuses mean "try again later" (specification, "Retryable Response Codes").
RETRYABLE_HTTP = {429, 502, 503, 504}
THROTTLING_HTTP = {429, 503}  # and with these the gateway may say when (Retry-After: "Throttling")
# gzip at zlib's default level 6, as deflate and as the collector's otlphttp exporter: gzip.compress's 9 costs 45 %
# more CPU for a request 0.5 % smaller, level 1 half as much CPU for a request 9 % larger. zlib writes the gzip
# header and trailer itself (wbits 31), without gzip.compress's separate CRC pass and joins.
COMPRESSORS = {"gzip": functools.partial(zlib.compress, level=6, wbits=31), "deflate": zlib.compress, "none": None}


class HttpTransport:
    """OTLP/HTTP on one kept-alive connection (collector/http11.py): requests (urllib3, charset_normalizer, idna)
    costs ~7 MiB of RSS and ~1.8 ms of CPU per export that we do not need, http.client ~5 MiB (it imports ssl
    and email)."""

    def __init__(self, config: ExporterConfig):
        self.url, self.url_for_logs = config.url, config.url_for_logs
        self.timeout = config.timeout
        self.compress = COMPRESSORS[config.compression]
        target = urllib.parse.urlsplit(config.url)
        self.path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        self.headers = {**request_headers(config), "Content-Type": "application/x-protobuf"}
        if target.username:  # credentials in the URL mean HTTP basic authentication, as with requests
            user = f"{urllib.parse.unquote(target.username)}:{urllib.parse.unquote(target.password or '')}"
            self.headers.setdefault("Authorization", "Basic " + base64.b64encode(user.encode()).decode())
        if self.compress:
            self.headers["Content-Encoding"] = config.compression
        self.connection = Connection(target.hostname, target.port, self.timeout,
                                     tls=tls_context(config) if target.scheme == "https" else None)

    def send(self, body: bytes) -> Answer:
        data = self.compress(body) if self.compress else body
        reused = self.connection.sock is not None
        # Connected, TLS included, and the request written within one timeout, the second try's too: with the
        # answer's two (its first byte, then the rest) an attempt takes at most three (docs/reliability.md).
        sent_by = time.monotonic() + self.timeout
        try:
            try:
                return self._exchange(data, sent_by)
            except (ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                # The gateway closed the idle kept-alive connection: once more on a fresh one.
                self.connection.close()
                return self._exchange(data, sent_by)
        except (OSError, ProtocolError) as error:
            return self._failed(error)

    def wait(self) -> Answer:
        """Wait up to the timeout more for the answer to the request in flight."""
        try:
            return self._answer()
        except (OSError, ProtocolError) as error:
            return self._failed(error)

    def abandon(self) -> None:
        self.connection.close()

    def _exchange(self, data: bytes, sent_by: float) -> Answer:
        self.connection.request("POST", self.path, body=data, headers=self.headers, deadline=sent_by)
        log.debug("POST %s: %d bytes sent", self.url_for_logs, len(data))
        return self._answer()

    def _answer(self) -> Answer:
        # The first byte within the timeout, the rest within one more from it: a gateway that begins late has the
        # time to finish (else its answer would be failed and the request sent twice), a gateway trickling its
        # answer a byte at a time fails as a timeout (kept for later) by twice the timeout, not a read that never ends.
        if not self.connection.answer_arrived(self.timeout):
            return Answer(Outcome.PENDING, f"no answer within {self.timeout:g}s from {self.url_for_logs}")
        response = self.connection.getresponse(self.timeout)
        if response.will_close:
            self.connection.close()
        if 200 <= response.status < 300:
            return _delivered(response)
        reason = f"HTTP {response.status} from {self.url_for_logs}"
        if response.status in RETRYABLE_HTTP:
            return Answer(Outcome.RETRY, reason, retry_after=_retry_after(response))
        return Answer(Outcome.REJECTED, reason)

    def _failed(self, error: Exception) -> Answer:
        self.connection.close()
        # Every TLS failure reads "SSLError" in the log, whichever subclass ssl raised (ssl is loaded for https only).
        kind = f"SSLError ({type(error).__name__})" if _is_tls_error(error) else type(error).__name__
        return Answer(Outcome.RETRY, f"{kind} from {self.url_for_logs}: {error}")  # which one, with failover

    def close(self) -> None:
        self.connection.close()


def _delivered(response: Response) -> Answer:
    """SENT, with the partial success of an OTLP answer (protobuf, the request's content type); a body that is not
    one is no partial success: the status said delivered."""
    if not response.headers.get("content-type", "").startswith("application/x-protobuf"):
        return Answer(Outcome.SENT)
    try:
        rejected, message = read_partial_success(response.body)
    except ValueError:
        return Answer(Outcome.SENT)
    return Answer(Outcome.SENT, message, rejected_points=rejected)


def _retry_after(response: Response) -> float:
    """The seconds of a 429's or 503's Retry-After (seconds, or an HTTP date); 0 without a valid one."""
    value = response.headers.get("retry-after", "") if response.status in THROTTLING_HTTP else ""
    if value.isascii() and value.isdigit():
        return float(value)
    if not value:
        return 0.0
    import email.utils  # the date form only: the agent has no other use for the email package

    try:
        date = email.utils.parsedate_to_datetime(value)
    except ValueError:
        return 0.0
    return max(date.timestamp() - time.time(), 0.0)


def _is_tls_error(error: Exception) -> bool:
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(error, ssl.SSLError)


def tls_context(config: ExporterConfig):
    """An ssl.SSLContext for an https endpoint (ssl imported here: it costs 4 MiB of RSS, docs/benchmarks.md)."""
    import ssl

    # Verification is on unless `insecure: true` asks otherwise; `certificate` replaces the system CAs.
    # Unlike requests, nothing in the environment (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) overrides them.
    context = ssl.create_default_context(cafile=config.certificate)
    if config.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.client_certificate:
        context.load_cert_chain(config.client_certificate, config.client_key, password=refuse_passphrase)
    return context


class GrpcTransport:
    def __init__(self, config: ExporterConfig):
        # Imported here: grpcio costs memory and start-up time that the HTTP default does not need.
        import grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

        self.grpc, self.request_type = grpc, metrics_service_pb2.ExportMetricsServiceRequest
        target = config.url.split("://", 1)[-1].rstrip("/")
        if config.insecure or config.url.startswith("http://"):
            self.channel = grpc.insecure_channel(target, options=reconnect_options(config.interval))
        else:
            self.channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(
                root_certificates=_read(config.certificate), private_key=_read(config.client_key),
                certificate_chain=_read(config.client_certificate)), options=reconnect_options(config.interval))
        self.stub = metrics_service_pb2_grpc.MetricsServiceStub(self.channel)
        self.metadata = [(k.lower(), v) for k, v in request_headers(config).items()]
        self.timeout, self.url_for_logs = config.timeout, config.url_for_logs
        self.call = None  # the Export call in flight
        self.compression = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}.get(
            config.compression, grpc.Compression.NoCompression)
        # OTLP/gRPC's retryable codes (specification, "Failures"); RESOURCE_EXHAUSTED only when the gateway says
        # when to come back (RetryInfo): without, it is a request too large to ever be taken.
        self.retryable = {grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
                          grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS}

    def send(self, body: bytes) -> Answer:
        # No deadline on the call itself: past the timeout it stays in flight until answered or abandoned.
        self.call = self.stub.Export.future(self.request_type.FromString(body), metadata=self.metadata,
                                            compression=self.compression)
        return self.wait()

    def wait(self) -> Answer:
        try:
            response = self.call.result(timeout=self.timeout)
        except self.grpc.FutureTimeoutError:
            return Answer(Outcome.PENDING, f"no answer within {self.timeout:g}s from {self.url_for_logs}")
        except self.grpc.RpcError as error:
            reason = f"gRPC {error.code().name} from {self.url_for_logs}: {error.details()}"
            retry_after = _retry_delay(error)
            if error.code() in self.retryable or (error.code() is self.grpc.StatusCode.RESOURCE_EXHAUSTED
                                                  and retry_after > 0):
                return Answer(Outcome.RETRY, reason, retry_after=retry_after)
            return Answer(Outcome.REJECTED, reason)
        partial_success = response.partial_success
        return Answer(Outcome.SENT, partial_success.error_message, rejected_points=partial_success.rejected_data_points)

    def abandon(self) -> None:
        if self.call:
            self.call.cancel()

    def close(self) -> None:
        self.channel.close()


def reconnect_options(interval: float) -> list[tuple[str, int]]:
    """grpcio waits up to 120 s between attempts to reconnect a channel, failing every call meanwhile: a gateway
    back after a long outage would get no data for that long. At most one export interval (1 to 30 s) instead."""
    longest = min(30_000, max(1000, round(interval * 1000)))
    return [("grpc.initial_reconnect_backoff_ms", min(1000, longest)), ("grpc.max_reconnect_backoff_ms", longest)]


def _retry_delay(error) -> float:
    """The RetryInfo of a refusal's status details (a google.rpc.Status in the trailing metadata); 0 without."""
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin", b"")
    try:
        return read_retry_delay(details)
    except ValueError:
        return 0.0


class FailoverTransport:
    """Several gateways in order. A request the current gateway cannot take now (RETRY: refused, reset, busy)
    moves the sending on to the next one, round the list; an answer still awaited (PENDING) is awaited where the
    request went, so one request is never in flight at two gateways. A gateway that asked to wait (Retry-After)
    is passed over until then; the agent as a whole waits only while every gateway asked it to."""

    def __init__(self, transports: list, clock=time.monotonic):
        self.transports, self.current, self.clock = transports, 0, clock
        self.quiet_until = [0.0] * len(transports)

    def send(self, body: bytes) -> Answer:
        count, now = len(self.transports), self.clock()
        self.current = next((i % count for i in range(self.current, self.current + count)
                             if self.quiet_until[i % count] <= now), self.current)
        answer = self.transports[self.current].send(body)
        if answer.outcome is Outcome.RETRY:
            self.quiet_until[self.current] = now + answer.retry_after
            self.current = (self.current + 1) % count
            answer = answer._replace(retry_after=max(min(self.quiet_until) - now, 0.0))
        return answer

    def wait(self) -> Answer:
        return self.transports[self.current].wait()

    def abandon(self) -> None:
        self.transports[self.current].abandon()

    def close(self) -> None:
        for transport in self.transports:
            transport.close()


def build_transport(config: ExporterConfig):
    transports = [GrpcTransport(gateway) if config.protocol == "grpc" else HttpTransport(gateway)
                  for gateway in config.gateways]
    return transports[0] if len(transports) == 1 else FailoverTransport(transports)


def request_headers(config: ExporterConfig) -> dict[str, str]:
    return {**(read_headers_file(config.headers_file) if config.headers_file else {}), **config.headers}


def _read(path):
    if not path:
        return None
    with open(path, "rb") as file:
        return file.read()
