"""hostagent: host metrics from procfs and sysfs on the OpenTelemetry SDK, exported over OTLP."""

__version__ = "0.1.0"
SEMCONV_VERSION = "1.44.0"
