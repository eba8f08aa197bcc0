"""Where one collect+export cycle of the agent spends its CPU: the agent's parts called one after the other in
this process (the same objects `collector run` wires together), each timed with the thread's CPU clock."""

import time
from collections import Counter
from contextlib import contextmanager

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from bench.latency import every_source_due
from collector.agent import build_provider
from collector.encoding import RequestEncoder
from collector.host import Host
from collector.resource import build_resource
from collector.transport import build_transport
from pipeline.otlp_receiver import OtlpReceiver

PHASES = ("collection (all sources)", "SDK collection", "OTLP encoding", "compression + HTTP POST")


def measure(cycles: int) -> dict[str, float]:
    """CPU seconds per cycle of each phase, in PHASES order."""
    sink = OtlpReceiver()
    config, collection = every_source_due({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": sink.url})
    reader = InMemoryMetricReader()
    provider = build_provider(build_resource(Host(config.host_root), {}), reader, collection, shutdown_on_exit=False)
    transport = build_transport(config.exporter)
    encoder = RequestEncoder()  # the agent's, keeping what repeats from one cycle to the next
    spent = Counter()

    @contextmanager
    def timed(phase: str):
        started = time.thread_time()
        yield
        spent[phase] += time.thread_time() - started

    try:
        for cycle in range(cycles + 1):
            if cycle == 1:  # the first cycle opens files and the connection
                spent.clear()
            with timed(PHASES[0]):
                collection.refresh()
            with timed(PHASES[1]):
                data = reader.get_metrics_data()
            with timed(PHASES[2]):
                body = encoder.encode(data)
            with timed(PHASES[3]):
                transport.send(body)
    finally:
        transport.close()
        provider.shutdown()
        sink.stop()
    return {phase: spent[phase] / cycles for phase in PHASES}
