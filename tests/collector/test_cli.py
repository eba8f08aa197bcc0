"""The command line: exit codes, output formats, and `collector run` against a real OTLP/HTTP receiver."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest
from click.testing import CliRunner

from collector import __version__
from collector.cli import main
from collector.render import human
from collector.sources import declared_metrics
from pipeline.otlp_receiver import OtlpReceiver
from pipeline.stack import free_port

COLLECTOR = [sys.executable, "-m", "collector"]


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_version():
    result = invoke("--version")
    assert (result.exit_code, result.output.strip()) == (0, f"collector, version {__version__}")


def test_check_config_accepts_a_good_file_and_rejects_a_bad_one_with_exit_code_2(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("sources:\n  top_processes:\n    enabled: true\n")
    result = invoke("check-config", str(good))
    assert result.exit_code == 0 and "OK" in result.output and "top_processes" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  cpu:\n    per_cpu: 3\n")
    process = subprocess.run([*COLLECTOR, "check-config", str(bad)], capture_output=True, text=True)
    assert process.returncode == 2
    assert process.stderr.strip() == f"error: {bad}: sources.cpu.per_cpu: expected true or false, got int 3"


def test_check_config_refuses_a_header_the_transport_sets_with_exit_code_2(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("exporter:\n  headers: {content-encoding: identity}\n")
    process = subprocess.run([*COLLECTOR, "check-config", str(path)], capture_output=True, text=True)
    assert process.returncode == 2 and len(process.stderr.splitlines()) == 1
    assert process.stderr.startswith(f"error: {path}: exporter.headers: header content-encoding: expected none of")


def test_check_config_shows_the_endpoint_without_its_credentials(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("exporter:\n  endpoint: https://alice:s3cret@gateway.example:4318/v1/metrics\n")
    result = invoke("check-config", str(path))
    assert result.exit_code == 0 and "exporting to https://gateway.example:4318/v1/metrics" in result.output
    assert "s3cret" not in result.output and "alice" not in result.output


BAD = {
    "tabs": ("exporter:\n\tinterval: 1s\n", {},
             "{path}: line 2, column 1: not valid YAML: found character '\\t' that cannot start any token"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00", {}, "{path}: line 1, column 1: expected UTF-8 text, found byte 0x89"),
    "duplicate": ("log_level: info\nlog_level: debug\n", {},
                  "{path}: line 2, column 1: not valid YAML: duplicate key 'log_level'"),
    "endpoint": ("{}\n", {"OTEL_EXPORTER_OTLP_ENDPOINT": "gateway:4318"},
                 "environment variable OTEL_EXPORTER_OTLP_ENDPOINT: exporter.endpoint: expected a URL with scheme "
                 "http or https, a host and optionally a port, such as http://gateway:4318/v1/metrics; "
                 "got 'gateway:4318'"),
    "source variable": ("{}\n", {"HOSTAGENT_SOURCES__CPUU__ENABLED": "true"},
                        "environment variable HOSTAGENT_SOURCES__CPUU__ENABLED: sources.cpuu: unknown source; "
                        "known sources: cpu, load,"),
    "directory": (None, {}, "{path}: cannot read the configuration file: Is a directory"),
    "interval in seconds": ("{}\n", {"OTEL_METRIC_EXPORT_INTERVAL": "10s"},
                            "environment variable OTEL_METRIC_EXPORT_INTERVAL (milliseconds): exporter.interval: "
                            "expected a number of milliseconds such as 60000 or 2500.5, got '10s'"),
    "section of the file": ("exporter: []\n", {"OTEL_EXPORTER_OTLP_TIMEOUT": "5"},
                            "{path}: exporter: expected a mapping, got list []"),
    "group without matchers": ("sources:\n  process_groups:\n    enabled: true\n    groups:\n      web: {}\n", {},
                               "{path}: sources.process_groups.groups.web: expected at least one of executable, "),
    "host root without proc": ("host_root: /etc\n", {},
                               "{path}: host_root: expected the root of a host's filesystem, with a readable "
                               "proc/stat; /etc/proc/stat: No such file or directory"),
    "backlog on a file": ("backlog:\n  directory: /dev/null\n", {},
                          "{path}: backlog.directory: expected a directory (made when missing); /dev/null is not a "
                          "directory"),
}


@pytest.mark.parametrize("case", BAD)
def test_check_config_and_run_give_the_same_one_line_and_exit_2_for_a_file_named_either_way(tmp_path, case):
    content, environ, expected = BAD[case]
    path = tmp_path / "agent.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    outputs = []
    named = {"HOSTAGENT_CONFIG": str(path)}
    for command, variables in ((["check-config", str(path)], {}), (["run", "--config", str(path)], {}),
                               (["check-config"], named), (["run"], named)):
        process = subprocess.run([*COLLECTOR, *command], capture_output=True, text=True, timeout=30,
                                 env={**os.environ, **environ, **variables})
        assert process.returncode == 2, process.stderr
        assert process.stderr.count("\n") == 1 and process.stdout == "", process.stderr
        assert process.stderr.startswith("error: " + expected.format(path=path)), process.stderr
        outputs.append(process.stderr)
    assert len(set(outputs)) == 1, outputs


def test_sources_json_lists_every_declaration():
    listed = json.loads(invoke("sources", "--format", "json").output)
    assert [(m["source"], m["name"]) for m in listed] == [(s, spec.name) for s, spec in declared_metrics()]
    cpu_time = next(m for m in listed if m["name"] == "system.cpu.time")
    assert (cpu_time["prometheus_name"], cpu_time["prometheus_labels"], cpu_time["prometheus_optional_labels"],
            cpu_time["default"]) == ("system_cpu_time_seconds_total", ["cpu_mode"], ["cpu_logical_number"], True)


def test_snapshot_prints_one_collection_for_a_person_and_for_a_program():
    table = invoke("snapshot").output
    for heading in ("== cpu", "== memory", "== filesystem", "== agent"):
        assert heading in table
    assert " %  cpu.mode=idle" in table
    assert re.search(r"^collected at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", table, re.MULTILINE)
    assert re.search(r"^resource: .*service\.name=hostagent, .*host\.name=", table, re.MULTILINE)
    # Sources take milliseconds: shown as such, not as 0.00 s.
    durations = re.findall(r"hostagent\.source\.duration +(\d+\.\d+) ms", table)
    assert durations and any(float(duration) > 0 for duration in durations)
    snapshot = json.loads(invoke("snapshot", "--format", "json").output)
    assert abs(datetime.fromisoformat(snapshot["timestamp"]).timestamp() - time.time()) < 60
    assert snapshot["resource"]["service.name"] == "hostagent" and snapshot["resource"]["host.name"]
    limit = next(p for p in snapshot["points"] if p["metric"] == "system.memory.limit")
    assert limit["unit"] == "By" and limit["value"] > 0


@pytest.mark.parametrize("value, unit, shown", [
    (0.42, "1", "42.0 %"), (1, "1", "100.0 %"), (0, "1", "0.0 %"),
    (2.4e9, "Hz", "2.40 GHz"), (8e8, "Hz", "0.80 GHz"),
    (7200, "s", "2.0 h"), (3600, "s", "1.0 h"), (3599, "s", "3599.00 s"), (1, "s", "1.00 s"),
    (0.0125, "s", "12.50 ms"), (0, "s", "0.00 s"),
    (1000, "By", "1000 B"), (1023, "By", "1023 B"), (1024, "By", "1.0 KiB"), (1536, "By", "1.5 KiB"),
    (8 * 2**30, "By", "8.0 GiB"), (3 * 2**40, "By", "3.0 TiB"), (2**50, "By", "1024.0 TiB"),
    (21.5, "Cel", "21.5 °C"), (1234567, "{process}", "1,234,567"), (2.5, "{thread}", "2.50"),
])
def test_snapshot_shows_values_in_the_units_a_person_reads(value, unit, shown):
    assert human(value, unit) == shown


def test_snapshot_shows_the_resource_run_would_send(monkeypatch):
    monkeypatch.setenv("HOSTAGENT_RESOURCE__HOST_CPU", "true")
    resource = json.loads(invoke("snapshot", "--format", "json").output)["resource"]
    assert {"host.cpu.vendor.id", "host.cpu.model.name"} <= resource.keys()


def agent_environment(endpoint, health_port, **extra):
    return {**os.environ, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": endpoint, "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "HOSTAGENT_HEALTH__LISTEN": f"127.0.0.1:{health_port}", **extra}


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError:  # not listening yet
        return None


def wait_until(condition, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def receiver():
    receiver = OtlpReceiver()
    yield receiver
    receiver.stop()


def test_run_exports_every_default_metric_and_flushes_on_sigterm(receiver):
    health = free_port()
    agent = subprocess.Popen([*COLLECTOR, "run"], env=agent_environment(receiver.url, health),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert receiver.wait_for(2), "no export arrived"
        assert wait_until(lambda: http_status(f"http://127.0.0.1:{health}/healthz") == 200)
        assert http_status(f"http://127.0.0.1:{health}/healthz") == 200
        assert http_status(f"http://127.0.0.1:{health}/readyz") == 200
        before = len(receiver.requests)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=15) == 0
    finally:
        agent.kill()
    assert len(receiver.requests) > before, "no final export on SIGTERM"
    defaults = {spec.name for source, spec in declared_metrics()
                if source != "top_processes" and not spec.condition}
    assert defaults <= receiver.metric_names()
    identity = receiver.resource_attributes()
    assert identity["service.name"] == "hostagent" and identity["host.name"] and identity["service.instance.id"]


def test_an_unreachable_gateway_is_not_fatal_and_turns_readiness_off():
    health = free_port()
    dead_endpoint = f"http://127.0.0.1:{free_port()}/v1/metrics"
    agent = subprocess.Popen([*COLLECTOR, "run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=agent_environment(dead_endpoint, health, HOSTAGENT_HEALTH__READY_INTERVALS="2",
                                                   OTEL_EXPORTER_OTLP_TIMEOUT="1"))
    try:
        assert wait_until(lambda: http_status(f"http://127.0.0.1:{health}/readyz") == 503)
        assert agent.poll() is None, "the agent died"
        assert http_status(f"http://127.0.0.1:{health}/healthz") == 200
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=20) == 0
    finally:
        agent.kill()


def test_a_taken_health_port_is_a_clear_error(receiver):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.run([*COLLECTOR, "run"], env=agent_environment(receiver.url, port),
                                 capture_output=True, text=True, timeout=20)
    assert process.returncode == 1
    assert (
        f"error: [Errno 98] health endpoint 127.0.0.1:{port}: Address already in use; choose another address with "
        "health.listen in the config file or HOSTAGENT_HEALTH__LISTEN=HOST:PORT") in process.stderr.splitlines()
