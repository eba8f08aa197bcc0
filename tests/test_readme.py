"""Every `collector` command shown in the README works as shown."""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.otlp_receiver import OtlpReceiver
from pipeline.services import Agent
from pipeline.testing import exporting, free_port, wait_for

ROOT = Path(__file__).parents[1]
COMMANDS = [line.split("#")[0].strip() for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith(".venv/bin/collector ")]


def second_agent_command() -> tuple[dict[str, str], list[str]]:
    """The README's command for one more agent on the machine of `make run`: its variables and its argv."""
    blocks = (ROOT / "README.md").read_text().split("```sh\n")
    block = next(b.split("```")[0] for b in blocks if "13135" in b.split("```")[0])
    words = shlex.split(block.replace("\\\n", " "), comments=True)
    command = next(i for i, word in enumerate(words) if "=" not in word)
    return dict(word.split("=", 1) for word in words[:command]), words[command:]


def test_the_readme_shows_the_agent_commands():
    assert len(COMMANDS) >= 5 and any(" run" in c for c in COMMANDS)


def test_every_readme_command_exits_0():
    receiver = OtlpReceiver()
    environment = {**os.environ, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.url,
                   "OTEL_METRIC_EXPORT_INTERVAL": "500", "HOSTAGENT_HEALTH__LISTEN": f"127.0.0.1:{free_port()}"}
    try:
        for command in COMMANDS:
            argv = shlex.split(command)
            if argv[1] == "run":
                process = subprocess.Popen(argv, cwd=ROOT, env=environment, stderr=subprocess.PIPE)
                assert receiver.wait_for(1), command
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=15) == 0, command
            else:
                result = subprocess.run(argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
                assert result.returncode == 0, f"{command}: {result.stderr}"
                assert result.stdout.strip(), command
    finally:
        receiver.stop()


def test_the_pipeline_options_the_readme_points_to():
    result = subprocess.run([sys.executable, "-m", "pipeline.run", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "PIPELINE_PROMETHEUS_PORT" in result.stdout


def test_the_readmes_kubectl_commands_make_the_namespace_then_the_agent_and_a_gateway_in_it():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.fail("kubectl is needed (it is on the machine image)") if os.environ.get("CI") else \
            pytest.skip("kubectl is not on PATH")
    directories = re.findall(r"`kubectl apply -k ([\w/.-]+)`", (ROOT / "README.md").read_text())
    assert directories == ["deploy/kubernetes/namespace", "deploy/kubernetes"]

    def render(directory):
        text = subprocess.run([kubectl, "kustomize", directory], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
        return [d for d in yaml.safe_load_all(text) if d]

    [namespace] = render(directories[0])
    assert namespace["kind"] == "Namespace"
    objects = render(directories[1])
    kinds = {(d["kind"], d["metadata"]["name"]) for d in objects}
    assert ("DaemonSet", "hostagent") in kinds
    assert any(kind == "StatefulSet" for kind, _ in kinds)
    # the second step neither creates nor (with kubectl delete -k) deletes the namespace
    assert {d["metadata"].get("namespace") for d in objects} == {namespace["metadata"]["name"]}



def _resource_attributes(variables: dict[str, str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in variables.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",") if pair)


def test_the_readmes_second_agent_on_this_machine_presents_itself_as_another_host():
    """Two agents describing one host double its sums (memory by state, filesystems' used bytes, processes): the
    dashboards add a host's series up, one agent per host. The example's agent reads the same machine as
    `make run`'s, so it takes another host.name, and an instance of its own."""
    variables, _ = second_agent_command()
    attributes = _resource_attributes(variables)
    assert attributes.get("host.name") not in (None, "", socket.gethostname()), attributes
    assert attributes.get("service.instance.id"), attributes


def test_the_readmes_second_agent_writes_series_of_its_own_beside_the_first(gateway_pipeline, tmp_path):
    variables, argv = second_agent_command()
    assert argv == [".venv/bin/collector", "run"]
    assert variables.pop("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") == "http://127.0.0.1:4318/v1/metrics"
    variables.update(OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=gateway_pipeline.gateway.otlp_url,
                     HOSTAGENT_HEALTH__LISTEN=f"127.0.0.1:{free_port()}", OTEL_METRIC_EXPORT_INTERVAL="1000")
    exports = 'hostagent_export_requests_total{hostagent_outcome="success"}'
    with exporting(Agent(free_port(), tmp_path / "first", gateway_pipeline.gateway.otlp_url, interval="1s"),
                   gateway_pipeline):
        second = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **variables}, stderr=subprocess.DEVNULL)
        try:
            for backend in gateway_pipeline.backends:
                wait_for(lambda: len(backend.query(exports)) == 2, what=f"both agents' series in {backend.name}")
            time.sleep(5)  # cycles of both agents
            for backend in gateway_pipeline.backends:
                instances = {series["metric"]["instance"]: series for series in backend.query(exports)}
                assert "second-agent" in instances and len(instances) == 2, instances
                # another host on the dashboards, not a second agent adding to the first one's host
                hosts = {s["metric"]["host_name"] for s in instances.values()}
                assert hosts == {socket.gethostname(), _resource_attributes(variables)["host.name"]}, hosts
                # one agent's counter per series: two agents writing one series would reset it at every turn
                assert all(float(s["value"][1]) == 0 for s in backend.query(f"resets({exports}[1m])")), backend.name
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=15) == 0
