"""A real OTLP/gRPC receiver over TLS (grpcio), optionally requiring client certificates; keeps every request."""
from __future__ import annotations

import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

from tests.reliability.tls import CertificateAuthority


class GrpcTlsEndpoint(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, ca: CertificateAuthority, require_client_certificate: bool):
        self.requests = []
        self.lock = threading.Lock()
        pair = ca.issue("grpc-server", server=True)
        credentials = grpc.ssl_server_credentials(
            [(pair.key.read_bytes(), pair.certificate.read_bytes())],
            root_certificates=ca.bundle.read_bytes() if require_client_certificate else None,
            require_client_auth=require_client_certificate)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
        self.server.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def Export(self, request, context):
        with self.lock:
            self.requests.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def received(self) -> list:
        with self.lock:
            return list(self.requests)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.stop(grace=None)
