"""CPU per cycle and memory of four separate processes running side by side on the same host, from /proc:

- our agent (`collector run`, default sources) pushing OTLP/HTTP to a local sink,
- the stock SystemMetricsInstrumentor with the SDK's OTLP/HTTP exporter, pushing to a sink of its own,
- the OpenTelemetry Collector's hostmetrics receiver (the project's build, bench/hostmetrics.yaml), pushing
  OTLP/HTTP to a sink of its own,
- node_exporter (default collectors), scraped like Prometheus does: gzip, Prometheus' own request headers, one
  kept-alive connection.

A push cycle is counted when a request carrying CYCLE_METRIC reaches the sink (the hostmetrics receiver sends
the filesystem scraper's points in requests of their own); a scrape cycle is one GET of /metrics.
"""

import gzip
import http.client
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.otlp import data_points
from bench.procfs import cpu_seconds, memory_bytes
from pipeline import backends, otelcol
from pipeline.otlp_receiver import OtlpReceiver
from pipeline.services import HOST, REPO_ROOT, Agent, PortInUse, Server
from pipeline.stack import free_port

# The filesystem source runs every third export by default (30 s on a 10 s export): keep that ratio.
FILESYSTEM_EVERY = 3
WARMUP_CYCLES = 2  # imports, first reads and connection set-up are not a cycle's cost
CYCLE_METRIC = "system.cpu.time"  # in every cycle's request of every pushing contender
HOSTMETRICS_CONFIG = REPO_ROOT / "bench" / "hostmetrics.yaml"
# The headers of a scrape by Prometheus 2.53.3 (Debian's, the project's; seen by a server it scraped). node_exporter
# answers the text format to them; Prometheus keeps the connection open from one scrape to the next.
PROMETHEUS_SCRAPE_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
              "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "Accept-Encoding": "gzip", "User-Agent": "Prometheus/2.53.3", "X-Prometheus-Scrape-Timeout-Seconds": "10"}


@dataclass(frozen=True)
class Cost:
    name: str
    cpu_per_cycle: float  # seconds
    rss: int  # bytes, at the end of the run
    peak_rss: int  # bytes, high-water mark
    cycles: int
    points: int  # data points (or series) one cycle delivers
    names: frozenset[str] | None  # OTLP metric names delivered; None for the Prometheus exposition format


class NodeExporter(Server):
    name = "node_exporter"
    ready_path = "/"

    def __init__(self, port: int, data_dir: Path):
        super().__init__(port, data_dir)
        self.connection: http.client.HTTPConnection | None = None

    def argv(self) -> list[str]:
        return [str(backends.binary("node_exporter")), f"--web.listen-address={HOST}:{self.port}"]

    def scrape(self) -> bytes:
        """One scrape, the exposition text; the connection stays open for the next one, as Prometheus keeps it."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
        self.connection.request("GET", "/metrics", headers=PROMETHEUS_SCRAPE_HEADERS)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"node_exporter answered HTTP {response.status}: {body[:200]!r}")
        return gzip.decompress(body)  # not gzip: the measurement is not the one Prometheus causes, fail

    def stop(self, timeout: float = 15.0) -> None:
        if self.connection is not None:
            self.connection.close()
        super().stop(timeout)


def started(server_on: Callable[[int], Server], attempts: int = 3) -> Server:
    """`server_on(port).start()` on a free port; another process may take that port before the server does."""
    for attempt in range(1, attempts + 1):
        try:
            return server_on(free_port()).start()
        except PortInUse:
            if attempt == attempts:
                raise


@contextmanager
def our_agent(endpoint: str, interval: float, workdir: Path):
    sources = {"filesystem": {"interval": f"{interval * FILESYSTEM_EVERY}s"}}
    with started(lambda port: Agent(port, workdir / "agent", endpoint, interval=f"{interval}s",
                                    sources=sources)) as agent:
        yield agent.process.pid


class StockAgent(Server):
    """bench/stock_agent.py as a server process: stopped (and never orphaned) like the others."""

    name = "stock-agent"

    def __init__(self, data_dir: Path, endpoint: str, interval: float):
        super().__init__(0, data_dir)
        self.endpoint, self.interval = endpoint, interval

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "bench.stock_agent", self.endpoint, str(self.interval)]

    def ports(self) -> tuple[int, ...]:
        return ()

    def is_ready(self) -> bool:
        return True  # it pushes: the sink tells when it works


@contextmanager
def stock_agent(endpoint: str, interval: float, workdir: Path):
    with StockAgent(workdir, endpoint, interval) as agent:
        yield agent.process.pid


class Hostmetrics(Server):
    """The project's collector build running only the hostmetrics receiver (bench/hostmetrics.yaml); `port` serves
    the collector's own metrics, which answer once the pipeline runs."""

    name = "hostmetrics"
    ready_path = "/metrics"

    def __init__(self, port: int, data_dir: Path, endpoint: str, interval: float):
        super().__init__(port, data_dir)
        self.endpoint, self.interval = endpoint, interval

    def argv(self) -> list[str]:
        return [str(otelcol.binary()), f"--config={HOSTMETRICS_CONFIG}"]

    def environment(self) -> dict[str, str]:
        return {"HOSTMETRICS_ENDPOINT": self.endpoint, "HOSTMETRICS_INTERVAL": f"{self.interval}s",
                "HOSTMETRICS_FILESYSTEM_INTERVAL": f"{self.interval * FILESYSTEM_EVERY}s",
                "HOSTMETRICS_TELEMETRY_PORT": str(self.port)}


@contextmanager
def hostmetrics(endpoint: str, interval: float, workdir: Path):
    with started(lambda port: Hostmetrics(port, workdir, endpoint, interval)) as collector:
        yield collector.process.pid


def pushed_cost(name: str, contender, interval: float, cycles: int, workdir: Path) -> Cost:
    """Run `contender(endpoint, interval, workdir)` against a fresh sink; CPU between two arrivals / cycles."""
    sink = OtlpReceiver()
    timeout = (WARMUP_CYCLES + cycles) * interval * 3 + 30
    try:
        with contender(sink.url, interval, workdir / name) as pid:
            if not sink.wait_for(WARMUP_CYCLES, timeout, CYCLE_METRIC):
                raise RuntimeError(f"{name} did not export {WARMUP_CYCLES} times in {timeout:.0f}s")
            first, before = sink.cycles(CYCLE_METRIC), cpu_seconds(pid)
            if not sink.wait_for(len(first) + cycles, timeout, CYCLE_METRIC):
                raise RuntimeError(f"{name} did not export {cycles} more times in {timeout:.0f}s")
            last, after = sink.cycles(CYCLE_METRIC), cpu_seconds(pid)
            memory = memory_bytes(pid)
    finally:
        sink.stop()
    counted = len(last) - len(first)
    # every request after the first counted cycle's, up to the last one's: the cycles and what came between them
    window = sink.requests[first[-1] + 1:last[-1] + 1]
    return Cost(name, (after - before) / counted, memory["rss"], memory["peak"], counted,
                round(sum(map(data_points, window)) / counted), frozenset(sink.metric_names()))


def scraped_cost(interval: float, cycles: int, workdir: Path) -> Cost:
    with started(lambda port: NodeExporter(port, workdir / "node_exporter")) as exporter:
        for _ in range(WARMUP_CYCLES):
            exporter.scrape()
        before = cpu_seconds(exporter.process.pid)
        for _ in range(cycles):
            scraped_at = time.monotonic()
            body = exporter.scrape()
            time.sleep(max(0.0, interval - (time.monotonic() - scraped_at)))
        after = cpu_seconds(exporter.process.pid)
        memory = memory_bytes(exporter.process.pid)
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return Cost("node_exporter", (after - before) / cycles, memory["rss"], memory["peak"], cycles, series, None)


def measure(interval: float, cycles: int, workdir: Path) -> list[Cost]:
    """The four at the same time: whatever else loads the machine then weighs on each of them alike."""
    runs = [partial(pushed_cost, "hostagent", our_agent, interval, cycles, workdir),
            partial(pushed_cost, "stock SystemMetricsInstrumentor", stock_agent, interval, cycles, workdir),
            partial(pushed_cost, "hostmetrics receiver", hostmetrics, interval, cycles, workdir),
            partial(scraped_cost, interval, cycles, workdir)]
    with ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(lambda run: run(), runs))
