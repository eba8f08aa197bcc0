"""The benchmark's code paths with minimal sizes: every part runs and every figure is computed.

What the figures are is the benchmark's business (`make bench`, docs/benchmarks.md), never asserted here."""

import dataclasses
import gzip
import math
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from bench.__main__ import parse
from bench.capacity import Step, steady_bodies, target_hosts
from bench.cost import NodeExporter
from bench.latency import extra_processes, measure, percentile
from bench.loadgen import Fleet, agent_request, points
from bench.otlp import required_names
from bench.phases import PHASES
from bench.report import machine, render
from bench.suite import PARTS, QUICK, gateway_steps, run
from pipeline.stack import GATEWAYS
from pipeline.testing import free_port, require_binary, running

ROOT = Path(__file__).parents[2]


def test_make_bench_runs_on_the_interpreter_the_agent_is_deployed_on():
    # --no-print-directory: under `make test` this make is a sub-make, which would announce its directory
    command = ["make", "--no-print-directory", "-n", "-B", "bench", "DEPLOY_PYTHON=/opt/deployed/python3"]
    dry_run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    assert "/opt/deployed/python3 -m venv .cache/bench-venv" in dry_run
    assert ".cache/bench-venv/bin/python -m pip install -q -e '.[test]'" in dry_run
    assert dry_run[-1] == ".cache/bench-venv/bin/python -m bench"
    assert f"Python {sys.version.split()[0]} ({os.path.realpath(sys.executable)})" in machine()


def test_percentile_is_the_nearest_rank():
    assert percentile([4, 1, 3, 2], 0.5) == 2
    assert percentile(list(range(1, 101)), 0.99) == 99
    assert percentile([7], 0.99) == 7
    assert math.isnan(percentile([], 0.5))


def test_command_line_overrides_the_preset():
    settings, output = parse(["--quick", "--hosts", "3,6", "--only", "throughput", "--output", "x.md"])
    assert (settings.hosts, settings.parts, settings.interval, str(output)) == ((3, 6), ("throughput",),
                                                                                 QUICK.interval, "x.md")
    assert parse(["--only", "latency", "--extra-processes", "2000"])[0].extra_processes == 2000
    assert parse([])[0].extra_processes == 0


def test_latency_with_extra_processes_counts_them_and_leaves_none_behind():
    with extra_processes(25):
        assert len(psutil.Process().children()) == 25
    assert psutil.Process().children() == []
    found = measure(2, extra=25)
    assert found.processes >= 25 + 1 and found.cycles == 2
    assert 0 < found.processes_cpu <= found.cpu_p99 and found.cpu_p50 <= found.cpu_p99
    assert psutil.Process().children() == []


def test_node_exporter_is_scraped_on_one_kept_alive_connection_as_prometheus_scrapes(tmp_path):
    require_binary("node_exporter")
    with running(NodeExporter(free_port(), tmp_path)) as exporter:
        first = exporter.scrape()
        connection = exporter.connection.sock
        second = exporter.scrape()
        assert exporter.connection.sock is connection
    assert b"# TYPE node_cpu_seconds_total counter" in first and b"node_cpu_seconds_total{" in second


def test_minimal_run_computes_every_figure():
    for name in ("node_exporter", "otelcol", "vmagent", "prometheus", "victoria-metrics"):
        require_binary(name)
    settings = dataclasses.replace(QUICK, cost_interval=0.3, cost_cycles=2, latency_cycles=3, workload_cycles=1,
                                   hosts=(2,), interval=1.0, cycles=1,
                                   parts=tuple(part for part in PARTS if part != "gateway"))
    results = run(settings, progress=lambda line: None)

    ours, stock, hostmetrics, node_exporter = results.costs
    assert [ours.name, hostmetrics.name, node_exporter.name] == ["hostagent", "hostmetrics receiver", "node_exporter"]
    for cost in results.costs:
        assert cost.cycles >= settings.cost_cycles and cost.rss > 0 and cost.points > 0
        assert math.isfinite(cost.cpu_per_cycle)
    assert ours.names >= required_names()
    assert len(stock.names & required_names()) < len(required_names())
    assert node_exporter.names is None
    assert {"system.cpu.time", "system.memory.usage", "system.cpu.load_average.1m", "system.filesystem.usage",
            "system.disk.io", "system.network.io", "system.paging.faults",
            "system.processes.count"} <= hostmetrics.names
    assert "system.network.connections" not in hostmetrics.names  # off, as in the agent (bench/hostmetrics.yaml)

    assert results.latency.cycles == 3 and results.latency.p50 <= results.latency.p99
    assert len(results.latency.slowest_sources) == 3

    assert list(results.phases) == list(PHASES) and all(math.isfinite(v) for v in results.phases.values())

    assert [w.source for w in results.workloads] == ["process_groups", "cgroup", "textfile", "systemd"]
    assert all(w.points > 0 and math.isfinite(w.cpu_per_collection) for w in results.workloads)

    [step] = results.steps
    assert step.points > 0 and step.failed_requests == 0
    assert step.samples == {"prometheus": step.points, "victoria-metrics": step.points}  # counted, not assumed
    assert step.series["prometheus"] == step.series["victoria-metrics"] > 0
    assert set(step.cores) == {"simulator", GATEWAYS[0], "prometheus", "victoria-metrics"}  # the default gateway

    text = render(results)
    for row in ("| hostagent |", "| stock SystemMetricsInstrumentor |", "| hostmetrics receiver |", "| node_exporter |",
                "| agent CPU per cycle ≤ 1.0× hostmetrics receiver's per cycle |", "| 2 |",
                "| collection p99 < 50 ms |", "| whole cycle |", "| systemd |"):
        assert row in text


def test_command_line_selects_the_gateway_part():
    settings, _ = parse(["--only", "gateway", "--gateways", "vmagent", "--gateway-hosts", "10,20",
                         "--gateway-cycles", "9"])
    assert (settings.parts, settings.gateways, settings.gateway_hosts, settings.gateway_cycles) == (
        ("gateway",), ("vmagent",), (10, 20), 9)
    assert gateway_steps(settings) == [10, 20]  # the steps given, and no more
    with pytest.raises(SystemExit):
        parse(["--gateway-cycles", "0"])  # a step needs a steady cycle to measure
    assert parse([])[0].gateway_cycles == 3


def test_the_default_gateway_steps_include_the_one_at_the_target_rate():
    assert target_hosts(10.0, points_per_request=187) == 2674  # 2,674 × 187 ÷ 10 s = 50,003.8 points/s
    assert target_hosts(10.0, points_per_request=200) == 2500
    for per_request in range(100, 400):  # the fewest hosts that make 50,000 points/s
        hosts = target_hosts(10.0, per_request)
        assert hosts * per_request >= 500_000 > (hosts - 1) * per_request
    steps = gateway_steps(parse([])[0])  # the target's step sized from this host's own request
    assert steps == sorted(steps) and len(set(steps) - {1000, 2000, 3500, 5000}) == 1
    assert gateway_steps(QUICK) == [20]


def test_the_load_generator_varies_identity_time_and_values_of_the_agents_request():
    request = agent_request()
    fleet = Fleet.of("bench-gw-k3", 3, request)
    assert fleet.points_per_request == len(points(request))
    bodies = fleet.bodies(2, 1_000_000_000_000_000_000, 10.0)
    decoded = [[ExportMetricsServiceRequest.FromString(gzip.decompress(body)) for body in cycle] for cycle in bodies]
    hosts = [{a.key: a.value.string_value for a in r.resource_metrics[0].resource.attributes} for r in decoded[0]]
    assert [h["host.name"] for h in hosts] == ["bench-gw-k3-h000000", "bench-gw-k3-h000001", "bench-gw-k3-h000002"]
    assert len({h["host.id"] for h in hosts}) == len({h["service.instance.id"] for h in hosts}) == 3
    assert {h["service.name"] for h in hosts} == {"bench-gw-k3"}
    first, second = points(decoded[0][1]), points(decoded[1][1])
    assert {p.time_unix_nano for p in first} == {1_000_000_000_000_000_000}
    assert {p.time_unix_nano for p in second} == {1_000_000_010_000_000_000}
    # Values advance by (1 + host % 7) per cycle; the points' attributes are the agent's.
    assert [getattr(b, b.WhichOneof("value")) - getattr(a, a.WhichOneof("value")) for a, b in zip(first, second)] \
        == pytest.approx([2] * len(first))
    assert [list(p.attributes) for p in first] == [list(p.attributes) for p in points(request)]
    # A step's steady cycles are built after its warm-up cycle: their values continue where it left off.
    [[_, later, _]] = steady_bodies(fleet, 1, 1_000_000_020.0, 10.0)
    later = points(ExportMetricsServiceRequest.FromString(gzip.decompress(later)))
    assert [getattr(p, p.WhichOneof("value")) for p in later] == [getattr(p, p.WhichOneof("value")) for p in second]
    assert {p.time_unix_nano for p in later} == {1_000_000_020_000_000_000}


def test_a_step_holds_only_once_its_warm_up_reached_both_backends():
    step = Step("otelcol", 2, 10.0, 1, points_per_request=5, drain=1.0, series_created_after=2.0,
                samples={"prometheus": 20, "victoria-metrics": 20})
    assert step.held and step.verdict == "holds"
    step.series_created_after = float("inf")
    assert not step.held and step.verdict == "warm-up not in both backends within 60 s"
    step.series_created_after = 2.0
    step.warmup.failures = 1
    assert not step.held and step.verdict == "requests failed"  # in the warm-up: counted as the steady ones


def test_minimal_gateway_run_counts_every_sample_in_both_backends():
    for name in ("otelcol", "vmagent", "prometheus", "victoria-metrics"):
        require_binary(name)
    settings = dataclasses.replace(QUICK, parts=("gateway",), gateway_hosts=(3,), interval=1.0)
    results = run(settings, progress=lambda line: None)
    assert list(results.gateway_steps) == ["otelcol", "vmagent"]
    for gateway, [step] in results.gateway_steps.items():
        assert step.warmup.requests == step.sent.requests == 3 and step.failures == 0
        assert step.warmup.last_answer + step.series_created_after <= step.steady_since  # the series were there
        assert step.samples == {"prometheus": step.points, "victoria-metrics": step.points}  # counted, not assumed
        assert step.series["prometheus"] == step.series["victoria-metrics"] == 3 * step.points_per_request
        assert set(step.cpu) == set(step.rss) == {"generator", gateway, "prometheus", "victoria-metrics"}
        assert step.drain < 60
    text = render(results)
    assert "| otelcol: ≥ 50,000 data points/s end to end, zero loss |" in text
    assert "The vmagent gateway at its limit" in text
