"""Every deployment of the agent gives it the time its shutdown may take (collector.exporter.shutdown_seconds of the
exporter timeout it runs with, and the final collection) before it is killed: a kill mid-flush loses what the final
export and the backlog's flush were sending."""

import re

import pytest
import yaml

from collector.config import Config
from collector.exporter import shutdown_seconds
from tests.deploy.manifests import DEPLOY, KUBERNETES

TIMEOUT_SETTINGS = ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "HOSTAGENT_EXPORTER__TIMEOUT")
FINAL_COLLECTION = 2  # seconds left for the last collection besides the flush


def systemd():
    unit = (DEPLOY / "systemd" / "hostagent.service").read_text()
    environment = (DEPLOY / "systemd" / "hostagent.env").read_text()
    return int(re.search(r"^TimeoutStopSec=(\d+)s$", unit, re.M)[1]), unit + environment


def daemonset():
    text = (KUBERNETES / "base" / "agent" / "daemonset.yaml").read_text()
    return yaml.safe_load(text)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], text


def compose():
    text = (DEPLOY / "compose" / "compose.yaml").read_text()
    return int(yaml.safe_load(text)["services"]["agent"]["stop_grace_period"].removesuffix("s")), text


@pytest.mark.parametrize("deployment", [systemd, daemonset, compose])
def test_the_agent_has_time_to_flush_before_it_is_killed(deployment):
    grace, text = deployment()
    assert not [name for name in TIMEOUT_SETTINGS if name in text], "a timeout of its own: compare with that one"
    needed = shutdown_seconds(Config().exporter.timeout) + FINAL_COLLECTION
    assert grace >= needed, f"{deployment.__name__}: {grace} s to stop, the agent may take {needed:.0f} s"
