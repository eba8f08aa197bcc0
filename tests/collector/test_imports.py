"""The running agent loads only what it uses: each module below cost it RSS (docs/benchmarks.md, issue #17)."""

import json
import os
import subprocess
import sys

from pipeline.otlp_receiver import OtlpReceiver

# protobuf classes (3.7 MiB), OpenSSL's digests (0.6 MiB), the D-Bus client of an opt-in source (0.35 MiB), the
# idna codec (0.4 MiB); with a plain-HTTP gateway, ssl (4 MiB with OpenSSL) and the http package that imports it
NOT_LOADED = ("google.protobuf", "_hashlib", "jeepney", "encodings.idna", "ssl", "_ssl", "http.client", "http.server",
              "email.parser")
ONE_CYCLE = """
import json, sys
import collector.cli
from collector.agent import Agent
from collector.config import load
agent = Agent(load(None))
outcomes = []
agent.reader.deliver = lambda body, points: outcomes.append(agent.sender.transport.send(body)[0].value)
agent.reader.cycle()
print(json.dumps({"outcomes": outcomes, "loaded": [name for name in sys.argv[1:] if name in sys.modules]}))
"""


def test_an_agent_that_collected_and_sent_has_loaded_none_of_what_it_does_not_use():
    receiver = OtlpReceiver()
    try:
        environment = {**os.environ, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.url,
                       "HOSTAGENT_HEALTH__LISTEN": "127.0.0.1:0"}
        result = subprocess.run([sys.executable, "-c", ONE_CYCLE, *NOT_LOADED], env=environment,
                                capture_output=True, text=True, timeout=60, check=True)
    finally:
        receiver.stop()
    assert json.loads(result.stdout) == {"outcomes": ["sent"], "loaded": []}
    assert receiver.metric_names() >= {"system.cpu.time", "system.memory.usage"}
