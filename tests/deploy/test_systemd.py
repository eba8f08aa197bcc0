"""deploy/systemd: the unit verifies with systemd-analyze, is hardened, and its environment file is valid."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from collector.cli import EXIT_CONFIG
from pipeline.services import agent_executable
from tests.deploy.manifests import DEPLOY, require_tool

UNIT = DEPLOY / "systemd" / "hostagent.service"
ENV_FILE = DEPLOY / "systemd" / "hostagent.env"
# systemd-analyze security's exposure, times ten (1.7 is "OK"; 10 would be "UNSAFE").
EXPOSURE_THRESHOLD = 20
HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "read-only", "PrivateTmp": "yes",
    "DynamicUser": "yes", "CapabilityBoundingSet": "", "StateDirectory": "hostagent",
    "RestartPreventExitStatus": str(EXIT_CONFIG),
}


def unit_settings() -> dict[str, list[str]]:
    """Every Key=Value of the unit; a key may repeat (SystemCallFilter=, Environment=)."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def offline_copy(tmp_path: Path, unit_text: str) -> Path:
    """The unit with ExecStart pointing at an executable that exists here (verify checks it)."""
    executable = tmp_path / "collector"
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    copy = tmp_path / UNIT.name
    copy.write_text(unit_text.replace("/opt/hostagent/bin/collector", str(executable)))
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess:
    tool = require_tool("systemd-analyze", "Debian package systemd")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def test_unit_verifies_without_warnings(tmp_path):
    result = analyze("verify", "--man=no", str(offline_copy(tmp_path, UNIT.read_text())))
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_verify_reports_a_bad_setting(tmp_path):
    broken = offline_copy(tmp_path, UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=strictly"))
    assert "strictly" in analyze("verify", "--man=no", str(broken)).stderr


def test_unit_exposure_is_low(tmp_path):
    result = analyze("security", "--offline=yes", f"--threshold={EXPOSURE_THRESHOLD}", "--no-pager",
                     str(offline_copy(tmp_path, UNIT.read_text())))
    assert result.returncode == 0, result.stdout[-2000:]


@pytest.mark.parametrize(("key", "value"), HARDENING.items())
def test_unit_hardening(key, value):
    assert value in unit_settings()[key]


def test_backlog_lives_in_the_state_directory():
    environment = unit_settings()["Environment"]
    assert "HOSTAGENT_BACKLOG__DIRECTORY=%S/hostagent/backlog" in environment


def test_environment_file_and_config_directory_are_the_documented_ones():
    settings = unit_settings()
    assert settings["EnvironmentFile"] == ["-/etc/hostagent/hostagent.env"]
    assert "--config /etc/hostagent/config.yaml" in settings["ExecStart"][0]


def environment_file(commented_examples: bool) -> dict[str, str]:
    """The variables the example sets; with commented_examples also those it shows commented out."""
    pattern = re.compile(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$")
    variables = {}
    for line in ENV_FILE.read_text().splitlines():
        if (match := pattern.match(line)) and (commented_examples or not match.group(1)):
            variables[match.group(2)] = match.group(3)
    return variables


@pytest.mark.parametrize("commented_examples", [False, True])
def test_environment_file_is_accepted_by_the_agent(commented_examples):
    variables = environment_file(commented_examples)
    assert "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" in variables
    result = subprocess.run([str(agent_executable()), "check-config"], capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ["PATH"], **variables})
    assert result.returncode == 0, result.stderr
    assert variables["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] in result.stdout
