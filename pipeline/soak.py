"""`make soak`: the agent at a 1 s interval through the real pipeline (a gateway → Prometheus and
VictoriaMetrics) for an hour, while the gateway is stopped, frozen and restarted on a schedule. Reports the
samples expected (collection cycles) and found in both backends, duplicates, and the agent's RSS and open
file descriptors over time (least-squares slope per hour).

    python -m pipeline.soak [--duration 1h] [--data-dir DIR] [--gateway otelcol|vmagent]

Not part of `make test`. The result of a run is kept in docs/reliability.md ("Soak").
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from collector.units import Duration
from pipeline.services import Agent, PromApi
from pipeline.stack import GATEWAYS, Pipeline, free_port, gateway_pipeline_in

UPTIME = "system_uptime_seconds"  # one sample per collection cycle
# Collection cycles so far, carried by every cycle's request: the cycles of the source that reads the uptime.
CYCLES = 'hostagent_source_collections_total{hostagent_source="processes"}'
# (seconds into each round, action): the gateway stopped, frozen, restarted; 2 minutes a round.
SCHEDULE = ((20, "stop"), (40, "start"), (60, "freeze"), (80, "thaw"), (100, "restart"))
ROUND = 120
SETTLE = 60  # seconds after the end for the backlog to drain and the backends to catch up


def act(pipeline: Pipeline, action: str) -> None:
    gateway = pipeline.gateway
    if action == "stop":
        gateway.stop()
    elif action == "start":
        gateway.start()
    elif action in ("freeze", "thaw"):
        gateway.process.send_signal(signal.SIGSTOP if action == "freeze" else signal.SIGCONT)
    else:
        gateway.stop()
        gateway.start()


def usage(pid: int) -> tuple[int, int]:
    """RSS in KiB and open file descriptors of `pid`."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def slope_per_hour(series: list[tuple[float, float]]) -> float:
    times, values = zip(*series)
    return statistics.linear_regression(times, values).slope * 3600


COUNTERS = {"expected": CYCLES, "failed exports": 'hostagent_export_requests_total{hostagent_outcome="failure"}',
            "replayed": "hostagent_backlog_replayed_total", "dropped": "hostagent_backlog_dropped_total"}


def count(backend: PromApi, window: int) -> dict[str, int]:
    """The agent's last counters (`expected`: its collection cycles) and the uptime samples found."""
    def last(expr):
        result = backend.api("query", query=f"sum(last_over_time({expr}[{window}s]))")["result"]
        return int(float(result[0]["value"][1])) if result else 0
    result = backend.api("query", query=f"{UPTIME}[{window}s]", time=f"{time.time():.3f}")["result"]
    stamps = [stamp for stamp, _ in result[0]["values"]] if result else []
    return {**{name: last(expr) for name, expr in COUNTERS.items()}, "found": len(set(stamps)),
            "duplicates": len(stamps) - len(set(stamps))}


def soak(duration: float, base: Path, gateway: str) -> str:
    with gateway_pipeline_in(base, gateway) as pipeline:
        with Agent(free_port(), base / "agent", pipeline.gateway.otlp_url, interval="1s") as agent:
            started = time.monotonic()
            usage_over_time, done = [], set()
            while (elapsed := time.monotonic() - started) < duration:
                for offset, action in SCHEDULE:
                    key = (int(elapsed // ROUND), offset)
                    if elapsed % ROUND >= offset and key not in done:
                        done.add(key)
                        act(pipeline, action)
                usage_over_time.append((elapsed, *usage(agent.process.pid)))
                time.sleep(1)
            if not pipeline.gateway.running():
                pipeline.gateway.start()
            pipeline.gateway.process.send_signal(signal.SIGCONT)
            time.sleep(SETTLE)
        time.sleep(5)  # the final export through the gateway
        window = int(duration + SETTLE + 600)
        counts = {backend.name: count(backend, window) for backend in pipeline.backends}
    warm = [row for row in usage_over_time if row[0] >= 60] or usage_over_time
    rss, fds = [(t, r) for t, r, _ in warm], [(t, f) for t, _, f in warm]
    lines = [f"soak: {duration:.0f} s at a 1 s interval, {gateway} gateway stopped 20 s, frozen 20 s and restarted "
             f"every {ROUND} s", "", "| backend | samples expected | found | duplicates | the agent's failed exports "
             "| replayed | dropped |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {c['expected']} | {c['found']} | {c['duplicates']} | {c['failed exports']} | "
              f"{c['replayed']} | {c['dropped']} |" for name, c in counts.items()]
    lines += ["", "| agent | first | last | min | max | slope per hour (after the first minute) |",
              "|---|---|---|---|---|---|"]
    for name, series in (("RSS (KiB)", rss), ("open fds", fds)):
        values = [value for _, value in series]
        lines.append(f"| {name} | {values[0]} | {values[-1]} | {min(values)} | {max(values)} | "
                     f"{slope_per_hour(series):+.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="1h", type=Duration.parse, help="how long (default 1h)")
    parser.add_argument("--data-dir", type=Path, help="where the servers keep their data (default: a temporary one)")
    parser.add_argument("--gateway", choices=GATEWAYS, default=GATEWAYS[0], help="the gateway (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as temporary:
        print(soak(args.duration, args.data_dir or Path(temporary), args.gateway), flush=True)


if __name__ == "__main__":
    main()
