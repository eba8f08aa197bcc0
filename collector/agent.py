"""Wires the parts together: host → sources → collection → observable instruments → OTLP export."""

import logging
import os
import threading
import time
from collections.abc import Callable

from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, ExemplarReservoir, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, MetricsData
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource

from collector import __version__
from collector.backlog import Backlog
from collector.collection import Collection
from collector.config import Config
from collector.encoding import RequestEncoder
from collector.exporter import Sender
from collector.faults import Faults
from collector.health import HealthServer, Readiness
from collector.host import Host
from collector.instruments import register
from collector.resource import build_resource
from collector.sources import SOURCES
from collector.sources.agent import AgentSource
from collector.sources.base import SourceOptions, build_source
from collector.telemetry import AgentTelemetry
from collector.transport import build_transport

log = logging.getLogger(__name__)


def build_collection(config: Config, host: Host, telemetry: AgentTelemetry,
                     backlog: Backlog | None = None) -> Collection:
    """The enabled sources and the agent's own; `backlog`: the sender's (none for a snapshot)."""
    sources = [build_source(SOURCES[name], host, options) for name, options in config.enabled_sources.items()]
    sources.append(AgentSource(host, SourceOptions(), telemetry, backlog))
    return Collection(sources, telemetry)


def count_points(metrics_data: MetricsData) -> int:
    return sum(len(metric.data.data_points)
               for resource in metrics_data.resource_metrics
               for scope in resource.scope_metrics
               for metric in scope.metrics)


def build_backlog(config: Config) -> Backlog:
    return Backlog(config.backlog.directory, config.backlog.max_bytes, config.backlog.max_age)


def build_sender(config: Config, backlog: Backlog, telemetry: AgentTelemetry, faults: Faults) -> Sender:
    # A request in flight is waited for half as long as the backlog keeps it: given up then, it still has the
    # other half to be sent again (waited for as long, it would be too old for the backlog when given up).
    return Sender(build_transport(config.exporter), backlog, telemetry, faults, patience=config.backlog.max_age / 2)


class NoExemplars(ExemplarReservoir):
    """The agent sends no exemplars (collector/encoding.py): none is offered (the filter is off), none is looked
    for at each collection (the SDK's default reservoir costs 10 % of its collection, empty)."""

    def offer(self, value, time_unix_nano, attributes, context) -> None:
        pass

    def collect(self, point_attributes) -> list:
        return []


def build_provider(resource: Resource, reader: MetricReader, collection: Collection, **options) -> MeterProvider:
    """A MeterProvider with one observable instrument per metric of the collection's sources, including the
    metrics they discover while running."""
    provider = MeterProvider(resource=resource, metric_readers=[reader], exemplar_filter=AlwaysOffExemplarFilter(),
                             views=[View(instrument_name="*", exemplar_reservoir_factory=lambda _: NoExemplars)],
                             **options)
    meter = provider.get_meter("hostagent", __version__)
    register(meter, collection.specs(), collection)
    # Registered before the SDK reads the instruments: the reader refreshes the collection first.
    collection.on_new_metrics(lambda specs: register(meter, specs, collection))
    return provider


class CollectingReader(MetricReader):
    """Collection on its own clock: every interval (at fixed times, whatever the gateway does) it runs the
    sources, reads the instruments (`MetricReader.collect`) and hands the encoded request to `deliver`, which
    returns at once. `cycle()` is one such collection, for callers with a clock of their own."""

    def __init__(self, collection: Collection, interval: float, deliver: Callable[[bytes, int], None],
                 faults: Faults, clock=time.monotonic):
        super().__init__()
        self.collection, self.interval, self.deliver, self.faults, self.clock = (
            collection, interval, deliver, faults, clock)
        self.encoder = RequestEncoder()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=faults.guard("collect", self._tick), name="collect", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _tick(self) -> None:
        due = self.clock() + self.interval
        while not self.stopped.wait(max(0.0, due - self.clock())):
            self.cycle()
            due += self.interval
            if due < self.clock():  # a collection longer than the interval: skip the times it missed
                due += (self.clock() - due) // self.interval * self.interval + self.interval

    def cycle(self) -> None:
        try:
            self.collection.refresh()
            self.collect()
        except Exception as error:
            self.faults.report("collect", error)
        else:
            self.faults.clear("collect")

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs) -> None:
        self.deliver(self.encoder.encode(metrics_data), count_points(metrics_data))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        """Stop the clock, then one last collection."""
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout_millis / 1000)
        self.cycle()


class Agent:
    def __init__(self, config: Config, environ=os.environ):
        self.config = config
        self.telemetry = AgentTelemetry()
        self.stop = threading.Event()  # set by a signal, or by a fatal fault
        faults = Faults(self.telemetry, config.health.ready_intervals, on_fatal=self.stop.set)
        host = Host(config.host_root)
        backlog = build_backlog(config)
        self.collection = build_collection(config, host, self.telemetry, backlog)
        self.sender = build_sender(config, backlog, self.telemetry, faults)
        self.reader = CollectingReader(self.collection, config.exporter.interval, self.sender.submit, faults)
        self.provider = build_provider(build_resource(host, environ, config.resource), self.reader, self.collection)
        self.health = None
        if config.health.enabled:
            window = config.health.ready_intervals * config.exporter.interval
            self.health = HealthServer(config.health, Readiness(self.telemetry, window))

    def run(self) -> int:
        """Until `stop` is set; then a final collection, delivered within the timeout. The exit status: 1 after
        a fatal fault (collector/faults.py), else 0."""
        if self.health:
            self.health.start()
        log.info("exporting %d sources every %ss to %s (%s)", len(self.collection.sources),
                 self.config.exporter.interval, self.config.exporter.url_for_logs, self.config.exporter.protocol)
        self.sender.start()
        self.reader.start()
        self.stop.wait()
        log.info("stopping: final export")
        self.provider.shutdown()
        self.sender.close(self.config.exporter.timeout)
        if self.health:
            self.health.stop()
        return 1 if self.telemetry.fatal else 0
