"""The vmagent gateway's relabelling keeps exactly the contract's labels (and `le`, `quantile`) on OTLP series and
leaves scraped series alone; its config files use only the variables pipeline.services sets (live checks:
test_gateway_vmagent, test_self_monitoring)."""
import json
import re

import pytest
import yaml

from collector import render
from collector.naming import OPTIONAL_RESOURCE_LABELS, RESOURCE_LABELS
from collector.sources import declared_metrics
from pipeline.services import SCRAPE_INTERVAL, VMAGENT_CONFIG_DIR, Vmagent, flags_from_file

RELABEL = yaml.safe_load((VMAGENT_CONFIG_DIR / "relabel.yml").read_text())
# An OTLP series carries its resource attributes as labels; a scraped one never has service_name.
OTLP_SERIES = '{service_name!=""}'
KEEP = re.compile(next(rule["regex"] for rule in RELABEL if rule.get("action") == "labelkeep"))
DECLARED_LABELS = sorted({label for metric in json.loads(render.sources_json(declared_metrics()))
                          for label in metric["prometheus_labels"] + metric["prometheus_optional_labels"]})
SDK_NOISE = ["service_name", "service_instance_id", "service_version", "telemetry_sdk_name",
             "telemetry_sdk_language", "telemetry_sdk_version", "os_description", "host_arch",
             "otel_scope_name", "otel_scope_version", "k8s_pod_name", "deployment_environment"]
# A textfile histogram's x_bucket{le} and a summary's x{quantile} (live: tests/gateway/test_textfile_e2e.py).
BUCKET_LABELS = ["le", "quantile"]


@pytest.mark.parametrize("label", ["__name__", *RESOURCE_LABELS, *OPTIONAL_RESOURCE_LABELS, *DECLARED_LABELS,
                                   *BUCKET_LABELS])
def test_contract_labels_are_kept(label):
    assert KEEP.fullmatch(label)


@pytest.mark.parametrize("label", SDK_NOISE)
def test_other_resource_labels_are_dropped(label):
    assert not KEEP.fullmatch(label)


def test_job_and_instance_come_from_the_service_attributes():
    mapped = {rule["target_label"]: rule["source_labels"] for rule in RELABEL if "target_label" in rule}
    assert mapped == {"job": ["service_name"], "instance": ["service_instance_id"]}


def test_flags_fan_out_to_both_backends_with_on_disk_queues():
    flags = flags_from_file(VMAGENT_CONFIG_DIR / "vmagent.flags")
    assert [flag for flag in flags if flag.startswith("-remoteWrite.url=")] == [
        "-remoteWrite.url=%{PROMETHEUS_WRITE_URL}", "-remoteWrite.url=%{VICTORIAMETRICS_WRITE_URL}"]
    assert "-remoteWrite.tmpDataPath=%{VMAGENT_QUEUE_DIR}" in flags
    assert "-opentelemetry.usePrometheusNaming" in flags
    assert not any(flag.startswith("-remoteWrite.disableOnDiskQueue") for flag in flags)


def test_every_relabel_rule_touches_only_otlp_series():
    assert [rule.get("if") for rule in RELABEL] == [OTLP_SERIES] * len(RELABEL)


def test_the_gateway_scrapes_every_pipeline_component():
    scrape = (VMAGENT_CONFIG_DIR / "scrape.yml").read_text()
    config = yaml.safe_load(re.sub(r"%\{\w+\}", "", scrape))
    assert [job["job_name"] for job in config["scrape_configs"]] == list(Vmagent.SCRAPED_JOBS)
    # The backends scrape at the same interval when the gateway does not scrape (make run with otelcol).
    assert config["global"]["scrape_interval"] == SCRAPE_INTERVAL
    assert "-promscrape.config=%{VMAGENT_SCRAPE_CONFIG}" in flags_from_file(VMAGENT_CONFIG_DIR / "vmagent.flags")


@pytest.mark.parametrize("text", [
    "\n".join(flags_from_file(VMAGENT_CONFIG_DIR / "vmagent.flags")),
    # vmagent refuses to start on a placeholder whose variable is unset, even one in a comment of these files.
    (VMAGENT_CONFIG_DIR / "relabel.yml").read_text(),
    (VMAGENT_CONFIG_DIR / "scrape.yml").read_text(),
], ids=["vmagent.flags", "relabel.yml", "scrape.yml"])
def test_placeholders_are_the_variables_the_pipeline_sets(text):
    placeholders = set(re.findall(r"%\{(\w+)\}", text))
    assert placeholders <= set(Vmagent(0, VMAGENT_CONFIG_DIR, "http://p", "http://v").environment())
