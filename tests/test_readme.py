"""Every `collector` command shown in the README works as shown."""

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.otlp_receiver import OtlpReceiver
from pipeline.stack import free_port

ROOT = Path(__file__).parents[1]
COMMANDS = [line.split("#")[0].strip() for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith(".venv/bin/collector ")]


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


def test_kubectl_apply_k_deploy_kubernetes_renders_the_agent_and_a_gateway():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.fail("kubectl is needed (it is on the machine image)") if os.environ.get("CI") else \
            pytest.skip("kubectl is not on PATH")
    rendered = subprocess.run([kubectl, "kustomize", "deploy/kubernetes"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(rendered) if d}
    assert ("DaemonSet", "hostagent") in kinds
    assert any(kind == "StatefulSet" for kind, _ in kinds)
