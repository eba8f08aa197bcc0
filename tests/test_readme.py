"""Every `collector` command shown in the README works as shown."""

import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

from tests.support.otlp_receiver import OtlpReceiver, free_port

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
