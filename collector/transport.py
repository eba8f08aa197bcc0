"""Sending one encoded OTLP metrics request (ExportMetricsServiceRequest bytes) over HTTP or gRPC.

The agent sends bytes rather than SDK objects so that a request that failed can be kept in the backlog
and sent again, byte for byte, when the gateway is back.
"""

import gzip
import zlib
from enum import Enum

import requests

from collector.config import ExporterConfig


class Outcome(Enum):
    SENT = "sent"
    RETRY = "retry"  # the gateway is away, busy or slow: keep the request and send it again later
    REJECTED = "rejected"  # the gateway refused this request for good (malformed, too large)


# OTLP/HTTP: these statuses mean "try again later" (specification, "Retryable Response Codes").
RETRYABLE_HTTP = {429, 502, 503, 504}
COMPRESSORS = {"gzip": gzip.compress, "deflate": zlib.compress, "none": None}


class HttpTransport:
    def __init__(self, config: ExporterConfig):
        self.url, self.url_for_logs = config.url, config.url_for_logs
        self.timeout = config.timeout
        self.compress = COMPRESSORS[config.compression]
        self.session = requests.Session()
        self.session.headers.update({**request_headers(config), "Content-Type": "application/x-protobuf"})
        if self.compress:
            self.session.headers["Content-Encoding"] = config.compression
        # Verification is on unless `insecure: true` asks otherwise; `certificate` replaces the system CAs.
        # Given with each request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the session's.
        client = (config.client_certificate, config.client_key) if config.client_key else config.client_certificate
        self.tls = {"verify": False if config.insecure else (config.certificate or True), "cert": client}

    def send(self, body: bytes) -> tuple[Outcome, str]:
        try:
            response = self.session.post(self.url, data=self.compress(body) if self.compress else body,
                                         timeout=self.timeout, **self.tls)
        except requests.RequestException as error:
            return Outcome.RETRY, f"{type(error).__name__}: {error}"
        if response.ok:
            return Outcome.SENT, ""
        reason = f"HTTP {response.status_code} from {self.url_for_logs}"
        return (Outcome.RETRY if response.status_code in RETRYABLE_HTTP else Outcome.REJECTED), reason

    def close(self) -> None:
        self.session.close()


class GrpcTransport:
    def __init__(self, config: ExporterConfig):
        # Imported here: grpcio costs memory and start-up time that the HTTP default does not need.
        import grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

        self.grpc, self.request_type = grpc, metrics_service_pb2.ExportMetricsServiceRequest
        target = config.url.split("://", 1)[-1].rstrip("/")
        if config.insecure or config.url.startswith("http://"):
            self.channel = grpc.insecure_channel(target)
        else:
            self.channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(
                root_certificates=_read(config.certificate), private_key=_read(config.client_key),
                certificate_chain=_read(config.client_certificate)))
        self.stub = metrics_service_pb2_grpc.MetricsServiceStub(self.channel)
        self.metadata = [(k.lower(), v) for k, v in request_headers(config).items()]
        self.timeout = config.timeout
        self.compression = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}.get(
            config.compression, grpc.Compression.NoCompression)
        self.retryable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                          grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
                          grpc.StatusCode.CANCELLED}

    def send(self, body: bytes) -> tuple[Outcome, str]:
        try:
            self.stub.Export(self.request_type.FromString(body), metadata=self.metadata, timeout=self.timeout,
                             compression=self.compression)
        except self.grpc.RpcError as error:
            reason = f"gRPC {error.code().name}: {error.details()}"
            return (Outcome.RETRY if error.code() in self.retryable else Outcome.REJECTED), reason
        return Outcome.SENT, ""

    def close(self) -> None:
        self.channel.close()


def build_transport(config: ExporterConfig):
    return GrpcTransport(config) if config.protocol == "grpc" else HttpTransport(config)


def request_headers(config: ExporterConfig) -> dict[str, str]:
    return {**read_headers_file(config.headers_file), **config.headers}


def read_headers_file(path: str | None) -> dict[str, str]:
    """``key=value`` lines; keeps credentials out of the configuration file, the process list and logs."""
    if not path:
        return {}
    with open(path) as file:
        lines = [line.strip() for line in file if line.strip() and not line.lstrip().startswith("#")]
    return dict((k.strip(), v.strip()) for k, v in (line.split("=", 1) for line in lines if "=" in line))


def _read(path):
    if not path:
        return None
    with open(path, "rb") as file:
        return file.read()
