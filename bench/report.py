"""The results as Markdown tables (printed, and pasted into docs/benchmarks.md)."""

import os
import platform
import sys
import time

from bench.capacity import TARGET_POINTS_PER_SECOND
from bench.otlp import required_names
from bench.suite import Results
from pipeline.stack import GATEWAYS

MIB = 2**20
TARGET_RSS = 30 * MIB
TARGET_P99 = 0.050
TARGET_HOSTS = 200
OURS = "hostagent"
# each peer, and the most the agent's CPU per cycle may cost against its CPU per cycle
PEERS = {"node_exporter": 0.5, "hostmetrics receiver": 1.0}


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")),
                 platform.machine())
    memory = next((int(line.split()[1]) * 1024 for line in _lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    os_name = next((line.split("=", 1)[1].strip('"') for line in _lines("/etc/os-release")
                    if line.startswith("PRETTY_NAME=")), platform.system())
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {os_name}, kernel {platform.release()} · "
            f"{os.cpu_count()} × {model} · {memory / 2**30:.1f} GiB RAM · "
            f"Python {platform.python_version()} ({os.path.realpath(sys.executable)}) · "
            f"load average {load} at the end")


def _cost(results: Results, name: str):
    return next((c for c in results.costs if c.name == name), None)


def costs(results: Results) -> str:
    peers = [peer for peer in PEERS if _cost(results, peer)]
    required = required_names()
    rows = [[cost.name, f"{cost.cpu_per_cycle * 1000:.1f} ms",
             *(f"{cost.cpu_per_cycle / _cost(results, peer).cpu_per_cycle:.2f}" for peer in peers),
             f"{cost.rss / MIB:.1f} MiB", f"{cost.peak_rss / MIB:.1f} MiB", str(cost.points),
             f"{cost.cpu_per_cycle / cost.points * 1e6:.0f} µs",
             f"{len(cost.names & required)} of {len(required)}" if cost.names is not None else "– (Prometheus names)"]
            for cost in results.costs]
    return table(["process", "CPU per cycle", *(f"× {peer}" for peer in peers), "RSS", "peak RSS",
                  "points per cycle", "CPU per point", "required metrics delivered"], rows)


def latency(results: Results) -> str:
    found = results.latency
    slowest = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in found.slowest_sources)
    return table(["collections", "processes on the host", "p50", "p99", "thread CPU p50", "thread CPU p99",
                  "processes source's CPU (median)", "slowest sources (their p99)"],
                 [[str(found.cycles), str(found.processes), *(f"{seconds * 1000:.1f} ms" for seconds in (
                     found.p50, found.p99, found.cpu_p50, found.cpu_p99, found.processes_cpu)), slowest]])


def breakdown(results: Results) -> str:
    total = sum(results.phases.values())
    rows = [[phase, f"{seconds * 1000:.2f} ms", f"{seconds / total:.0%}"] for phase, seconds in results.phases.items()]
    return table(["phase", "CPU per cycle", "share"], [*rows, ["whole cycle", f"{total * 1000:.2f} ms", "100%"]])


def workload_costs(results: Results) -> str:
    return table(["source", "synthetic host", "CPU per collection", "points"],
                 [[w.source, w.size, f"{w.cpu_per_collection * 1000:.1f} ms", str(w.points)]
                  for w in results.workloads])


def steps(results: Results) -> str:
    rows = []
    for step in results.steps:
        cores = ", ".join(f"{name} {used:.2f}" for name, used in step.cores.items())
        counted = " / ".join(f"{step.samples[name]} ({step.series[name]} series)" for name in step.samples)
        verdict = "holds" if step.held else ("cycle overran" if not step.kept_up else "**LOSS**")
        rows.append([str(step.hosts), f"{step.points_per_second:.0f}", f"{max(step.busy):.1f} s", str(step.points),
                     counted, str(step.failed_requests), f"{step.cpu_per_export * 1000:.1f} ms", cores, verdict])
    return table(["hosts", "data points/s", "slowest steady cycle", "points sent",
                  "samples (series) in Prometheus / VictoriaMetrics", "failed requests",
                  "simulator CPU per host export", "CPU cores used", "result"], rows)


def capacity_steps(steps: list) -> str:
    rows = []
    for step in steps:
        cores = ", ".join(f"{name} {used:.2f}" for name, used in step.cpu.items())
        memory = ", ".join(f"{name} {size / MIB:.0f}" for name, size in step.rss.items())
        counted = " / ".join(f"{step.samples[name]} ({step.series[name]} series)" for name in step.samples)
        rows.append([str(step.hosts), f"{step.points_per_second:.0f}", f"{step.series_created_after:.1f} s",
                     f"{step.latency_p99 * 1000:.0f} ms", f"{step.sent.late:.2f} s", f"{step.drain:.1f} s",
                     str(step.failures), str(step.points),
                     counted, cores, f"{step.points_per_gateway_core:.0f}", f"{step.machine:.2f}", memory,
                     step.verdict])
    return table(["hosts", "data points/s", "warm-up queryable after", "request p99", "most late request",
                  "last cycle queryable after",
                  "failed requests", "points sent", "samples (series) in Prometheus / VictoriaMetrics",
                  "CPU cores used", "data points/s per gateway core", "machine's busy cores (all users)", "RSS MiB",
                  "result"], rows)


def targets(results: Results) -> str:
    rows = []
    ours = _cost(results, OURS)
    for peer, most in PEERS.items():
        if ours and (theirs := _cost(results, peer)):
            ratio = ours.cpu_per_cycle / theirs.cpu_per_cycle
            rows.append([f"agent CPU per cycle ≤ {most:.1f}× {peer}'s per cycle", f"{ratio:.2f}×", _met(ratio <= most)])
    if ours:
        rows.append([f"agent RSS ≤ {TARGET_RSS // MIB} MiB", f"{ours.rss / MIB:.1f} MiB", _met(ours.rss <= TARGET_RSS)])
    if results.latency:
        rows.append(["collection p99 < 50 ms", f"{results.latency.p99 * 1000:.1f} ms",
                     _met(results.latency.p99 < TARGET_P99)])
    if results.steps:
        held = max((step.hosts for step in results.steps if step.held), default=0)
        interval = results.settings.interval
        rows.append([f"≥ {TARGET_HOSTS} hosts at a 10 s interval, zero loss", f"{held} hosts at {interval:g} s",
                     _met(held >= TARGET_HOSTS and interval <= 10)])
    for gateway, gateway_steps in results.gateway_steps.items():
        held = max((step for step in gateway_steps if step.held), key=lambda step: step.hosts, default=None)
        rate = held.points_per_second if held else 0.0
        rows.append([f"{gateway}: ≥ {TARGET_POINTS_PER_SECOND:,} data points/s end to end, zero loss",
                     f"{rate:,.0f} points/s ({held.hosts if held else 0} hosts at {results.settings.interval:g} s)",
                     _met(rate >= TARGET_POINTS_PER_SECOND)])
    return table(["target", "measured", "result"], rows)


def render(results: Results) -> str:
    sections = [f"Machine: {machine()}", "Targets:\n\n" + targets(results)]
    if results.costs:
        sections.append(f"Cost per cycle (side by side, {results.settings.cost_cycles} cycles, "
                        f"{results.settings.cost_interval:g} s apart):\n\n" + costs(results))
    if results.latency:
        sections.append("Collection latency (every source due in every cycle):\n\n" + latency(results))
    if results.phases:
        sections.append("Where one collect+export cycle's CPU goes (in this process, thread CPU clock, "
                        "every source due):\n\n" + breakdown(results))
    if results.workloads:
        sections.append("Opt-in workload sources (in this process, thread CPU clock, synthetic trees):\n\n"
                        + workload_costs(results))
    if results.steps:
        sections.append(f"Simulated hosts through the {GATEWAYS[0]} gateway "
                        f"({results.settings.cycles} steady cycles of {results.settings.interval:g} s "
                        "after one warm-up cycle):\n\n" + steps(results))
    for gateway, gateway_steps in results.gateway_steps.items():
        sections.append(f"The {gateway} gateway at its limit (load generator, {results.settings.gateway_cycles} steady "
                        f"cycles of {results.settings.interval:g} s once one warm-up cycle was queryable in both "
                        "backends, a fresh pipeline per step):\n\n" + capacity_steps(gateway_steps))
    return "\n\n".join(sections) + "\n"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _lines(path: str) -> list[str]:
    try:
        with open(path) as file:
            return file.read().splitlines()
    except OSError:
        return []
