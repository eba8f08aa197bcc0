"""The project's collector as a reliable gateway: its persistent queues (otel-config/gateway.yaml, docs/gateway.md)
under a crash, a refused request, a full queue and memory pressure. Real processes throughout; samples are counted
as in test_outages (one `system_uptime_seconds` sample per export cycle)."""
import contextlib
import time

import pytest
import yaml

from pipeline.services import Prometheus, http_get
from pipeline.testing import exporting, free_port, gateway_pipeline_in, otelcol_gateway, running, wait_for
from rules.build import RULES_DIR
from tests.reliability.agent_process import AgentProcess
from tests.reliability.backends import sample_times
from tests.reliability.endpoint import Endpoint
from tests.reliability.test_outages import PATIENCE, UPTIME, assert_nothing_lost, outage_samples, wait_for_backlog
from tests.support.otlp_push import push_gauge_at

QUEUED_CYCLES = 4


def telemetry(gateway, metric: str, **labels: str) -> float:
    """Sum of the gateway's own `metric` samples (its Prometheus endpoint) whose labels include `labels`."""
    total = 0.0
    for line in http_get(f"http://{gateway.telemetry_address}/metrics").decode().splitlines():
        name, _, rest = line.partition("{")
        if name == metric and all(f'{key}="{value}"' in rest for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def collector_pipeline(tmp_path):
    with gateway_pipeline_in(tmp_path, "otelcol") as pipeline:
        yield pipeline


@pytest.fixture
def agent(collector_pipeline, tmp_path):
    with exporting(AgentProcess(tmp_path / "agent", collector_pipeline.gateway.otlp_url), collector_pipeline) as agent:
        yield agent


def samples_after(backend, moment_ms: float) -> set[int]:
    return {t for t in sample_times(backend, UPTIME) if t > moment_ms}


def test_a_killed_collector_replays_its_queue_after_a_restart(collector_pipeline, agent):
    prometheus, victoriametrics = collector_pipeline.backends
    gateway = collector_pipeline.gateway
    prometheus.stop()
    stopped = time.time() * 1000
    queued = wait_for(lambda: len(samples_after(victoriametrics, stopped)) >= QUEUED_CYCLES
                      and samples_after(victoriametrics, stopped), timeout=PATIENCE,
                      what="cycles queued for the stopped Prometheus")
    assert telemetry(gateway, "otelcol_exporter_queue_size", exporter="otlphttp/prometheus") >= 1
    gateway.kill()
    gateway.start()
    prometheus.start()
    restarted = time.time() * 1000
    wait_for(lambda: not agent.backlog_files(), timeout=PATIENCE, what="the agent's backlog replayed")
    agent.stop()
    assert_nothing_lost(collector_pipeline, queued, after=restarted)


def assert_dropped_and_counted(gateway, exporter: str, points: int) -> None:
    """The queue of `exporter` counted `points` refused points as failed and holds nothing (it did not keep them)."""
    wait_for(lambda: telemetry(gateway, "otelcol_exporter_send_failed_metric_points", exporter=exporter) == points,
             timeout=30, what=f"{points} refused points counted as failed by {exporter}")
    assert telemetry(gateway, "otelcol_exporter_queue_size", exporter=exporter) == 0


def test_a_request_prometheus_refuses_is_dropped_and_counted_and_the_rest_flows(collector_pipeline):
    prometheus, victoriametrics = collector_pipeline.backends
    gateway, now = collector_pipeline.gateway, time.time()
    count = "count_over_time(system_cpu_utilization_ratio[4h])"
    push_gauge_at(gateway.otlp_url, "system.cpu.utilization", now, 0.5)
    wait_for(lambda: prometheus.query(count), timeout=30, what="the first sample in Prometheus")
    # Older than Prometheus' out-of-order window (2 h): it answers 400, for good.
    push_gauge_at(gateway.otlp_url, "system.cpu.utilization", now - 3 * 3600, 0.25)
    push_gauge_at(gateway.otlp_url, "system.cpu.utilization", now + 1, 0.75)
    wait_for(lambda: [s["value"][1] for s in prometheus.query(count)] == ["2"], timeout=30,
             what="the sample after the refused one in Prometheus")
    assert_dropped_and_counted(gateway, "otlphttp/prometheus", points=1)
    # VictoriaMetrics takes old samples: it has all three.
    wait_for(lambda: [s["value"][1] for s in victoriametrics.query(count)] == ["3"], timeout=30,
             what="all three samples in VictoriaMetrics")


def test_a_request_victoriametrics_refuses_is_dropped_and_counted_not_retried(tmp_path):
    """VictoriaMetrics' queue sends OTLP to it directly (no relay): a 4xx answer drops that request, once, while
    Prometheus' queue delivers every one. A VictoriaMetrics that refuses valid OTLP stands in: the real one takes
    any well-formed request, old or oversized."""
    with Endpoint(status=400, body=b"cannot unpack OpenTelemetry metrics") as refusing, \
            running(Prometheus(free_port(), tmp_path / "prometheus")) as prometheus, \
            running(otelcol_gateway(free_port(), tmp_path / "otelcol", prometheus.write_url,
                                    refusing.url("/api/v1/write"))) as gateway:
        now = time.time()
        for offset in range(3):
            push_gauge_at(gateway.otlp_url, "system.cpu.utilization", now + offset, 0.5)
        count = "count_over_time(system_cpu_utilization_ratio[1h])"
        wait_for(lambda: [s["value"][1] for s in prometheus.query(count)] == ["3"], timeout=30,
                 what="every sample in Prometheus")
        assert_dropped_and_counted(gateway, "otlphttp/victoriametrics", points=3)
        time.sleep(3)  # past the queue's first retry (1 s): a retried request would have arrived by now
        assert len(refusing.received()) == 3
        assert refusing.headers[0]["Content-Type"] == "application/x-protobuf"


QUEUE_FILLED = "otlphttp/victoriametrics"


@contextlib.contextmanager
def small_queues(tmp_path, capacity: int):
    """The collector pipeline with queues of `capacity` requests, and an agent whose first export reached both
    backends."""
    with gateway_pipeline_in(tmp_path, "otelcol") as pipeline:
        pipeline.gateway.stop()
        pipeline.gateway.extra_environment["OTELCOL_QUEUE_SIZE"] = str(capacity)
        pipeline.gateway.start()
        with exporting(AgentProcess(tmp_path / "agent", pipeline.gateway.otlp_url), pipeline) as agent:
            yield pipeline, agent


def wait_for_drained_queue(gateway) -> None:
    wait_for(lambda: telemetry(gateway, "otelcol_exporter_queue_size", exporter=QUEUE_FILLED) == 0,
             timeout=PATIENCE, what="VictoriaMetrics' queue drained")


def test_a_full_queue_refuses_data_which_the_agent_keeps_until_the_backend_is_back(tmp_path):
    capacity = 3
    with small_queues(tmp_path, capacity) as (pipeline, agent):
        prometheus, victoriametrics = pipeline.backends
        gateway = pipeline.gateway
        victoriametrics.stop()
        stopped = time.time() * 1000
        held = wait_for_backlog(agent, QUEUED_CYCLES)
        assert telemetry(gateway, "otelcol_exporter_queue_size", exporter=QUEUE_FILLED) == capacity
        assert telemetry(gateway, "otelcol_exporter_queue_capacity", exporter=QUEUE_FILLED) == capacity
        assert telemetry(gateway, "otelcol_exporter_enqueue_failed_metric_points", exporter=QUEUE_FILLED) > 0
        # Prometheus scrapes the gateway: the queue alert's condition holds there.
        queue_alert = alert_expr("OtelcolExporterQueueFilling")
        wait_for(lambda: prometheus.query(queue_alert), timeout=30, what="the full queue in Prometheus")
        # The other backend keeps receiving while this one's queue is full.
        assert len(samples_after(prometheus, stopped)) >= QUEUED_CYCLES
        victoriametrics.start()
        recovered = time.time() * 1000
        wait_for(lambda: not agent.backlog_files(), timeout=PATIENCE, what="the agent's backlog replayed")
        # The last replays may fill the queue again while its consumers still back off: an agent stopped then
        # keeps its final export (next test), which Prometheus' queue may have taken before VictoriaMetrics'
        # refused it, and the backends differ until the agent's next start (this test's one CI failure, likely).
        wait_for_drained_queue(gateway)
        agent.stop()
        assert not agent.backlog_files(), "the agent's final export was refused"
        assert_nothing_lost(pipeline, held, after=recovered)


def test_what_a_stopped_agent_kept_while_a_queue_was_full_reaches_both_backends_after_its_next_start(tmp_path):
    with small_queues(tmp_path, capacity=3) as (pipeline, agent):
        victoriametrics = pipeline.backends[1]
        victoriametrics.stop()
        wait_for_backlog(agent, 1)
        agent.stop()  # its final export is refused too, and kept
        held = outage_samples(agent)
        assert held, "the stopped agent kept nothing"
        victoriametrics.start()
        wait_for_drained_queue(pipeline.gateway)
        agent.start()
        wait_for(lambda: not agent.backlog_files(), timeout=PATIENCE, what="the backlog replayed after the restart")
        wait_for_drained_queue(pipeline.gateway)
        agent.stop()

        def the_same_in_both():
            stored = [sample_times(backend, UPTIME) for backend in pipeline.backends]
            return held <= set(stored[0]) and stored[0] == stored[1] and len(set(stored[0])) == len(stored[0])
        # A refused request may have reached Prometheus' queue before VictoriaMetrics' refused it: its repeat must
        # leave one sample there (Prometheus ignores an identical sample), as in VictoriaMetrics
        wait_for(the_same_in_both, timeout=60, what="the same samples, the kept ones included, in both backends")


# The gateway is scraped every 10 s: 30 s is the shortest window that is never empty of samples.
NOT_DRAINING_WINDOW = "30s"


def test_a_victoriametrics_outage_raises_the_queue_alert_though_nothing_counts_as_failed(collector_pipeline, agent):
    """The otlphttp queues retry for ever: VictoriaMetrics down shows as no failed send (OtelcolExporterFailing stays
    silent), only as a queue that is never empty, the condition of OtelcolExporterQueueNotDraining (its 5-minute
    window cut to 30 s to fit the test), which a queue busy with the agent's exports does not meet."""
    prometheus, victoriametrics = collector_pipeline.backends
    gateway = collector_pipeline.gateway
    not_draining = alert_expr("OtelcolExporterQueueNotDraining").replace("[5m]", f"[{NOT_DRAINING_WINDOW}]")
    assert not_draining != alert_expr("OtelcolExporterQueueNotDraining")
    scraped = f'count_over_time(otelcol_exporter_queue_size{{exporter="{QUEUE_FILLED}"}}[{NOT_DRAINING_WINDOW}]) >= 3'
    wait_for(lambda: prometheus.query(scraped), timeout=60, what="a window of scrapes of the healthy queue")
    assert prometheus.query(not_draining) == []
    victoriametrics.stop()
    firing = wait_for(lambda: prometheus.query(not_draining), timeout=PATIENCE + 60,
                      what="the queue not draining in Prometheus")
    assert {sample["metric"]["exporter"] for sample in firing} == {QUEUE_FILLED}
    assert telemetry(gateway, "otelcol_exporter_queue_size", exporter=QUEUE_FILLED) >= 1
    assert telemetry(gateway, "otelcol_exporter_send_failed_metric_points", exporter=QUEUE_FILLED) == 0
    assert prometheus.query(alert_expr("OtelcolExporterFailing")) == []
    victoriametrics.start()
    wait_for_drained_queue(gateway)
    wait_for(lambda: prometheus.query(not_draining) == [], timeout=30, what="the drained queue in Prometheus")


def test_memory_limiter_refusal_is_kept_by_the_agent_and_delivered_later(collector_pipeline, agent, tmp_path):
    gateway = collector_pipeline.gateway
    starved = tmp_path / "starved.yaml"
    # A limit below what the collector itself uses: memory_limiter refuses everything.
    starved.write_text(yaml.safe_dump({"processors": {"memory_limiter": {
        "check_interval": "100ms", "limit_mib": 2, "spike_limit_mib": 1}}}))
    gateway.stop()
    gateway.config_files.append(starved)
    gateway.start()
    held = wait_for_backlog(agent, QUEUED_CYCLES)
    assert telemetry(gateway, "otelcol_receiver_refused_metric_points") > 0
    gateway.stop()
    gateway.config_files.remove(starved)
    gateway.start()
    recovered = time.time() * 1000
    wait_for(lambda: not agent.backlog_files(), timeout=PATIENCE, what="the agent's backlog replayed")
    agent.stop()
    assert_nothing_lost(collector_pipeline, held, after=recovered)


def alert_expr(name: str) -> str:
    """The condition of the alert's first rule, as Prometheus loads it."""
    for group in yaml.safe_load((RULES_DIR / "pipeline.rules.yml").read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                return rule["expr"]
    raise KeyError(name)
