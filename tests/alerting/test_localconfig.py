"""The test config derived from the shipped one: only endpoints, secrets and timers differ."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from .am_localconfig import load, local_config, secret_files

SINK, SMTP = "http://127.0.0.1:1", "127.0.0.1:2"


def test_every_endpoint_points_at_a_local_sink():
    config = local_config(SINK, SMTP)
    assert not secret_files(config)
    assert config["global"]["smtp_smarthost"] == SMTP
    urls = [entry.get("url") or entry.get("api_url") or entry.get("webhook_url")
            for receiver in config["receivers"] for kind, entries in receiver.items() if kind != "name"
            for entry in entries if kind != "email_configs"]
    assert urls and all(url.startswith(f"{SINK}/") for url in urls), urls


def test_only_endpoints_and_timers_change():
    shipped, local = load(), local_config(SINK, SMTP)
    assert local["inhibit_rules"] == shipped["inhibit_rules"]
    assert [r["name"] for r in local["receivers"]] == [r["name"] for r in shipped["receivers"]]
    assert [(r["receiver"], r["matchers"]) for r in local["route"]["routes"]] == \
        [(r["receiver"], r["matchers"]) for r in shipped["route"]["routes"]]


def test_an_integration_without_a_local_sink_is_refused():
    shipped = load()
    shipped["receivers"][0]["pagerduty_configs"] = [{"routing_key_file": "/etc/alertmanager/secrets/pd"}]
    with pytest.raises(ValueError, match="pagerduty_configs"):
        local_config(SINK, SMTP, shipped)


def test_local_config_passes_check_config(amtool, tmp_path):
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(local_config(SINK, SMTP)))
    done = subprocess.run([amtool, "check-config", path], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
