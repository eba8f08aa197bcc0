"""The OTLP exporter the configuration asks for, wrapped to count what it exports."""

import time

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from collector.config import ExporterConfig
from collector.telemetry import AgentTelemetry


def build_otlp_exporter(config: ExporterConfig) -> MetricExporter:
    headers = {**read_headers_file(config.headers_file), **config.headers}
    if config.protocol == "grpc":
        # Imported here: grpcio costs memory and start-up time that the HTTP default does not need.
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        compression = {"gzip": Compression.Gzip, "deflate": Compression.Deflate}.get(config.compression)
        return OTLPMetricExporter(
            endpoint=config.url, insecure=config.insecure or config.url.startswith("http://"),
            credentials=_grpc_credentials(config), headers=headers, timeout=config.timeout,
            compression=compression or Compression.NoCompression)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(
        endpoint=config.url, certificate_file=config.certificate,
        client_certificate_file=config.client_certificate, client_key_file=config.client_key,
        headers=headers, timeout=config.timeout, compression=Compression(config.compression))


def _grpc_credentials(config: ExporterConfig):
    if config.insecure or config.url.startswith("http://"):
        return None
    import grpc

    def read(path):
        with open(path, "rb") as file:
            return file.read()

    return grpc.ssl_channel_credentials(
        root_certificates=read(config.certificate) if config.certificate else None,
        private_key=read(config.client_key) if config.client_key else None,
        certificate_chain=read(config.client_certificate) if config.client_certificate else None)


def read_headers_file(path: str | None) -> dict[str, str]:
    """``key=value`` lines; keeps credentials out of the configuration file and the process list."""
    if not path:
        return {}
    with open(path) as file:
        lines = [line.strip() for line in file if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines if "=" in line)


def count_points(metrics_data: MetricsData) -> int:
    return sum(len(metric.data.data_points)
               for resource in metrics_data.resource_metrics
               for scope in resource.scope_metrics
               for metric in scope.metrics)


class CountingExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, telemetry: AgentTelemetry, clock=time.monotonic):
        super().__init__(preferred_temporality=inner._preferred_temporality,
                         preferred_aggregation=inner._preferred_aggregation)
        self.inner = inner
        self.telemetry = telemetry
        self.clock = clock

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        outcome = "success" if result is MetricExportResult.SUCCESS else "failure"
        self.telemetry.export_requests[outcome] += 1
        self.telemetry.exported_points[outcome] += count_points(metrics_data)
        if outcome == "success":
            self.telemetry.last_export_success = self.clock()
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
