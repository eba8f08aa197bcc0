"""The pipeline's own components reach both backends beside the agent's OTLP data, through either gateway: the
vmagent gateway scrapes them (otel-config/vmagent/scrape.yml) and its relabelling rewrites only the OTLP series;
with the collector gateway (`make run`'s default) each backend scrapes them and the collector itself."""
import json
import re
import time
from collections.abc import Iterator

import pytest

from collector import render
from collector.naming import OPTIONAL_RESOURCE_LABELS, RESOURCE_LABELS
from collector.sources import declared_metrics
from pipeline.services import HOST, REPO_ROOT, Agent, Alertmanager, Prometheus, VictoriaMetrics, Vmalert
from pipeline.testing import (
    AGENT_INTERVAL,
    GATEWAYS,
    Pipeline,
    exporting,
    free_port,
    gateway_pipeline_in,
    running,
    wait_for,
)
from tests.support.otlp_push import push_gauge_at

# One metric per component that rules/pipeline.rules.yml or the pipeline-health dashboard reads (or, for vmalert
# and Alertmanager, that every build exposes), with labels the OTLP relabelling would have dropped.
BACKEND_METRICS = {
    "prometheus": ("prometheus_tsdb_head_samples_appended_total", {"type"}),
    "victoriametrics": ("vm_rows_inserted_total", {"type"}),
    "vmalert": ("vmalert_config_last_reload_successful", set()),
    "alertmanager": ("alertmanager_config_last_reload_successful", set()),
}
GATEWAY_METRICS = {
    "vmagent": ("vmagent_remotewrite_requests_total", {"url", "status_code"}),
    "otelcol": ("otelcol_exporter_sent_metric_points", {"exporter"}),
}
COMPONENT_METRICS = {**GATEWAY_METRICS, **BACKEND_METRICS}
PIPELINE_RULES = (REPO_ROOT / "rules" / "pipeline.rules.yml").read_text()
# What the gateway alerts of rules/pipeline.rules.yml read, and the label they tell the backends apart by:
# vmagent per remote-write URL, the collector per queue exporter.
ALERTED = {"vmagent": ("url", sorted(set(re.findall(r"vmagent_\w+", PIPELINE_RULES)))),
           "otelcol": ("exporter", sorted(set(re.findall(r"otelcol_\w+", PIPELINE_RULES))))}
SCRAPED_JOBS = "|".join(COMPONENT_METRICS)
SCRAPED = f'{{job=~"{SCRAPED_JOBS}"}}'
NOT_SCRAPED = f'{{__name__=~".+", job!~"{SCRAPED_JOBS}"}}'
# Per metric the agent declares: the label names it may carry besides the identity labels.
METRIC_LABELS = {metric["prometheus_name"]: {*metric["prometheus_labels"], *metric["prometheus_optional_labels"]}
                 for metric in json.loads(render.sources_json(declared_metrics()))}


@pytest.fixture(scope="module", params=GATEWAYS)
def monitored(request, tmp_path_factory) -> Iterator[tuple[Pipeline, dict[str, str]]]:
    """The fed pipeline plus vmalert and Alertmanager, all scraped as `make run` does; yields it and job -> address
    once every component's metric is in both backends."""
    base = tmp_path_factory.mktemp(f"self-monitoring-{request.param}")
    vmalert_port = free_port()
    with running(Alertmanager(free_port(), base / "alertmanager")) as alertmanager, \
            gateway_pipeline_in(base, request.param, {"alertmanager": alertmanager.address,
                                                      "vmalert": f"{HOST}:{vmalert_port}"}) as pipeline, \
            running(Vmalert(vmalert_port, base / "vmalert", pipeline.victoriametrics.url,
                            notifier_url=alertmanager.url)), \
            exporting(Agent(free_port(), base / "agent", pipeline.gateway.otlp_url, interval=AGENT_INTERVAL), pipeline):
        scraper = pipeline.gateway if request.param == "vmagent" else pipeline.prometheus
        addresses = scraper.scrape_targets
        if request.param == "otelcol":
            # The collector creates its failure counters with the first failure: one request Prometheus refuses.
            push_gauge_at(pipeline.gateway.otlp_url, "system.cpu.utilization", time.time() - 3 * 3600, 0.5)
        for job, (metric, _) in COMPONENT_METRICS.items():
            if job not in addresses:
                continue
            expr = f'{metric}{{job="{job}"}}'
            for backend in pipeline.backends:
                # Scrapes are spread over scrape.yml's 10 s interval, the first one included.
                wait_for(lambda: backend.query(expr), timeout=45, what=f"{expr} in {backend.name}")
        yield pipeline, addresses


def test_component_metrics_keep_their_scrape_labels_in_both_backends(monitored):
    pipeline, addresses = monitored
    assert set(addresses) == {pipeline.gateway.name, *BACKEND_METRICS}
    for job, backend in ((job, backend) for job in addresses for backend in pipeline.backends):
        metric, own_labels = COMPONENT_METRICS[job]
        samples = backend.query(f'{metric}{{job="{job}"}}')
        assert samples, backend.name
        for sample in samples:
            labels = sample["metric"]
            assert labels["instance"] == addresses[job], f"{backend.name}: {labels}"
            assert own_labels <= set(labels), f"{backend.name}: {metric} lost {own_labels - set(labels)}"


def expected_senders(job: str, metric: str, addresses: dict[str, str]) -> set[str]:
    """vmagent: one remote-write URL per backend. The collector: per backend its queue, and for Prometheus its
    remote-write exporter (only a queue has a queue size; VictoriaMetrics' queue sends OTLP to it directly);
    failures only where the fixture made one, towards Prometheus."""
    if job == "vmagent":
        return {f"{index}:secret-url" for index in (1, 2)}
    queues = {"otlphttp/prometheus"} if "failed" in metric else {"otlphttp/prometheus", "otlphttp/victoriametrics"}
    return queues if "_queue_" in metric else queues | {"prometheusremotewrite/prometheus"}


def test_what_the_gateway_alerts_read_is_there_per_backend(monitored):
    pipeline, addresses = monitored
    job = pipeline.gateway.name
    per, metrics = ALERTED[job]
    assert metrics
    for metric, backend in ((metric, backend) for metric in metrics for backend in pipeline.backends):
        expr = f'count by (job, instance, {per}) ({metric}{{job="{job}"}})'
        found = wait_for(lambda: backend.query(expr), timeout=30, what=f"{metric} in {backend.name}")
        assert {sample["metric"]["instance"] for sample in found} == {addresses[job]}
        assert {sample["metric"][per] for sample in found} == expected_senders(job, metric, addresses), backend.name


def test_scraped_series_identical_in_both_backends(monitored):
    pipeline, _ = monitored

    # With the collector each backend scrapes for itself: VictoriaMetrics' scraper adds series of its own
    # (scrape_response_size_bytes, scrape_timeout_seconds), and histograms whose buckets appear as values arrive
    # (VictoriaMetrics' vmrange) differ between two scrapes taken at different moments. There, each backend must
    # hold the same metrics of the same components; through vmagent (one scrape, both backends), the same series.
    one_scrape = pipeline.gateway.name == "vmagent"
    selector = SCRAPED if one_scrape else SCRAPED.replace("{", '{__name__!~"scrape_.+", ')

    def identity(labels: dict) -> frozenset:
        return frozenset(labels.items() if one_scrape else
                         ((key, labels[key]) for key in ("__name__", "job", "instance")))

    def same() -> bool:
        # VictoriaMetrics does not store NaN samples (a summary's quantiles before any observation), Prometheus does.
        prometheus, victoriametrics = ({identity(sample["metric"]) for sample in backend.query(selector)
                                        if sample["value"][1] != "NaN"} for backend in pipeline.backends)
        return prometheus == victoriametrics
    # New series appear while the components warm up: both backends must agree once a scrape has reached both.
    wait_for(same, timeout=45, what="the same scraped series in both backends")


def test_otlp_series_carry_exactly_the_identity_labels(monitored):
    pipeline, _ = monitored
    for backend in pipeline.backends:
        otlp = backend.series(NOT_SCRAPED)
        assert otlp, backend.name
        for labels in otlp:
            allowed = {*RESOURCE_LABELS, *OPTIONAL_RESOURCE_LABELS, *METRIC_LABELS[labels.pop("__name__")]}
            assert labels["job"] == "hostagent", f"{backend.name}: {labels}"
            assert set(RESOURCE_LABELS) <= set(labels) <= allowed, f"{backend.name}: {labels}"


def test_backends_can_scrape_the_components_themselves(tmp_path):
    ports = {"prometheus": free_port(), "victoriametrics": free_port()}
    targets = {job: f"{HOST}:{port}" for job, port in ports.items()}
    with running(Prometheus(ports["prometheus"], tmp_path / "prometheus", scrape_targets=targets)) as prometheus, \
            running(VictoriaMetrics(ports["victoriametrics"], tmp_path / "vm", scrape_targets=targets)) as vm:
        for backend in (prometheus, vm):
            for job, address in targets.items():
                metric, own_labels = BACKEND_METRICS[job]
                [sample, *_] = wait_for(lambda: backend.query(f'{metric}{{job="{job}"}}'), timeout=45,
                                        what=f"{metric} of {job} in {backend.name}")
                assert sample["metric"]["instance"] == address
                assert own_labels <= set(sample["metric"])
