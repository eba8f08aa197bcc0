"""Each source against the fixture host tree: exact values."""

import contextlib
import errno
import os
import shutil
from collections import Counter, namedtuple

import pytest

from collector.collection import Collection
from collector.host import Host
from collector.sources.base import PartialFailure, SourceOptions, Unavailable
from collector.sources.conntrack import ConntrackSource
from collector.sources.cpu import CpuOptions, CpuSource, _mode_points
from collector.sources.disk import DiskOptions, DiskSource
from collector.sources.file_descriptors import FileDescriptorsSource
from collector.sources.filesystem import FilesystemOptions, FilesystemSource, Mount, parse_mounts, statvfs_points
from collector.sources.load import LoadSource
from collector.sources.memory import MemorySource
from collector.sources.network import NetworkOptions, NetworkSource
from collector.sources.paging import PagingSource
from collector.sources.pressure import PressureSource
from collector.sources.processes import ProcessesSource, parse_processes_created
from collector.sources.temperature import TemperatureSource
from collector.sources.top_processes import TopProcessesOptions, TopProcessesSource
from collector.telemetry import AgentTelemetry
from tests.collector import semconv
from tests.collector.conftest import FIXTURE_ROOT, by_attributes, values

KIB = 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
HZ = os.sysconf("SC_CLK_TCK")
Times = namedtuple("Times", "user nice system idle iowait irq softirq steal")


def test_cpu_time_per_mode_from_proc_stat(fixture_host):
    points = CpuSource(fixture_host, CpuOptions()).collect()
    # USER_HZ is 100: /proc/stat's 1000 ticks of user time are 10 s
    assert by_attributes(points, "system.cpu.time", "cpu.mode") == {
        "user": 10.0, "nice": 0.2, "system": 3.0, "idle": 80.0, "iowait": 0.5,
        "interrupt": 0.25, "steal": 0.05}  # interrupt: irq 0.1 s + softirq 0.15 s
    assert values(points, "system.cpu.logical.count") == [2]  # cpu0 and cpu1 in the fixture's /proc/stat


def test_cpu_utilization_is_the_share_of_time_since_the_previous_reading():
    before = Times(10, 0, 5, 80, 5, 0, 0, 0)
    now = Times(40, 0, 15, 110, 15, 4, 6, 10)  # 100 s elapsed in total
    utilization = {p.attributes["cpu.mode"]: p.value for p in _mode_points(now, before, {})
                   if p.metric == "system.cpu.utilization"}
    assert utilization == pytest.approx({"user": 0.3, "nice": 0, "system": 0.1, "idle": 0.3, "iowait": 0.1,
                                         "interrupt": 0.1, "steal": 0.1})


def test_cpu_utilization_is_reported_on_the_first_collection(fixture_host):
    source = CpuSource(fixture_host, CpuOptions())
    source._previous = Times(0, 0, 0, 0, 0, 0, 0, 0)  # as if the agent started at boot
    utilization = by_attributes(source.collect(), "system.cpu.utilization", "cpu.mode")
    assert utilization["idle"] == pytest.approx(80 / 94.0)
    assert sum(utilization.values()) == pytest.approx(1.0)


def write_proc_stat(root, user, system, idle):
    (root / "proc" / "stat").write_text(f"cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\n"
                                        f"cpu0 {user} 0 {system} {idle} 0 0 0 0 0 0\nprocesses 1\n")


def test_cpu_utilization_covers_only_the_time_since_the_previous_collection(fixture_host, tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    write_proc_stat(root, user=100, system=100, idle=800)
    source = CpuSource(Host(root), CpuOptions())
    write_proc_stat(root, user=200, system=100, idle=900)  # 2 s since start-up: half user, half idle
    first = by_attributes(source.collect(), "system.cpu.utilization", "cpu.mode")
    write_proc_stat(root, user=200, system=400, idle=1000)  # 4 s more: 3/4 system, 1/4 idle
    second = by_attributes(source.collect(), "system.cpu.utilization", "cpu.mode")
    assert (first["user"], first["idle"], first["system"]) == pytest.approx((0.5, 0.5, 0.0))
    assert (second["user"], second["idle"], second["system"]) == pytest.approx((0.0, 0.25, 0.75))
    assert "system.cpu.utilization" not in {p.metric for p in source.collect()}  # no time passed


def test_a_mode_counter_going_backwards_counts_as_zero_not_negative():
    before = Times(10, 0, 5, 80, 50, 0, 0, 0)
    now = Times(40, 0, 15, 120, 40, 0, 0, 0)  # iowait went back 10 s (kernel accounting): 80 s elapsed
    utilization = {p.attributes["cpu.mode"]: p.value for p in _mode_points(now, before, {})
                   if p.metric == "system.cpu.utilization"}
    assert utilization["iowait"] == 0.0
    assert (utilization["user"], utilization["idle"]) == pytest.approx((30 / 80, 40 / 80))


def test_a_kernel_without_some_mode_columns_gives_the_others():
    Old = namedtuple("Old", "user nice system idle")  # before iowait, irq, softirq and steal existed
    points = _mode_points(Old(30, 0, 10, 60), Old(0, 0, 0, 0), {})
    assert by_attributes(points, "system.cpu.utilization", "cpu.mode") == pytest.approx(
        {"user": 0.3, "nice": 0.0, "system": 0.1, "idle": 0.6})


def test_proc_stat_without_a_processes_line_is_an_error():
    with pytest.raises(ValueError, match=r"^no 'processes' line in /proc/stat$"):
        parse_processes_created("cpu  1 2 3 4\n")


def test_cpu_counts_and_frequency_in_hz(fixture_host):
    points = CpuSource(fixture_host, CpuOptions()).collect()
    assert values(points, "system.cpu.logical.count") == [2]
    assert values(points, "system.cpu.physical.count") == [1]  # cpu0 and cpu1 are two threads of one core
    # /proc/cpuinfo's "cpu MHz" of each processor
    assert by_attributes(points, "system.cpu.frequency", "cpu.logical_number") == {0: 2.4e9, 1: 2.6e9}


def test_without_cpuinfo_frequencies_or_topology_cpufreq_and_cpuinfo_cores_count(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    # an arm64 host: cpuinfo has no "cpu MHz"; two sockets of 4 cores (a socket's processors say it alike)
    (root / "proc" / "cpuinfo").write_text("".join(
        f"processor\t: {n}\nphysical id\t: {socket}\ncpu cores\t: 4\n\n" for n, socket in enumerate((0, 0, 1))))
    cpus = root / "sys" / "devices" / "system" / "cpu"
    for n in (0, 1):
        shutil.rmtree(cpus / f"cpu{n}" / "topology")
    for n, name, khz in ((0, "scaling_cur_freq", "2400000"), (1, "cpuinfo_cur_freq", "1200500"),
                         (2, "scaling_cur_freq", "0"), (3, "scaling_max_freq", "3000000")):
        (cpus / f"cpu{n}" / "cpufreq").mkdir(parents=True)
        (cpus / f"cpu{n}" / "cpufreq" / name).write_text(khz + "\n")
    points = CpuSource(Host(root), CpuOptions()).collect()
    assert values(points, "system.cpu.physical.count") == [8]
    # kHz; a CPU that reports no frequency (0: offline) or no current one is left out, not zero
    assert by_attributes(points, "system.cpu.frequency", "cpu.logical_number") == {0: 2.4e9, 1: 1.2005e9}


def test_without_cpuinfo_frequencies_or_a_cpu_directory_in_sysfs_no_frequency_and_the_rest(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    (root / "proc" / "cpuinfo").write_text("processor\t: 0\n\nprocessor\t: 1\n")
    shutil.rmtree(root / "sys" / "devices" / "system" / "cpu")  # a container without /sys
    points = CpuSource(Host(root), CpuOptions()).collect()
    assert values(points, "system.cpu.frequency") == []
    assert values(points, "system.cpu.logical.count") == [2]


def test_before_core_cpus_list_the_thread_siblings_count_the_cores(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    cpus = root / "sys" / "devices" / "system" / "cpu"
    for n, siblings in ((0, "0"), (1, "1")):  # no SMT: each CPU its own core
        (cpus / f"cpu{n}" / "topology" / "core_cpus_list").unlink()
        (cpus / f"cpu{n}" / "topology" / "thread_siblings_list").write_text(siblings + "\n")
    assert values(CpuSource(Host(root), CpuOptions()).collect(), "system.cpu.physical.count") == [2]


@pytest.mark.parametrize("cpuinfo", ["", "processor\t: 0\nphysical id\t: 0\n\n", "processor\t: 0\ncpu cores\t: 4\n\n"],
                         ids=["nothing", "a socket without its cores", "cores without a socket"])
def test_no_topology_and_no_cpuinfo_cores_give_no_physical_count(tmp_path, cpuinfo):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    for n in (0, 1):
        shutil.rmtree(root / "sys" / "devices" / "system" / "cpu" / f"cpu{n}" / "topology")
    (root / "proc" / "cpuinfo").write_text(cpuinfo)
    assert values(CpuSource(Host(root), CpuOptions()).collect(), "system.cpu.physical.count") == []


def test_since_linux_5_7_core_cpus_list_alone_counts_the_cores(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    (root / "proc" / "cpuinfo").write_text("")
    cpus = root / "sys" / "devices" / "system" / "cpu"
    for n in (0, 1):  # no SMT: each CPU its own core; the deprecated name gone
        (cpus / f"cpu{n}" / "topology" / "thread_siblings_list").unlink(missing_ok=True)
        (cpus / f"cpu{n}" / "topology" / "core_cpus_list").write_text(f"{n}\n")
    assert values(CpuSource(Host(root), CpuOptions()).collect(), "system.cpu.physical.count") == [2]


def test_cpu_per_cpu_breakdown_is_opt_in(fixture_host):
    points = CpuSource(fixture_host, CpuOptions(per_cpu=True)).collect()
    per_cpu = {(p.attributes["cpu.logical_number"], p.attributes["cpu.mode"]): p.value
               for p in points if p.metric == "system.cpu.time"}
    assert per_cpu[(0, "user")] == 6.0 and per_cpu[(1, "idle")] == 41.0
    assert all("cpu.logical_number" in p.attributes for p in points if p.metric == "system.cpu.time")


def test_cpu_per_cpu_numbers_are_the_kernels_when_a_cpu_is_offline(tmp_path):
    (tmp_path / "proc").mkdir()
    stat = tmp_path / "proc" / "stat"

    def write(busy_cpu3):
        stat.write_text("cpu  300 0 300 3000 0 0 0 0 0 0\n"  # cpu1 is offline: the kernel leaves it out
                        "cpu0 100 0 100 1000 0 0 0 0 0 0\ncpu2 100 0 100 1000 0 0 0 0 0 0\n"
                        f"cpu3 {900 if busy_cpu3 else 100} 0 100 1000 0 0 0 0 0 0\n")
    write(busy_cpu3=False)
    source = CpuSource(Host(tmp_path), CpuOptions(per_cpu=True))
    write(busy_cpu3=True)
    points = source.collect()
    assert {p.attributes["cpu.logical_number"] for p in points if p.metric == "system.cpu.time"} == {0, 2, 3}
    busy = {p.attributes["cpu.logical_number"]: p.value for p in points
            if p.metric == "system.cpu.utilization" and p.attributes["cpu.mode"] == "user" and p.value}
    assert busy == {3: 1.0}
    assert values(points, "system.cpu.logical.count") == [3]


def test_load_average(fixture_host):
    points = LoadSource(fixture_host, SourceOptions()).collect()
    assert {p.metric: p.value for p in points} == {
        "system.cpu.load_average.1m": 0.5, "system.cpu.load_average.5m": 1.25,
        "system.cpu.load_average.15m": 2.75}


def test_memory_states_add_up_to_the_limit(fixture_host):
    points = MemorySource(fixture_host, SourceOptions()).collect()
    usage = by_attributes(points, "system.memory.usage", "system.memory.state")
    # psutil counts reclaimable slab (SReclaimable) as cached
    assert usage == {"free": 2_000_000 * KIB, "buffers": 500_000 * KIB, "cached": 2_800_000 * KIB,
                     "used": 2_700_000 * KIB}
    assert values(points, "system.memory.limit") == [8_000_000 * KIB]
    assert sum(usage.values()) == 8_000_000 * KIB
    assert values(points, "system.memory.linux.available") == [5_000_000 * KIB]
    assert by_attributes(points, "system.memory.utilization", "system.memory.state")["used"] == 0.3375


def meminfo_host(tmp_path, meminfo: dict[str, int], zoneinfo: str | None = None) -> Host:
    (tmp_path / "proc").mkdir(parents=True)
    (tmp_path / "proc" / "meminfo").write_text("".join(f"{key}: {kib} kB\n" for key, kib in meminfo.items()))
    if zoneinfo is not None:
        (tmp_path / "proc" / "zoneinfo").write_text(zoneinfo)
    return Host(tmp_path)


SLAB_AND_SHMEM = {"Shmem": 0, "SReclaimable": 0, "SUnreclaim": 0}
ZONES = "Node 0, zone   Normal\n  pages free     100\n        min      5\n        low      10\n" * 2


@pytest.mark.parametrize("meminfo, zoneinfo, available", [
    # no MemAvailable (before 3.14): the kernel's estimate, low watermarks from zoneinfo (2 zones x 10 pages):
    # free - low + page cache - min(page cache / 2, low) + reclaimable - min(reclaimable / 2, low)
    ({"MemTotal": 1000, "MemFree": 100, "Cached": 300, "Active(file)": 200, "Inactive(file)": 100,
      **SLAB_AND_SHMEM, "SReclaimable": 40}, ZONES,
     100 * KIB - 20 * PAGE + 300 * KIB - 20 * PAGE + 40 * KIB - 20 * KIB),
    # half the page cache below the low watermarks (2 zones x 100 pages): half of it counts
    ({"MemTotal": 2000, "MemFree": 1000, "Cached": 300, "Active(file)": 200, "Inactive(file)": 100,
      **SLAB_AND_SHMEM, "SReclaimable": 40}, ZONES.replace(" 10\n", " 100\n"),
     1000 * KIB - 200 * PAGE + 300 * KIB - 150 * KIB + 40 * KIB - 20 * KIB),
    ({"MemTotal": 1000, "MemFree": 100, "MemAvailable": 0, "Cached": 300, **SLAB_AND_SHMEM}, None,
     400 * KIB),  # 0 (some kernels) and no zoneinfo: free + cached
    ({"MemTotal": 1000, "MemFree": 100, **SLAB_AND_SHMEM}, None, 100 * KIB),  # nor a Cached line: free
    ({"MemTotal": 1000, "MemFree": 10, "Cached": 0, "Active(file)": 0, "Inactive(file)": 0, **SLAB_AND_SHMEM},
     "        low      1000\n", 0),  # an estimate below zero
    ({"MemTotal": 1000, "MemFree": 100, "MemAvailable": 2000, "Cached": 0, **SLAB_AND_SHMEM}, None,
     100 * KIB),  # above the total (LXC): free
    ({"MemTotal": 1000, "MemFree": 100, "MemAvailable": 1000, "Cached": 0, **SLAB_AND_SHMEM}, None, 1000 * KIB),
])
def test_memory_available_as_psutil_computes_it_where_the_kernel_gives_none_or_a_distorted_one(
        tmp_path, meminfo, zoneinfo, available):
    points = MemorySource(meminfo_host(tmp_path, meminfo, zoneinfo), SourceOptions()).collect()
    assert values(points, "system.memory.linux.available") == [available]


def test_memory_states_without_buffers_or_cached_lines_and_above_the_total_never_negative(tmp_path):
    meminfo = {"MemTotal": 1000, "MemFree": 900, "MemAvailable": 900, **SLAB_AND_SHMEM, "SReclaimable": 300}
    points = MemorySource(meminfo_host(tmp_path, meminfo), SourceOptions()).collect()
    # no Cached line: no cached, reclaimable slab included; no Buffers line: 0
    assert by_attributes(points, "system.memory.usage", "system.memory.state") == {
        "free": 900 * KIB, "buffers": 0, "cached": 0, "used": 100 * KIB}
    meminfo |= {"Buffers": 50, "Cached": 100}  # free + buffers + cached + reclaimable above the total
    points = MemorySource(meminfo_host(tmp_path / "distorted", meminfo), SourceOptions()).collect()
    assert by_attributes(points, "system.memory.usage", "system.memory.state") == {
        "free": 900 * KIB, "buffers": 50 * KIB, "cached": 400 * KIB, "used": 0}


def test_memory_shared_slab_and_hugepages_from_meminfo(fixture_host):
    points = MemorySource(fixture_host, SourceOptions()).collect()
    assert values(points, "system.memory.linux.shared") == [100_000 * KIB]
    assert by_attributes(points, "system.memory.linux.slab.usage", "system.memory.linux.slab.state") == {
        "reclaimable": 300_000 * KIB, "unreclaimable": 60_000 * KIB}
    hugepages = {p.metric.removeprefix("system.memory.linux.hugepages."): p.value for p in points
                 if p.metric.startswith("system.memory.linux.hugepages.") and not p.attributes}
    assert hugepages == {"limit": 512, "page_size": 2048 * KIB, "reserved": 32, "surplus": 8}
    assert by_attributes(points, "system.memory.linux.hugepages.usage", "system.memory.linux.hugepages.state") == {
        "used": 384, "free": 128}
    assert by_attributes(points, "system.memory.linux.hugepages.utilization",
                         "system.memory.linux.hugepages.state") == {"used": 0.75, "free": 0.25}


def test_no_hugepage_pool_reports_the_pool_empty_and_no_utilization():
    from collector.sources.memory import meminfo_points
    meminfo = {"Shmem": 1, "SReclaimable": 2, "SUnreclaim": 3, "HugePages_Total": 0, "HugePages_Free": 0,
               "HugePages_Rsvd": 0, "HugePages_Surp": 0, "Hugepagesize": 2 << 20}
    points = meminfo_points(meminfo)
    assert values(points, "system.memory.linux.hugepages.limit") == [0]
    assert values(points, "system.memory.linux.hugepages.utilization") == []
    kernel_without_hugetlbfs = {k: v for k, v in meminfo.items() if not k.startswith(("Huge", "HugePages"))}
    assert {p.metric for p in meminfo_points(kernel_without_hugetlbfs)} == {
        "system.memory.linux.shared", "system.memory.linux.slab.usage"}


def test_paging_usage_per_swap_device_faults_and_operations(fixture_host):
    points = PagingSource(fixture_host, SourceOptions()).collect()
    usage = {(p.attributes["system.device"], p.attributes["system.paging.state"]): p.value
             for p in points if p.metric == "system.paging.usage"}
    assert usage == {("/dev/dm-1", "used"): 1_000_000 * KIB, ("/dev/dm-1", "free"): 2_000_000 * KIB,
                     ("/swap file", "used"): 0, ("/swap file", "free"): 1_000_000 * KIB}
    assert sum(usage.values()) == 4_000_000 * KIB  # SwapTotal in meminfo
    utilization = {(p.attributes["system.device"], p.attributes["system.paging.state"]): p.value
                   for p in points if p.metric == "system.paging.utilization"}
    assert utilization[("/dev/dm-1", "used")] == pytest.approx(1 / 3)
    assert utilization[("/swap file", "free")] == 1.0
    assert by_attributes(points, "system.paging.faults", "system.paging.fault.type") == {"major": 120, "minor": 4880}
    assert by_attributes(points, "system.paging.operations", "system.paging.direction") == {"in": 30, "out": 40}
    assert {p.attributes["system.paging.fault.type"] for p in points if p.metric == "system.paging.operations"} == {
        "major"}


def test_paging_without_swap_reports_no_usage():
    from collector.sources.paging import parse_swaps
    assert parse_swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n") == []


def test_disk_counters_per_whole_device_excluding_loop_and_partitions(fixture_host):
    points = DiskSource(fixture_host, DiskOptions()).collect()
    assert {p.attributes["system.device"] for p in points} == {"sda", "nvme0n1"}
    sda_read = {p.metric: p.value for p in points
                if p.attributes.get("system.device") == "sda" and p.attributes.get("disk.io.direction") == "read"}
    assert sda_read == {"system.disk.io": 200000 * 512, "system.disk.operations": 1000,
                        "system.disk.operation_time": 4.0, "system.disk.merged": 50}
    sda_write = {p.metric: p.value for p in points
                 if p.attributes.get("system.device") == "sda" and p.attributes.get("disk.io.direction") == "write"}
    assert sda_write == {"system.disk.io": 400000 * 512, "system.disk.operations": 2000,
                         "system.disk.operation_time": 8.0, "system.disk.merged": 100}
    assert [p.value for p in points if p.metric == "system.disk.io_time"
            and p.attributes["system.device"] == "sda"] == [9.0]


def test_disk_counters_from_a_kernel_before_4_18(host_tree):
    # 14 fields a line: no discard or flush columns yet
    (host_tree / "proc" / "diskstats").write_text("8 0 sda 1000 50 200000 4000 2000 100 400000 8000 3 9000 12000\n")
    points = DiskSource(Host(host_tree), DiskOptions()).collect()
    assert by_attributes(points, "system.disk.io", "disk.io.direction") == {"read": 200000 * 512,
                                                                           "write": 400000 * 512}
    assert values(points, "system.disk.weighted_io_time") == [12.0]


def test_disk_queue_and_size_per_device(fixture_host):
    points = DiskSource(fixture_host, DiskOptions()).collect()
    per_device = {(p.metric, p.attributes["system.device"]): p.value for p in points
                  if p.metric in ("system.disk.weighted_io_time", "system.disk.pending_operations",
                                  "system.disk.limit")}
    assert per_device == {
        ("system.disk.weighted_io_time", "sda"): 12.0, ("system.disk.weighted_io_time", "nvme0n1"): 2.0,
        ("system.disk.pending_operations", "sda"): 3, ("system.disk.pending_operations", "nvme0n1"): 1,
        ("system.disk.limit", "sda"): 1953525168 * 512, ("system.disk.limit", "nvme0n1"): 1000215216 * 512}


WRAP_MS = 1 << 32  # the kernel prints diskstats' time fields as unsigned int milliseconds




def times_ms(points) -> tuple[int, int, int, int]:
    def ms(metric, **attributes):
        [value] = [p.value for p in points if p.metric == metric and attributes.items() <= p.attributes.items()]
        return round(value * 1000)
    return (ms("system.disk.operation_time", **{"disk.io.direction": "read"}),
            ms("system.disk.operation_time", **{"disk.io.direction": "write"}),
            ms("system.disk.io_time"), ms("system.disk.weighted_io_time"))


def test_disk_time_counters_count_on_past_their_32_bit_wraps(host_tree):
    diskstats, source = host_tree / "proc" / "diskstats", DiskSource(Host(host_tree), DiskOptions())

    def collect(reads, *fields_ms):
        read_ms, write_ms, io_ms, weighted_ms = fields_ms
        diskstats.write_text(f"8 0 sda {reads} 0 {reads * 8} {read_ms} 10 0 80 {write_ms} 0 {io_ms} {weighted_ms} "
                             "0 0 0 0 0 0\n")
        return times_ms(source.collect())
    assert collect(1_000_000, WRAP_MS - 7_000, 500, WRAP_MS - 1, WRAP_MS - 2_000) == (
        WRAP_MS - 7_000, 500, WRAP_MS - 1, WRAP_MS - 2_000)
    # read time, io_ticks and weighted time wrapped (write time did not); then weighted time wraps again
    assert collect(1_000_100, 2_705, 600, 9, 3_000) == (WRAP_MS + 2_705, 600, WRAP_MS + 9, WRAP_MS + 3_000)
    assert collect(1_000_200, 9_000, 700, 1_000, WRAP_MS - 5) == (WRAP_MS + 9_000, 700, WRAP_MS + 1_000,
                                                                   2 * WRAP_MS - 5)
    assert collect(1_000_300, 9_500, 800, 2_000, 40) == (WRAP_MS + 9_500, 800, WRAP_MS + 2_000, 2 * WRAP_MS + 40)


def test_disk_time_counters_start_over_with_a_recreated_device(host_tree):
    diskstats, source = host_tree / "proc" / "diskstats", DiskSource(Host(host_tree), DiskOptions())

    def collect(reads, read_ms, device="sda"):
        diskstats.write_text(f"8 0 {device} {reads} 0 {reads * 8} {read_ms} 10 0 80 20 0 {read_ms} {read_ms} "
                             "0 0 0 0 0 0\n")
        points = source.collect()
        return times_ms(points) if device == "sda" else None
    collect(1_000_000, WRAP_MS - 100)
    assert collect(1_000_100, 50)[0] == WRAP_MS + 50  # a wrap
    assert collect(30, 20) == (20, 20, 20, 20)  # its operations went back too: re-created, not wrapped
    assert collect(40, 30) == (30, 20, 30, 30)
    collect(50, 40, device="sdb")  # sda gone for a read ...
    assert collect(5_000, 10) == (10, 20, 10, 10)  # ... and back: it starts over, whatever its counts


def test_disk_include_filter_and_device_cap(fixture_host):
    points = DiskSource(fixture_host, DiskOptions(include=("^sda$",))).collect()
    assert {p.attributes["system.device"] for p in points} == {"sda"}
    from collector.sources.base import PartialFailure
    with pytest.raises(PartialFailure) as capped:
        DiskSource(fixture_host, DiskOptions(max_devices=1)).collect()
    assert {p.attributes["system.device"] for p in capped.value.points} == {"sda"}
    assert "max_devices=1" in str(capped.value)
    # exactly at the cap: every device, nothing reported
    at_cap = DiskSource(fixture_host, DiskOptions(max_devices=2)).collect()
    assert {p.attributes["system.device"] for p in at_cap} == {"sda", "nvme0n1"}


def diskstats_line(major: int, minor: int, name: str, reads: int) -> str:
    return f"{major} {minor} {name} {reads} 0 {reads * 8} 1 0 0 0 0 0 1 1 0 0 0 0 0 0\n"


def block_devices(root, disks: dict[str, list[str]]):
    """/proc/diskstats and sysfs of whole devices and their partitions, as the kernel lays them out: the device
    under /sys/devices, the partition beside its disk's attributes, /sys/class/block/<name> linking to each."""
    lines, devices, classes = [], root / "sys" / "devices" / "virtual" / "block", root / "sys" / "class" / "block"
    shutil.rmtree(classes, ignore_errors=True)
    classes.mkdir(parents=True)
    for major, (disk, partitions) in enumerate(disks.items(), start=240):
        for minor, name in enumerate([disk, *partitions]):
            directory = devices / disk / (name if minor else "")
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "dev").write_text(f"{major}:{minor}\n")
            if minor:
                (directory / "partition").write_text(f"{minor}\n")
            (classes / name).symlink_to(os.path.relpath(directory, classes))
            lines.append(diskstats_line(major, minor, name, reads=100 * (minor + 1)))
    (root / "proc" / "diskstats").write_text("".join(lines))


# xvda1: a whole disk despite its name (Xen guests without a partition table, older EC2 instances)
DISKS = {"md0": ["md0p1"], "nbd0": ["nbd0p1"], "rbd0": ["rbd0p1", "rbd0p2"], "pmem0": ["pmem0p1"],
         "loop0": ["loop0p1"], "xvda1": [], "sdb": ["sdb1"]}


def test_disk_partitions_are_told_by_sysfs_whatever_their_name(host_tree):
    block_devices(host_tree, DISKS)
    points = DiskSource(Host(host_tree), DiskOptions()).collect()
    read = {p.attributes["system.device"]: p.value for p in points
            if p.metric == "system.disk.io" and p.attributes["disk.io.direction"] == "read"}
    assert read == {"md0": 800 * 512, "nbd0": 800 * 512, "rbd0": 800 * 512, "pmem0": 800 * 512,
                    "xvda1": 800 * 512, "sdb": 800 * 512}  # loop0 is excluded by name, loop0p1 as a partition


def test_disk_partitions_option_reports_partitions_through_include_and_exclude(host_tree):
    block_devices(host_tree, DISKS)
    host = Host(host_tree)

    def devices(**options):
        return {p.attributes["system.device"] for p in DiskSource(host, DiskOptions(**options)).collect()}
    assert devices(partitions=True) == {"md0", "md0p1", "nbd0", "nbd0p1", "rbd0", "rbd0p1", "rbd0p2", "pmem0",
                                        "pmem0p1", "loop0p1", "xvda1", "sdb", "sdb1"}
    assert devices(partitions=True, include=(r"^rbd",), exclude=(r"p2$",)) == {"rbd0", "rbd0p1"}
    assert devices(include=(r"^rbd",)) == {"rbd0"}
    assert devices(exclude=()) == {"md0", "nbd0", "rbd0", "pmem0", "loop0", "xvda1", "sdb"}


def test_disk_asks_sysfs_only_about_devices_it_has_not_seen(host_tree, monkeypatch):
    block_devices(host_tree, DISKS)
    host, asked = Host(host_tree), []
    read_sys = host.read_sys

    def counted(relative):
        if relative.startswith("class/block/"):
            asked.append(relative.split("/")[2])
        return read_sys(relative)
    monkeypatch.setattr(host, "read_sys", counted)
    source = DiskSource(host, DiskOptions())
    for _ in range(3):
        with host.cycle():
            source.collect()
    assert sorted(set(asked)) == sorted(name for disk, parts in DISKS.items() for name in [disk, *parts]
                                        if name != "loop0")  # excluded by name before any lookup
    asked.clear()
    diskstats = host_tree / "proc" / "diskstats"
    block_devices(host_tree, {**DISKS, "nbd1": ["nbd1p1"]})
    with host.cycle():
        devices = {p.attributes["system.device"] for p in source.collect()}
    assert set(asked) == {"nbd1", "nbd1p1"} and "nbd1" in devices and "nbd1p1" not in devices
    asked.clear()
    diskstats.write_text("".join(line for line in diskstats.read_text().splitlines(keepends=True)
                                 if " nbd1" not in line))
    with host.cycle():
        source.collect()
    assert asked == []  # a device gone: nothing new to look up


def test_disk_without_sysfs_counts_every_device_and_says_so_once(host_tree, caplog):
    block_devices(host_tree, DISKS)
    shutil.rmtree(host_tree / "sys" / "class" / "block")
    source = DiskSource(Host(host_tree), DiskOptions())
    for _ in range(2):
        assert "md0p1" in {p.attributes["system.device"] for p in source.collect()}
    [warning] = [r.getMessage() for r in caplog.records if "partitions" in r.getMessage()]
    assert "no /sys/class/block entry for md0, md0p1, nbd0 …" in warning


def test_mount_table_parsing_unescapes_and_keeps_the_top_of_stacked_mounts():
    mounts = parse_mounts("/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\n"
                          "/dev/sdb1 /srv ext4 rw 0 0\n/dev/sdc1 /srv xfs ro 0 0\n"
                          "/dev/sdd1 /mnt/a\\011b\\012c\\134d ext4 rw 0 0\n")
    assert [(m.device, m.mountpoint, m.fstype) for m in mounts] == [
        ("/dev/sda1", "/mnt/my disk", "ext4"), ("/dev/sdc1", "/srv", "xfs"), ("/dev/sdd1", "/mnt/a\tb\nc\\d", "ext4")]
    assert mounts[1].attributes["system.filesystem.mode"] == "ro"


def test_filesystem_states_add_up_to_the_limit():
    Stat = namedtuple("Stat", "f_frsize f_blocks f_bfree f_bavail f_files f_ffree")
    mount = Mount("/dev/sda1", "/", "ext4", ("rw",))
    points = statvfs_points(mount, Stat(4096, 1000, 300, 250, 500, 400))
    usage = by_attributes(points, "system.filesystem.usage", "system.filesystem.state")
    assert usage == {"used": 700 * 4096, "free": 250 * 4096, "reserved": 50 * 4096}
    assert values(points, "system.filesystem.limit") == [1000 * 4096] == [sum(usage.values())]
    assert values(points, "system.filesystem.utilization") == [700 / 950]
    assert by_attributes(points, "system.filesystem.inodes.usage", "system.filesystem.state") == {
        "used": 100, "free": 400}
    half_full = statvfs_points(mount, Stat(4096, 1000, 500, 500, 500, 400))
    assert values(half_full, "system.filesystem.utilization") == [0.5]


def test_filesystem_reads_the_host_mount_table_and_measures_under_the_host_root(fixture_host):
    points = FilesystemSource(fixture_host, FilesystemOptions()).collect()
    mounted = {p.attributes["system.filesystem.mountpoint"]: p.attributes for p in points}
    # proc, tmpfs and the docker overlay are excluded by default
    assert set(mounted) == {"/", "/data"}
    assert mounted["/data"]["system.filesystem.mode"] == "ro"
    assert mounted["/data"]["system.device"] == "/dev/nvme0n1p1"
    root_limit = [p.value for p in points if p.metric == "system.filesystem.limit"
                  and p.attributes["system.filesystem.mountpoint"] == "/"]
    stat = os.statvfs(fixture_host.root)
    assert root_limit == [stat.f_blocks * stat.f_frsize]


def test_filesystem_default_excludes_a_mount_point_and_what_is_under_it_not_names_that_start_alike(tmp_path):
    excluded = ("/dev", "/dev/shm", "/proc/sys/fs/binfmt_misc", "/sys/fs/bpf", "/run/credentials/getty.service",
                "/var/lib/docker/overlay2/1a2b/merged", "/var/lib/kubelet/pods/9f/volumes")
    kept = ("/", "/sysroot", "/system", "/devdata", "/proc-archive", "/run/credentials2", "/var/lib/docker")
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/mounts").write_text("".join(f"/dev/sda1 {path} ext4 rw 0 0\n" for path in excluded + kept))
    for path in kept:
        (tmp_path / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    points = FilesystemSource(Host(tmp_path), FilesystemOptions()).collect()
    assert {p.attributes["system.filesystem.mountpoint"] for p in points} == set(kept)


def test_filesystem_that_cannot_be_measured_costs_only_its_own_points(tmp_path):
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/mounts").write_text("/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 /gone ext4 rw 0 0\n")
    from collector.sources.base import PartialFailure
    with pytest.raises(PartialFailure) as partial:
        FilesystemSource(Host(tmp_path), FilesystemOptions()).collect()
    assert {p.attributes["system.filesystem.mountpoint"] for p in partial.value.points} == {"/"}
    assert "/gone" in str(partial.value)


def test_network_counters_from_the_host_namespace(fixture_host):
    points = NetworkSource(fixture_host, NetworkOptions()).collect()
    assert {p.attributes["network.interface.name"] for p in points} == {"eth0"}  # lo and veth excluded
    eth0 = {(p.metric, p.attributes["network.io.direction"]): p.value for p in points
            if "network.io.direction" in p.attributes}
    assert eth0 == {
        ("system.network.io", "receive"): 1_000_000, ("system.network.packet.count", "receive"): 2000,
        ("system.network.errors", "receive"): 3, ("system.network.packet.dropped", "receive"): 4,
        ("system.network.io", "transmit"): 500_000, ("system.network.packet.count", "transmit"): 1500,
        ("system.network.errors", "transmit"): 5, ("system.network.packet.dropped", "transmit"): 6}


def test_network_link_state_speed_and_mtu_from_sysfs(fixture_host):
    points = NetworkSource(fixture_host, NetworkOptions()).collect()
    link = {"hw.id": "eth0", "hw.name": "eth0", "network.interface.name": "eth0",
            "hw.network.physical_address": "52-54-00-12-34-56", "hw.parent": "0000:00:03.0"}
    assert [(p.metric, dict(p.attributes), p.value) for p in points if p.metric.startswith("hw.")] == [
        ("hw.network.up", link, 1), ("hw.network.bandwidth.limit", link, 10_000_000_000 // 8)]
    assert values(points, "system.network.mtu") == [9000]


def test_an_interface_that_is_administratively_down_or_without_speed_has_no_link_points(tmp_path):
    from collector.sources.network import link_points
    directory = tmp_path / "sys/class/net/ifb0"
    directory.mkdir(parents=True)
    (directory / "mtu").write_text("1500\n")
    (directory / "speed").write_text("-1\n")  # virtual NICs: unknown speed; no carrier file: admin down
    assert [(p.metric, p.value) for p in link_points(Host(tmp_path), "ifb0")] == [("system.network.mtu", 1500)]


def test_link_physical_address_is_in_the_semantic_conventions_form_as_host_mac_is(tmp_path):
    from collector.sources.network import link_points
    directory = tmp_path / "sys/class/net/eth0"
    directory.mkdir(parents=True)
    (directory / "address").write_text("02:fc:00:00:00:01\n")
    (directory / "carrier").write_text("1\n")
    [up] = link_points(Host(tmp_path), "eth0")
    assert up.attributes["hw.network.physical_address"] == "02-FC-00-00-00-01"


@pytest.mark.parametrize("address, speed, bandwidth", [
    (None, "0", []),  # no address file; a speed of 0: none negotiated
    ("00:00:00:00:00:00\n", "1", [125_000]),  # a tunnel's all-zero address is no address; 1 Mbit/s is 125 kB/s
])
def test_link_without_a_real_address_or_speed(tmp_path, address, speed, bandwidth):
    from collector.sources.network import link_points
    directory = tmp_path / "sys/class/net/tun0"
    directory.mkdir(parents=True)
    if address:
        (directory / "address").write_text(address)
    (directory / "carrier").write_text("1\n")
    (directory / "speed").write_text(speed)
    points = link_points(Host(tmp_path), "tun0")
    link = {"hw.id": "tun0", "hw.name": "tun0", "network.interface.name": "tun0"}
    assert [dict(p.attributes) for p in points if p.metric == "hw.network.up"] == [link]
    assert values(points, "hw.network.bandwidth.limit") == bandwidth
    # an integer point, as sysfs gives it
    assert [type(value) for value in values(points, "hw.network.bandwidth.limit")] == [int] * len(bandwidth)


def test_interfaces_over_max_interfaces_are_left_out_and_named(fixture_host):
    with pytest.raises(PartialFailure) as capped:
        NetworkSource(fixture_host, NetworkOptions(exclude=(), max_interfaces=2)).collect()
    assert str(capped.value) == "3 interfaces, only max_interfaces=2 kept"
    assert {p.attributes["network.interface.name"] for p in capped.value.points} == {"lo", "eth0"}
    assert len(capped.value.points) == 2 * 8 + 3  # lo's and eth0's counters; eth0's link and MTU (lo has no sysfs here)


def connections(host) -> dict[tuple[str, str | None], int]:
    """system.network.connection.count by (transport, state)."""
    points = NetworkSource(host, NetworkOptions(connections=True)).collect()
    return {(p.attributes["network.transport"], p.attributes.get("network.connection.state")): p.value
            for p in points if p.metric == "system.network.connection.count"}


def test_network_connections_by_transport_and_state_are_opt_in(fixture_host):
    assert connections(fixture_host) == {("tcp", "listen"): 1, ("tcp", "established"): 2, ("tcp", "time_wait"): 1,
                                         ("udp", None): 1}
    assert not values(NetworkSource(fixture_host, NetworkOptions()).collect(), "system.network.connection.count")


def test_ipv6_sockets_count_with_their_transport_and_an_unknown_state_without_one(host_tree):
    (host_tree / "proc" / "1" / "net" / "tcp6").write_text(
        "  sl  local_address                         remote_address                        st tx_queue\n"
        "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000\n"
        "   1: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C350 0C 00000000:00000000\n")
    assert connections(Host(host_tree)) == {("tcp", "listen"): 2, ("tcp", "established"): 2, ("tcp", "time_wait"): 1,
                                            ("tcp", None): 1, ("udp", None): 1}  # 0C: a state newer than the table


# include/net/tcp_states.h: the state column of /proc/net/tcp, the kernel's name, semconv network.connection.state
KERNEL_TCP_STATES = [
    ("01", "TCP_ESTABLISHED", "established"), ("02", "TCP_SYN_SENT", "syn_sent"),
    ("03", "TCP_SYN_RECV", "syn_received"), ("04", "TCP_FIN_WAIT1", "fin_wait_1"),
    ("05", "TCP_FIN_WAIT2", "fin_wait_2"), ("06", "TCP_TIME_WAIT", "time_wait"), ("07", "TCP_CLOSE", "closed"),
    ("08", "TCP_CLOSE_WAIT", "close_wait"), ("09", "TCP_LAST_ACK", "last_ack"), ("0A", "TCP_LISTEN", "listen"),
    ("0B", "TCP_CLOSING", "closing")]


def test_every_tcp_state_of_the_kernel_is_counted_as_its_semconv_state(host_tree):
    assert {state for _, _, state in KERNEL_TCP_STATES} == semconv.ENUMS["network.connection.state"]
    # state n held by n sockets: a state counted as another one shows
    lines = [f"{i:4}: 0100007F:1F90 0100007F:{i:04X} {code} 00000000:00000000"
             for i, (code, _, _) in enumerate(KERNEL_TCP_STATES, 1) for _ in range(int(code, 16))]
    (host_tree / "proc/1/net/tcp").write_text("  sl  local_address rem_address   st tx_queue rx_queue\n"
                                              + "\n".join(lines) + "\n")
    assert connections(Host(host_tree)) == {
        **{("tcp", state): int(code, 16) for code, _, state in KERNEL_TCP_STATES}, ("udp", None): 1}


@pytest.mark.parametrize("table", ["tcp", "udp6"])
def test_a_socket_table_that_cannot_be_read_is_an_error_but_a_missing_ipv6_one_is_not(host_tree, table):
    def outcomes():
        telemetry = AgentTelemetry()
        Collection([NetworkSource(Host(host_tree), NetworkOptions(connections=True))], telemetry).refresh()
        return telemetry.sources["network"].outcomes

    assert outcomes() == {"success": 1}  # the fixture has no tcp6 or udp6: IPv6 is off
    (host_tree / "proc/1/net" / table).unlink(missing_ok=True)
    (host_tree / "proc/1/net" / table).mkdir()  # unreadable (as root, a mode would not stop the read)
    assert outcomes() == {"error": 1}


def test_tcp_stack_counters_and_sockets_from_the_host_namespace(fixture_host):
    from collector.sources.netstat import NetstatSource
    points = NetstatSource(fixture_host, SourceOptions()).collect()
    assert by_attributes(points, "system.network.tcp.segments", "network.io.direction") == {
        "receive": 51000, "transmit": 49000}
    assert {p.metric: p.value for p in points if not p.attributes} == {
        "system.network.tcp.retransmits": 160, "system.network.tcp.listen.overflows": 7,
        "system.network.tcp.listen.drops": 9}
    # sockstat's IPv4 sockets and sockstat6's IPv6 ones (TCP 24 + TCP6 9, UDP 4 + UDP6 2)
    assert by_attributes(points, "system.network.socket.count", "network.transport") == {"tcp": 33, "udp": 6}


def test_sockets_of_a_host_without_ipv6_are_its_ipv4_ones(host_tree):
    from collector.sources.netstat import NetstatSource
    (host_tree / "proc" / "1" / "net" / "sockstat6").unlink()  # ipv6.disable=1: no sockstat6
    points = NetstatSource(Host(host_tree), SourceOptions()).collect()
    assert by_attributes(points, "system.network.socket.count", "network.transport") == {"tcp": 24, "udp": 4}


def test_process_counts_by_state_created_and_uptime(fixture_host):
    points = ProcessesSource(fixture_host, SourceOptions()).collect()
    assert by_attributes(points, "system.process.count", "process.state") == {
        "running": 1, "sleeping": 5, "stopped": 0, "defunct": 1}
    assert values(points, "system.process.created") == [31337]
    assert values(points, "system.uptime") == [12345.67]
    assert values(points, "system.process.limit") == [63304]  # threads-max, below pid_max


def test_every_process_is_counted_whatever_its_state_letter(fixture_host, tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    before = Counter(by_attributes(ProcessesSource(Host(root), SourceOptions()).collect(),
                                   "system.process.count", "process.state"))
    letters = "RSDZTtWXxKPIQ"  # every letter of proc(5), and Q, which no kernel uses yet
    for pid, letter in enumerate(letters, 900):
        (root / "proc" / str(pid)).mkdir()
        (root / "proc" / str(pid) / "stat").write_text(f"{pid} (p {letter}) {letter} 1 {pid} {pid} 0 -1\n")
    for pid in (990, 991):  # exited between the listing and the reading
        (root / "proc" / str(pid)).mkdir()
    after = Counter(by_attributes(ProcessesSource(Host(root), SourceOptions()).collect(),
                                  "system.process.count", "process.state"))
    added = dict(after - before)
    assert added == {"running": 2, "sleeping": 6, "stopped": 2, "defunct": 3}
    assert sum(added.values()) == len(letters)


def test_linux_extras(fixture_host):
    pressure = {(p.metric, p.attributes["system.pressure.stall_type"]): p.value
                for p in PressureSource(fixture_host, SourceOptions()).collect()}
    assert len(pressure) == 3 * 2 * 4
    assert pressure[("system.cpu.linux.pressure.total", "some")] == 2.5
    assert pressure[("system.io.linux.pressure.total", "full")] == 1.5
    assert [pressure[(f"system.cpu.linux.pressure.{w}", "some")] for w in ("10s", "1m", "5m")] == [0.01, 0.005, 0.001]
    conntrack = ConntrackSource(fixture_host, SourceOptions()).collect()
    assert {p.metric: p.value for p in conntrack} == {
        "system.network.conntrack.count": 1234, "system.network.conntrack.max": 65536}
    descriptors = FileDescriptorsSource(fixture_host, SourceOptions()).collect()
    assert {p.metric: p.value for p in descriptors} == {
        "system.linux.file_descriptor.usage": 4096, "system.linux.file_descriptor.limit": 9223372036854775807}
    temperatures = TemperatureSource(fixture_host, SourceOptions()).collect()
    assert [(dict(p.attributes), p.value) for p in temperatures] == [
        ({"hw.id": "coretemp.coretemp.0.temp1", "hw.name": "coretemp Package id 0",
          "hw.sensor_location": "Package id 0", "hw.parent": "coretemp.0"}, 45.5),
        ({"hw.id": "coretemp.coretemp.0.temp2", "hw.name": "coretemp temp2", "hw.parent": "coretemp.0"}, 38.0)]


def test_file_handles_in_use_are_the_allocated_less_the_free_ones(host_tree):
    (host_tree / "proc" / "sys" / "fs" / "file-nr").write_text("5000\t904\t100000\n")
    assert {p.metric: p.value for p in FileDescriptorsSource(Host(host_tree), SourceOptions()).collect()} == {
        "system.linux.file_descriptor.usage": 4096, "system.linux.file_descriptor.limit": 100000}


def test_conntrack_entries_on_a_one_cpu_machine_and_without_the_module(host_tree):
    stats = host_tree / "proc" / "1" / "net" / "stat" / "nf_conntrack"
    stats.write_text("entries  clashres found new\n0000002a  00000000 00000000 00000000\n")  # one line per CPU
    points = ConntrackSource(Host(host_tree), SourceOptions()).collect()
    assert {p.metric: p.value for p in points} == {
        "system.network.conntrack.count": 42, "system.network.conntrack.max": 65536}
    stats.unlink()
    with pytest.raises(Unavailable) as missing:
        ConntrackSource(Host(host_tree), SourceOptions()).collect()
    assert str(missing.value) == f"{stats} is missing"


@pytest.mark.parametrize("source, message", [
    (PressureSource, "{root}/proc/pressure/cpu is missing"),
    (ConntrackSource, "{root}/proc/1/net/stat/nf_conntrack is missing"),
    (TemperatureSource, "no temperature sensors under {root}/sys/class/hwmon")])
def test_missing_kernel_features_make_a_source_unavailable_not_failed(tmp_path, source, message):
    (tmp_path / "proc").mkdir()
    with pytest.raises(Unavailable) as unavailable:
        source(Host(tmp_path), SourceOptions()).collect()
    assert str(unavailable.value) == message.format(root=tmp_path)


def test_a_sensor_that_cannot_be_read_is_left_out_and_a_chip_without_device_is_named_by_its_directory(host_tree):
    hwmon = host_tree / "sys" / "class" / "hwmon"
    (hwmon / "hwmon0" / "temp1_input").write_text("")  # asleep: the read gives nothing
    (hwmon / "hwmon1").mkdir()  # a virtual chip: no device link
    (hwmon / "hwmon1" / "name").write_text("acpitz\n")
    (hwmon / "hwmon1" / "temp1_input").write_text("27800\n")
    (hwmon / "hwmon1" / "fan1_input").write_text("1200\n")  # a fan's speed and a voltage: not temperatures
    (hwmon / "hwmon1" / "in0_input").write_text("1100\n")
    (hwmon / "hwmon2").write_text("")  # not a chip's directory
    points = TemperatureSource(Host(host_tree), SourceOptions()).collect()
    assert [(dict(p.attributes), p.value) for p in points] == [
        ({"hw.id": "coretemp.coretemp.0.temp2", "hw.name": "coretemp temp2", "hw.parent": "coretemp.0"}, 38.0),
        ({"hw.id": "acpitz.hwmon1.temp1", "hw.name": "acpitz temp1"}, 27.8)]


def test_non_utf8_interface_names_become_valid_text(tmp_path):
    (tmp_path / "proc/1/net").mkdir(parents=True)
    header = "Inter-|\n face |\n"
    (tmp_path / "proc/1/net/dev").write_bytes(
        header.encode() + b"eth\xff0: " + b"1 " * 16 + b"\n")
    points = NetworkSource(Host(tmp_path), NetworkOptions()).collect()
    assert {p.attributes["network.interface.name"] for p in points} == {"eth\\xff0"}
    for point in points:
        point.attributes["network.interface.name"].encode("utf-8")


def test_a_hung_filesystem_is_skipped_until_it_answers_and_the_others_are_measured(tmp_path):
    import threading

    from collector.sources.base import PartialFailure
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/mounts").write_text("/dev/sda1 / ext4 rw 0 0\nserver:/export /nfs nfs4 rw 0 0\n")
    hung = threading.Event()
    calls = []

    def statvfs(path):
        calls.append(str(path))
        if str(path).endswith("/nfs"):
            hung.wait()  # a dead NFS server: statfs blocks until it comes back
        return os.statvfs(tmp_path)

    source = FilesystemSource(Host(tmp_path), FilesystemOptions(statfs_timeout=0.2))
    source.statvfs = statvfs
    try:
        for _ in range(2):
            with pytest.raises(PartialFailure) as partial:
                source.collect()
            assert {p.attributes["system.filesystem.mountpoint"] for p in partial.value.points} == {"/"}
            assert "/nfs: statfs did not answer within 0.2s" in str(partial.value)
        assert sum(c.endswith("/nfs") for c in calls) == 1, "a stuck mount must not take another thread"
    finally:
        hung.set()
    source._stuck["/nfs"].finished.wait(5)
    mounted = {p.attributes["system.filesystem.mountpoint"] for p in source.collect()}
    assert mounted == {"/", "/nfs"}


def test_statfs_calls_share_one_thread_from_collection_to_collection_until_one_is_stuck(tmp_path):
    import threading

    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/mounts").write_text("/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 /data ext4 rw 0 0\n")
    hung, threads = threading.Event(), []

    def statvfs(path):
        threads.append(threading.get_ident())
        # a daemon: a call stuck on a dead server must not hold up the agent's exit; named in thread dumps
        assert (threading.current_thread().daemon, threading.current_thread().name) == (True, "statfs")
        if hung.is_set() and str(path).endswith("/data"):
            hung.wait()
            threading.Event().wait(5)  # stuck past the timeout
        return os.statvfs(tmp_path)

    source = FilesystemSource(Host(tmp_path), FilesystemOptions(statfs_timeout=0.2))
    source.statvfs = statvfs
    for _ in range(3):
        assert len(source.collect()) == 2 * 7
    assert len(threads) == 6 and len(set(threads)) == 1 and threads[0] != threading.get_ident()
    hung.set()
    for _ in range(2):  # / on the kept thread, then /data stuck on it; / on a new thread, /data skipped while stuck
        with pytest.raises(PartialFailure) as partial:
            source.collect()
        assert {p.attributes["system.filesystem.mountpoint"] for p in partial.value.points} == {"/"}
    assert len(threads) == 9 and len(set(threads)) == 2 and threads[-1] != threads[0]


def test_two_chips_of_the_same_name_are_told_apart_by_their_device(tmp_path):
    for hwmon, device in (("hwmon1", "nvme0"), ("hwmon2", "nvme1")):
        (tmp_path / "sys/devices" / device).mkdir(parents=True)
        chip = tmp_path / "sys/class/hwmon" / hwmon
        chip.mkdir(parents=True)
        (chip / "device").symlink_to(tmp_path / "sys/devices" / device)
        (chip / "name").write_text("nvme\n")
        (chip / "temp1_input").write_text("40000\n")
    (tmp_path / "proc").mkdir()
    ids = [p.attributes["hw.id"] for p in TemperatureSource(Host(tmp_path), SourceOptions()).collect()]
    assert ids == ["nvme.nvme0.temp1", "nvme.nvme1.temp1"]


def test_top_processes_by_memory_from_the_hosts_proc(fixture_host):
    points = TopProcessesSource(fixture_host, TopProcessesOptions(enabled=True, count=2, by="memory")).collect()
    # ranked by stat's resident size (one read per process), reported from statm's (the kernel's summed counter)
    assert by_attributes(points, "process.memory.usage", "process.pid") == {200: 25100 * PAGE, 101: 5020 * PAGE}
    python = [p for p in points if p.attributes["process.pid"] == 200]
    # btime 1700000000 + 1000000 ticks of 1/100 s since boot
    assert {p.attributes["process.creation.time"] for p in python} == {"2023-11-15T01:00:00.000Z"}
    assert {p.attributes["process.executable.name"] for p in python} == {"python3"}
    assert by_attributes(python, "process.cpu.time", "cpu.mode") == {"user": 2.5, "system": 0.5}
    assert values(python, "process.memory.virtual") == [900_000_000]
    assert values(python, "process.thread.count") == [8]
    assert values(python, "process.unix.file_descriptor.count") == [30]


def test_a_top_process_s_resident_size_is_statm_s_or_stat_s_without_it(host_tree):
    # Linux 6.2+ writes stat's rss from the per-CPU counters unsummed: up to hundreds of KiB below statm's and
    # VmRSS (psutil reads statm). A process that exits between the scan and its statm keeps its stat's value.
    (host_tree / "proc/200/statm").unlink()
    points = TopProcessesSource(Host(host_tree), TopProcessesOptions(enabled=True, count=2, by="memory")).collect()
    assert by_attributes(points, "process.memory.usage", "process.pid") == {200: 25000 * PAGE, 101: 5020 * PAGE}


def test_top_processes_by_cpu_rank_the_cpu_used_since_the_previous_collection(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    source = TopProcessesSource(Host(root), TopProcessesOptions(enabled=True, count=1))
    source.collect()  # the baseline: every process new
    stat = root / "proc" / "100" / "stat"
    stat.write_text(stat.read_text().replace(" 500 200 ", " 900 200 "))  # nginx: 4 s more user time
    points = source.collect()
    assert {p.attributes["process.pid"] for p in points} == {100}
    shares = by_attributes(points, "process.cpu.utilization", "cpu.mode")
    assert shares["user"] > 0 and shares["system"] == 0


def test_top_processes_first_collection_ranks_by_the_cpu_used_since_start_up(host_tree, monkeypatch):
    # a baseline taken when the source is built: the first collection (exported by `run`) has real shares
    clock = iter([100.0, 110.0])  # built, collected: 10 s
    monkeypatch.setattr(TopProcessesSource, "clock", staticmethod(lambda: next(clock)), raising=False)
    source = TopProcessesSource(Host(host_tree), TopProcessesOptions(enabled=True, count=1))
    stat = host_tree / "proc/100/stat"
    stat.write_text(stat.read_text().replace(" 500 200 ", " 900 200 "))  # nginx: 4 s of user time
    points = source.collect()
    assert {p.attributes["process.pid"] for p in points} == {100}
    # 4 s of the 2 CPUs' 20 s
    assert by_attributes(points, "process.cpu.utilization", "cpu.mode") == pytest.approx({"user": 0.2, "system": 0})


def test_top_processes_rank_a_process_started_since_the_previous_collection_by_its_cpu_since_its_start(
        host_tree, monkeypatch):
    clock = iter([0.0, 10.0, 20.0])
    monkeypatch.setattr(TopProcessesSource, "clock", staticmethod(lambda: next(clock)), raising=False)
    source = TopProcessesSource(Host(host_tree), TopProcessesOptions(enabled=True, count=1))
    source.collect()
    stat = host_tree / "proc/100/stat"
    stat.write_text(stat.read_text().replace(" 500 200 ", " 700 200 "))  # nginx: 2 s of the 2 CPUs' 20 s
    # started 5 s ago (uptime 12345.67 s), 3 s of user time since: 3 s of the 2 CPUs' 10 s of its life
    (host_tree / "proc/300").mkdir()
    started = round((12345.67 - 5) * HZ)
    (host_tree / "proc/300/stat").write_text(f"300 (burn) R 1 300 300 0 -1 0 0 0 0 0 {3 * HZ} 0 0 0 20 0 1 0 "
                                             f"{started} 4096 1 0\n")
    points = source.collect()
    assert {p.attributes["process.pid"] for p in points} == {300}
    assert by_attributes(points, "process.cpu.utilization", "cpu.mode") == pytest.approx({"user": 0.3, "system": 0})


def one_process_root(root, comm: str, cmdline: bytes = b"", exe: bytes | None = None) -> Host:
    """A host root whose /proc holds one process, 7; `exe` is the target of its /proc/7/exe link (none: the link
    cannot be read, as a kernel thread's or, without CAP_SYS_PTRACE, another user's process's)."""
    process = root / "proc" / "7"
    process.mkdir(parents=True)
    (root / "proc" / "stat").write_text("cpu  1 0 1 10\ncpu0 1 0 1 10\nbtime 1700000000\n")
    (process / "stat").write_text(f"7 ({comm}) S 1 7 7 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 4096 1 0\n")
    (process / "cmdline").write_bytes(cmdline)
    if exe is not None:
        os.symlink(exe, os.fsencode(process / "exe"))  # dangling: only the link's text is read
    return Host(root)


@pytest.mark.parametrize("comm, cmdline, name", [
    ("gnome-keyring-d", b"/usr/bin/gnome-keyring-daemon\0--start\0", "gnome-keyring-daemon"),
    ("kworker/0:1-eve", b"", "kworker/0:1-eve"),  # a kernel thread: no command line
    ("postgres: walwr", b"postgres: walwriter   \0", "postgres: walwr"),  # setproctitle: not the program
    ("chrome-sandbox-", b"/opt/chrome/chrome-sandbox-x --type=renderer", "chrome-sandbox-x"),  # spaces, no NULs
    ("mutmut: collect", b"mutmut: collector.sources.cpu\0\0\0", "mutmut: collector.sources.cpu"),  # padded title
    ("systemd-journal", b"/lib/systemd/systemd-journald\0", "systemd-journald"),  # one argument
    ("gnome-keyring-d", b"/usr/bin/gnome-keyring-daemon", "gnome-keyring-daemon"),  # rewritten: no NUL at all
    ("caf\\xe9-daemon-lo", b"/usr/bin/caf\xe9-daemon-long\0", "caf\\xe9-daemon-long"),  # bytes that are not UTF-8
])
def test_a_name_the_kernel_cut_is_the_programs_where_it_starts_so(tmp_path, comm, cmdline, name):
    """Where /proc/<pid>/exe cannot be read: the kernel's name, extended from the command line (psutil's)."""
    points = TopProcessesSource(one_process_root(tmp_path, comm, cmdline), TopProcessesOptions(enabled=True)).collect()
    assert {p.attributes["process.executable.name"] for p in points} == {name}


# semconv v1.44.0 process.executable.name: "On Linux based systems, this SHOULD be set to the base name of the
# target of /proc/[pid]/exe."
@pytest.mark.parametrize("comm, cmdline, exe, name", [
    ("python3", b"python3\0-m\0collector\0", b"/usr/bin/python3.11", "python3.11"),  # not the name it ran as
    ("postgres: walwr", b"postgres: walwriter   \0", b"/usr/lib/postgresql/16/bin/postgres", "postgres"),
    ("gnome-keyring-d", b"/usr/bin/gnome-keyring-daemon\0", b"/usr/bin/gnome-keyring-daemon", "gnome-keyring-daemon"),
    # the binary was replaced (a package upgrade) while the process runs: the kernel marks the old one deleted;
    # the process renamed itself (prctl PR_SET_NAME)
    ("connection", b"/usr/sbin/mysqld\0", b"/usr/sbin/mysqld (deleted)", "mysqld"),
    ("app", b"./app\0", b"/srv/caf\xe9/caf\xe9-app", "caf\\xe9-app"),  # bytes that are not UTF-8
])
def test_the_executable_name_is_the_base_name_of_the_exe_link(tmp_path, comm, cmdline, exe, name):
    host = one_process_root(tmp_path, comm, cmdline, exe)
    points = TopProcessesSource(host, TopProcessesOptions(enabled=True)).collect()
    assert {p.attributes["process.executable.name"] for p in points} == {name}


def test_without_a_readable_exe_link_the_name_is_the_kernels(tmp_path, monkeypatch):
    host = one_process_root(tmp_path, "gnome-keyring-d", b"/usr/bin/gnome-keyring-daemon\0", b"/usr/bin/other")

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(os, "readlink", denied)  # another user's process without CAP_SYS_PTRACE
    points = TopProcessesSource(host, TopProcessesOptions(enabled=True)).collect()
    assert {p.attributes["process.executable.name"] for p in points} == {"gnome-keyring-daemon"}


def counted_readlink(monkeypatch, deny: bool = False) -> Counter:
    """os.readlink counting its calls by pid; `deny`: every call fails as for another user's process."""
    calls, readlink = Counter(), os.readlink

    def counting(path, *args, **kwargs):
        calls[int(os.fsdecode(path).split("/")[-2])] += 1
        if deny:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return readlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "readlink", counting)
    return calls


def add_process(root, pid: int, comm: str, start_ticks: int = 100, exe: bytes | None = None):
    process = root / "proc" / str(pid)
    process.mkdir(parents=True, exist_ok=True)
    (process / "stat").write_text(f"{pid} ({comm}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 {start_ticks} "
                                  "4096 1 0\n")
    (process / "cmdline").write_bytes(b"")
    if exe is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(process / "exe")
        os.symlink(exe, os.fsencode(process / "exe"))


def names(points) -> dict[int, str]:
    return {p.attributes["process.pid"]: p.attributes["process.executable.name"] for p in points}


@pytest.mark.parametrize("deny, name", [(False, "python3.11"), (True, "gnome-keyring-daemon")])
def test_a_top_process_s_name_is_resolved_once(tmp_path, monkeypatch, deny, name):
    # another user's process (deny) fails the readlink every time, then reads its command line: once is enough
    host = one_process_root(tmp_path, "gnome-keyring-d", b"/usr/bin/gnome-keyring-daemon\0", b"/usr/bin/python3.11")
    calls = counted_readlink(monkeypatch, deny)
    source = TopProcessesSource(host, TopProcessesOptions(enabled=True))
    assert [names(source.collect()) for _ in range(3)] == [{7: name}] * 3
    assert calls == {7: 1}


def test_a_top_process_that_execs_or_whose_pid_is_reused_is_named_again(tmp_path, monkeypatch):
    add_process(tmp_path, 8, "bash", exe=b"/usr/bin/bash")
    host = one_process_root(tmp_path, "bash", b"", b"/usr/bin/bash")
    calls = counted_readlink(monkeypatch)
    source = TopProcessesSource(host, TopProcessesOptions(enabled=True))
    assert names(source.collect()) == {7: "bash", 8: "bash"}
    add_process(tmp_path, 7, "python3", exe=b"/usr/bin/python3.11")  # exec(): the kernel's name changes
    add_process(tmp_path, 8, "bash", start_ticks=200, exe=b"/usr/bin/dash")  # 8 exited, a new 8 started
    (tmp_path / "proc" / "uptime").write_text("10.00 15.00\n")
    assert names(source.collect()) == {7: "python3.11", 8: "dash"}
    assert calls == {7: 2, 8: 2}


def test_a_top_process_that_execs_a_program_of_the_same_kernel_name_is_named_again(tmp_path, monkeypatch):
    # a wrapper script called python3 exec()s /usr/bin/python3: comm stays "python3", the program's text moves
    host = one_process_root(tmp_path, "python3", b"", b"/usr/bin/dash")
    stat = tmp_path / "proc" / "7" / "stat"
    fields = "S 1 7 7 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 4096 1 0 {start} {end} 0"  # fields 26, 27: the code
    stat.write_text(f"7 (python3) {fields.format(start=4321280, end=4400000)}\n")
    calls = counted_readlink(monkeypatch)
    source = TopProcessesSource(host, TopProcessesOptions(enabled=True))
    assert names(source.collect()) == {7: "dash"}
    os.unlink(tmp_path / "proc" / "7" / "exe")
    os.symlink(b"/usr/bin/python3.11", os.fsencode(tmp_path / "proc" / "7" / "exe"))
    stat.write_text(f"7 (python3) {fields.format(start=94305310244864, end=94305312000000)}\n")
    assert names(source.collect()) == {7: "python3.11"}
    assert calls == {7: 2}


def test_the_top_processes_names_are_kept_only_for_processes_alive(tmp_path, monkeypatch):
    for pid in (8, 9):
        add_process(tmp_path, pid, f"worker{pid}", exe=f"/usr/bin/worker{pid}".encode())
    host = one_process_root(tmp_path, "bash", b"", b"/usr/bin/bash")
    source = TopProcessesSource(host, TopProcessesOptions(enabled=True))
    source.collect()
    assert len(source._names) == 3
    for pid in (8, 9):
        shutil.rmtree(tmp_path / "proc" / str(pid))
    assert names(source.collect()) == {7: "bash"}
    assert len(source._names) == 1


def test_top_process_identity_and_cpu_by_mode():
    from collector.sources.top_processes import process_points
    Cpu, Memory = namedtuple("Cpu", "user system iowait"), namedtuple("Memory", "rss vms")
    info = {"pid": 4242, "name": "postgres", "create_time": 1_700_000_000.25, "cpu_times": Cpu(7.5, 2.5, 9.0),
            "memory_info": Memory(1000, 5000), "num_threads": 3, "num_fds": None}
    points = process_points(info, {"user": 7.5, "system": 2.5}, {"user": 0.25, "system": 0.125})
    identity = {"process.pid": 4242, "process.creation.time": "2023-11-14T22:13:20.250Z",
                "process.executable.name": "postgres"}
    assert all(identity.items() <= dict(p.attributes).items() for p in points)
    assert by_attributes(points, "process.cpu.time", "cpu.mode") == {"user": 7.5, "system": 2.5}
    assert by_attributes(points, "process.cpu.utilization", "cpu.mode") == {"user": 0.25, "system": 0.125}
    assert values(points, "process.memory.usage") == [1000]
    assert values(points, "process.unix.file_descriptor.count") == []  # another user's fds: not listable


def test_filesystems_past_a_failing_or_hung_mount_are_measured_and_the_cap_is_named(tmp_path):
    import time
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/mounts").write_bytes(
        b"server:/export /slow nfs4 rw 0 0\n/dev/sda2 /missing ext4 rw 0 0\n/dev/sda1 /a ext4 rw 0 0\n"
        b"/dev/sda9 /var/lib/docker/overlay2 ext4 rw 0 0\n/dev/sda5 /m\xffx ext4 ro 0 0\n/dev/sda3 /b ext4 rw 0 0\n")
    for directory in (b"slow", b"a", b"m\xffx", b"b"):
        os.mkdir(os.path.join(bytes(tmp_path), directory))

    def statvfs(path):
        if str(path).endswith("/slow"):
            time.sleep(0.5)  # a hung server, for longer than the timeout
        return os.statvfs(path)

    source = FilesystemSource(Host(tmp_path), FilesystemOptions(statfs_timeout=0.1, max_filesystems=4))
    source.statvfs = statvfs
    with pytest.raises(PartialFailure) as partial:
        source.collect()
    assert str(partial.value) == ("/slow: statfs did not answer within 0.1s (hung network filesystem?); "
                                  "/missing: No such file or directory; 5 filesystems, only max_filesystems=4 kept")
    # the docker mount is excluded by its mount point; a name that is not UTF-8 is measured and shown escaped
    assert {(p.attributes["system.filesystem.mountpoint"], p.attributes["system.filesystem.mode"])
            for p in partial.value.points} == {("/a", "rw"), ("/m\\xffx", "ro")}


def test_proc_stat_without_a_btime_line_is_an_error():
    from collector.sources.top_processes import boot_time
    with pytest.raises(ValueError, match=r"^no 'btime' line in /proc/stat$"):
        boot_time("cpu  1 2 3 4\n")
