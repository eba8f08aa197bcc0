"""The peer we measure against: the stock SystemMetricsInstrumentor with the SDK's OTLP/HTTP exporter.

    python -m bench.stock_agent ENDPOINT INTERVAL_SECONDS      (runs until SIGTERM)
"""

import signal
import sys
import threading

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader


def main(endpoint: str, interval: float) -> None:
    # gzip, as our agent sends by default: both pay for compression.
    exporter = OTLPMetricExporter(endpoint=endpoint, compression=Compression.Gzip)
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(
        exporter, export_interval_millis=interval * 1000)])
    SystemMetricsInstrumentor().instrument(meter_provider=provider)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    provider.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
