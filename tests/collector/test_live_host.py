"""Smoke test on the real machine: sane values, not fixtures."""

import os
import time

import psutil

from collector.agent import build_collection
from collector.config import Config
from collector.host import Host
from collector.sources import declared_metrics
from collector.sources.cpu import frequencies, online_cpus, physical_cores
from collector.sources.top_processes import TopProcessesOptions, TopProcessesSource, creation_time
from collector.spec import Instrument
from collector.telemetry import AgentTelemetry

COUNTERS = {spec.name for _, spec in declared_metrics() if spec.instrument is Instrument.COUNTER}


def collect_twice():
    collection = build_collection(Config(), Host("/"), AgentTelemetry())
    collection.refresh()
    first = {(p.metric, tuple(sorted(p.attributes.items()))): p.value for p in collection.points()}
    time.sleep(0.3)
    collection.refresh()
    return first, collection.points_by_metric


def test_the_real_host_gives_sane_values():
    first, second = collect_twice()
    limit = second["system.memory.limit"][0].value
    assert limit == psutil.virtual_memory().total
    assert sum(p.value for p in second["system.memory.usage"]) == limit
    for point in second["system.filesystem.usage"]:
        mountpoint = point.attributes["system.filesystem.mountpoint"]
        fs_limit = next(p.value for p in second["system.filesystem.limit"]
                        if p.attributes["system.filesystem.mountpoint"] == mountpoint)
        assert 0 <= point.value <= fs_limit
    for metric, points in second.items():
        if metric.endswith("utilization"):
            assert all(0 <= p.value <= 1 for p in points), metric
    utilization = [p.value for p in second["system.cpu.utilization"]]
    assert utilization and abs(sum(utilization) - 1) < 1e-6, "CPU utilization must be there from the start"


def test_counters_never_decrease_between_two_collections():
    first, second = collect_twice()
    checked = 0
    for metric, points in second.items():
        if metric not in COUNTERS:
            continue
        for point in points:
            key = (metric, tuple(sorted(point.attributes.items())))
            if key in first:
                assert point.value >= first[key], key
                checked += 1
    assert checked > 20


def test_cpu_cores_and_frequencies_are_psutil_s():
    host = Host("/")
    before = psutil.cpu_freq(percpu=True) or []
    ours = frequencies(host)
    after = psutil.cpu_freq(percpu=True) or []
    assert physical_cores(host) == psutil.cpu_count(logical=False)
    assert online_cpus(host.read_proc("stat")) == os.cpu_count()
    reporting = {n for n, frequency in enumerate(before) if frequency.current}
    assert {n for n, hertz in ours.items() if hertz} == reporting
    for n in reporting:  # the frequency may change between the reads: within what psutil saw around ours
        low, high = sorted((before[n].current * 1e6, after[n].current * 1e6))
        assert 0.75 * low <= ours[n] <= 1.25 * high


def test_top_processes_name_and_date_each_process_as_the_model_and_psutil_say():
    def ours():
        points = TopProcessesSource(Host("/"), TopProcessesOptions(enabled=True, count=50, by="memory")).collect()
        return {p.attributes["process.pid"]: (p.attributes["process.executable.name"],
                                              p.attributes["process.creation.time"]) for p in points}

    def theirs(pid):
        """The model's name: the base name of /proc/<pid>/exe's target; psutil's name where that link is not
        readable (kernel threads, and other users' processes without CAP_SYS_PTRACE)."""
        try:
            process = psutil.Process(pid)
            try:
                name = os.path.basename(os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)"))
            except OSError:
                name = process.name()
            return name, creation_time(process.create_time())
        except psutil.NoSuchProcess:
            return None

    before = ours()
    psutils = {pid: theirs(pid) for pid in before}
    after = ours()
    # processes of other tests start, exec (a new name) and end meanwhile: those that did not change
    steady = {pid for pid, seen in before.items() if after.get(pid) == seen and psutils[pid] is not None}
    assert len(steady) > 5 and {pid: before[pid] for pid in steady} == {pid: psutils[pid] for pid in steady}
