"""The top processes source on this machine: children of the test with known CPU use, memory, threads and
descriptors, and the order of what is reported."""

import os
import subprocess
import sys
import time
from collections import defaultdict

import psutil
import pytest

from collector.host import Host
from collector.sources.top_processes import HARD_CAP, TopProcessesOptions, TopProcessesSource


@pytest.fixture
def busy():
    """A child spinning on a CPU, started up: its memory no longer grows."""
    child = subprocess.Popen([sys.executable, "-c", "print(flush=True)\nwhile True: pass"], stdout=subprocess.PIPE)
    child.stdout.readline()
    yield psutil.Process(child.pid)
    child.kill()
    child.wait()


def host_of(tmp_path, *processes) -> Host:
    """A host root whose /proc shows only these processes (links to the real ones) and every system-wide file: a
    collection then takes a millisecond, and the CPU share can be bounded tightly."""
    proc = tmp_path / "proc"
    proc.mkdir()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in {p.pid for p in processes}:
            (proc / name).symlink_to(f"/proc/{name}")
    return Host(tmp_path)


def per_process(points) -> dict[int, dict[str, float]]:
    """pid → {metric (with its cpu.mode): value}."""
    found = defaultdict(dict)
    for p in points:
        mode = p.attributes.get("cpu.mode")
        found[p.attributes["process.pid"]][f"{p.metric}.{mode}" if mode else p.metric] = p.value
    return found


def test_cpu_share_is_of_all_cpus_since_the_previous_collection(busy, tmp_path):
    me = psutil.Process()  # this test: asleep through most of the window
    source = TopProcessesSource(host_of(tmp_path, busy, me), TopProcessesOptions(enabled=True, by="cpu"))
    time.sleep(0.1)
    first = time.monotonic()
    source.collect()
    started, before = time.monotonic(), busy.cpu_times()
    time.sleep(0.25)  # well below a second: a floor of one second on the window, or a missing division, would show
    after, ended = busy.cpu_times(), time.monotonic()
    memory_before = busy.memory_info()
    points = source.collect()
    memory_after = busy.memory_info()
    # The source's window holds [started, ended] and lies within [first, last]: its share is bounded both ways.
    last = time.monotonic()
    used = (after.user + after.system) - (before.user + before.system)
    cpus = psutil.cpu_count()
    lowest = used / ((last - first) * cpus)
    highest = (used + (last - first) - (ended - started) + 0.02) / ((ended - started) * cpus)  # 0.02: clock ticks
    mine = per_process(points)[busy.pid]
    share = mine["process.cpu.utilization.user"] + mine["process.cpu.utilization.system"]
    assert lowest <= share <= highest
    assert mine["process.cpu.time.user"] >= after.user
    # its own memory, threads and descriptors, not a neighbour's (a spinning loop allocates and opens nothing)
    # Resident size from statm, as psutil reads it: not stat's rss, the unsummed per-CPU counter since Linux 6.2
    # (hundreds of KiB low).
    assert memory_before.rss <= mine["process.memory.usage"] <= memory_after.rss
    assert memory_before.vms <= mine["process.memory.virtual"] <= memory_after.vms
    assert mine["process.thread.count"] == busy.num_threads() == 1
    assert mine["process.unix.file_descriptor.count"] == busy.num_fds() >= 3
    # ranked by the CPU share of the window, highest first
    assert list(per_process(points)) == [busy.pid, me.pid]


def test_ranked_by_resident_memory():
    points = TopProcessesSource(Host("/"), TopProcessesOptions(enabled=True, count=HARD_CAP, by="memory")).collect()
    reported = per_process(points)
    resident = [values["process.memory.usage"] for values in reported.values()]
    assert len(resident) == HARD_CAP  # a machine running the tests has more processes than that
    assert resident == sorted(resident, reverse=True)
    largest = max(p.info["memory_info"].rss for p in psutil.process_iter(["memory_info"]))
    assert resident[0] >= largest * 0.9  # the largest of the machine (which moves a little)
