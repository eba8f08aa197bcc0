"""One benchmark run: the settings, the measurements in order, and what they found."""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import capacity, cost, latency, phases, throughput, workloads
from bench.cost import Cost
from bench.latency import Latency
from bench.throughput import Step
from bench.workloads import WorkloadCost
from pipeline.stack import GATEWAYS, gateway_pipeline_in

PARTS = ("cost", "latency", "phases", "workloads", "throughput", "gateway")


@dataclass(frozen=True)
class Settings:
    cost_interval: float = 1.0  # seconds between cycles while measuring CPU per cycle
    cost_cycles: int = 30
    latency_cycles: int = 300  # also the cycles of the CPU breakdown ("phases")
    extra_processes: int = 0  # idle processes started for the latency part (a host with thousands of them)
    workload_cycles: int = 20  # collections of each opt-in workload source
    hosts: tuple[int, ...] = (50, 100, 200, 400, 800, 1600)  # simulated-host steps, tried in order
    interval: float = 10.0  # export interval of the simulated hosts
    cycles: int = 3  # export cycles per step
    # The gateways at their own limit (bench/capacity.py): load-generator hosts per step, at `interval`, and with
    # `gateway_target_step` one more step at the target's rate (capacity.target_hosts), in order among them.
    gateways: tuple[str, ...] = GATEWAYS
    gateway_hosts: tuple[int, ...] = (1000, 2000, 3500, 5000)
    gateway_target_step: bool = True
    gateway_cycles: int = 3
    gateway_workers: int = 64  # concurrent connections of the load generator
    parts: tuple[str, ...] = PARTS


QUICK = Settings(cost_interval=0.5, cost_cycles=4, latency_cycles=20, workload_cycles=2, hosts=(5, 10), interval=2.0,
                 cycles=2, gateway_hosts=(20,), gateway_target_step=False, gateway_cycles=1, gateway_workers=4)


@dataclass
class Results:
    settings: Settings
    costs: list[Cost] = field(default_factory=list)
    latency: Latency | None = None
    phases: dict[str, float] = field(default_factory=dict)  # phase → CPU seconds per cycle
    steps: list[Step] = field(default_factory=list)
    workloads: list[WorkloadCost] = field(default_factory=list)
    gateway_steps: dict[str, list[capacity.Step]] = field(default_factory=dict)  # gateway → its steps


def gateway_steps(settings: Settings) -> list[int]:
    if not settings.gateway_target_step:
        return list(settings.gateway_hosts)
    return sorted({*settings.gateway_hosts, capacity.target_hosts(settings.interval)})


def run(settings: Settings, progress=print) -> Results:
    results = Results(settings)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        if "cost" in settings.parts:
            progress(f"cost: four processes side by side, {settings.cost_cycles} cycles each, "
                     f"{settings.cost_interval}s apart")
            results.costs = cost.measure(settings.cost_interval, settings.cost_cycles, workdir)
        if "latency" in settings.parts:
            progress(f"latency: {settings.latency_cycles} collections in this process, "
                     f"{settings.extra_processes} extra processes")
            results.latency = latency.measure(settings.latency_cycles, extra=settings.extra_processes)
        if "phases" in settings.parts:
            progress(f"phases: {settings.latency_cycles} collect+export cycles in this process")
            results.phases = phases.measure(settings.latency_cycles)
        if "workloads" in settings.parts:
            progress(f"workloads: {settings.workload_cycles} collections of each opt-in workload source")
            results.workloads = workloads.measure(settings.workload_cycles, workdir)
        if "throughput" in settings.parts:
            progress(f"throughput: steps {settings.hosts}, {settings.cycles} cycles of {settings.interval}s each")
            with gateway_pipeline_in(workdir / "pipeline") as pipeline:
                results.steps = throughput.find_capacity(
                    pipeline, list(settings.hosts), settings.interval, settings.cycles,
                    on_step=lambda step: progress(f"  {step.hosts} hosts: {'holds' if step.held else 'fails'}"))
        if "gateway" in settings.parts:
            steps = gateway_steps(settings)
            for gateway in settings.gateways:
                progress(f"gateway {gateway}: steps {steps}, {settings.gateway_cycles} cycles of "
                         f"{settings.interval}s each once one warm-up cycle is queryable in both backends, a fresh "
                         "pipeline per step")
                results.gateway_steps[gateway] = capacity.find_capacity(
                    workdir / "capacity", gateway, steps, settings.interval,
                    settings.gateway_cycles, settings.gateway_workers,
                    on_step=lambda step: progress(f"  {step.hosts} hosts: {step.verdict}"))
    return results
