"""What a Prometheus the project does not run must be started with: docs/deploy.md's Kubernetes requirements name
every setting the project's own Prometheus (make run, compose) runs with for the gateways, and the window they give
keeps what the DaemonSet's agents replay."""

import inspect
import re

import yaml

from collector.units import Duration
from pipeline.services import PROMETHEUS_GOGC, Prometheus
from tests.deploy.manifests import DEPLOY, REPO, config_map_data
from tests.deploy.test_compose import SERVICES

DEPLOY_DOC = REPO / "docs" / "deploy.md"
REMOTE_WRITE_RECEIVER = "--web.enable-remote-write-receiver"
WINDOW = re.compile(r"out_of_order_time_window: (\S+)")
GOGC = re.compile(r"^runtime:\n  gogc: (\d+)$", re.MULTILINE)


def kubernetes_requirements() -> str:
    """docs/deploy.md from "## Kubernetes" to its first subsection."""
    text = DEPLOY_DOC.read_text()
    start = text.index("\n## Kubernetes\n")
    return text[start:text.index("\n### ", start)]


def compose_window() -> Duration:
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    return Duration.parse(config["storage"]["tsdb"]["out_of_order_time_window"])


def make_run_window() -> Duration:
    return Duration.parse(inspect.signature(Prometheus).parameters["out_of_order_window"].default)


def test_the_projects_own_prometheus_receives_remote_write_and_keeps_late_samples():
    assert REMOTE_WRITE_RECEIVER in SERVICES["prometheus"]["command"]
    assert compose_window() == make_run_window() > 0


def test_kubernetes_requirements_name_the_remote_write_receiver_and_the_out_of_order_window():
    requirements = kubernetes_requirements()
    assert REMOTE_WRITE_RECEIVER in requirements
    assert "storage.tsdb.out_of_order_time_window" in requirements and WINDOW.search(requirements), \
        "without the window Prometheus refuses replayed samples and the gateway drops them"


def test_the_documented_window_is_what_compose_runs_and_keeps_the_agents_backlog(rendered):
    [documented] = WINDOW.findall(kubernetes_requirements())
    assert Duration.parse(documented) == compose_window()
    for overlay in ("both", "prometheus", "vmagent"):
        agent = yaml.safe_load(config_map_data(rendered[overlay], "hostagent-agent-config")["agent.yaml"])
        assert Duration.parse(documented) > Duration.parse(agent["backlog"]["max_age"]), overlay


def test_kubernetes_requirements_name_the_evaluator_label_make_run_and_compose_set():
    """Alertmanager's inhibitions compare `evaluator`: an evaluator without it lets one backend's outage silence
    the other backend's host pages."""
    requirements = kubernetes_requirements()
    compose_prometheus = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    assert compose_prometheus["global"]["external_labels"] == {"evaluator": "prometheus"}
    assert "-external.label=evaluator=vmalert" in SERVICES["vmalert"]["command"]
    assert Prometheus(0, DEPLOY).config()["global"]["external_labels"] == {"evaluator": "prometheus"}
    assert "external_labels: {evaluator: prometheus}" in requirements
    assert "-external.label=evaluator=vmalert" in requirements


def test_kubernetes_recommendations_give_prometheus_the_gogc_the_sizing_was_measured_with():
    assert [int(value) for value in GOGC.findall(kubernetes_requirements())] == [PROMETHEUS_GOGC]
