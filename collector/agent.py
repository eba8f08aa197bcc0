"""Wires the parts together: host → sources → collection → observable instruments → OTLP export."""

import logging
import os
import threading

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from collector import __version__
from collector.collection import Collection
from collector.config import Config
from collector.backlog import Backlog
from collector.exporter import OtlpExporter
from collector.health import HealthServer, Readiness
from collector.host import Host
from collector.instruments import register
from collector.resource import build_resource
from collector.sources import SOURCES
from collector.sources.agent import AgentSource
from collector.sources.base import SourceOptions
from collector.telemetry import AgentTelemetry
from collector.transport import build_transport

log = logging.getLogger(__name__)


def build_collection(config: Config, host: Host, telemetry: AgentTelemetry) -> Collection:
    sources = [SOURCES[name](host, options) for name, options in config.enabled_sources.items()]
    sources.append(AgentSource(host, SourceOptions(), telemetry))
    return Collection(sources, telemetry)


def build_exporter(config: Config, telemetry: AgentTelemetry) -> OtlpExporter:
    telemetry.backlog = Backlog(config.backlog.directory, config.backlog.max_bytes, config.backlog.max_age)
    # Replay may use half of each interval, so that collection keeps its rhythm after a long outage.
    return OtlpExporter(build_transport(config.exporter), telemetry.backlog, telemetry,
                        replay_budget=config.exporter.interval / 2)


def build_provider(resource: Resource, reader: MetricReader, collection: Collection, **options) -> MeterProvider:
    """A MeterProvider with one observable instrument per metric of the collection's sources, including the
    metrics they discover while running."""
    provider = MeterProvider(resource=resource, metric_readers=[reader], **options)
    meter = provider.get_meter("hostagent", __version__)
    register(meter, collection.specs(), collection)
    # Registered before the SDK reads the instruments: the reader refreshes the collection first.
    collection.on_new_metrics(lambda specs: register(meter, specs, collection))
    return provider


class CollectingReader(PeriodicExportingMetricReader):
    """Runs one collection of the sources right before the SDK reads the instruments."""

    def __init__(self, exporter: MetricExporter, collection: Collection, interval: float):
        self.collection = collection
        super().__init__(exporter, export_interval_millis=interval * 1000)

    def collect(self, timeout_millis: float = 10_000) -> None:
        self.collection.refresh()
        super().collect(timeout_millis=timeout_millis)


class Agent:
    def __init__(self, config: Config, environ=os.environ):
        self.config = config
        self.telemetry = AgentTelemetry()
        host = Host(config.host_root)
        self.collection = build_collection(config, host, self.telemetry)
        reader = CollectingReader(build_exporter(config, self.telemetry), self.collection, config.exporter.interval)
        self.provider = build_provider(build_resource(host, environ, config.resource), reader, self.collection)
        self.health = None
        if config.health.enabled:
            window = config.health.ready_intervals * config.exporter.interval
            self.health = HealthServer(config.health, Readiness(self.telemetry, window))

    def run(self, stop: threading.Event) -> None:
        if self.health:
            self.health.start()
        log.info("exporting %d sources every %ss to %s (%s)", len(self.collection.sources),
                 self.config.exporter.interval, self.config.exporter.url_for_logs, self.config.exporter.protocol)
        stop.wait()
        log.info("stopping: final export")
        self.provider.shutdown()
        if self.health:
            self.health.stop()
