"""Host: every read of the host goes through it, and it leaves no process-wide state behind."""
import os
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from collector.host import Host, raise_open_file_limit
from collector.sources.base import SourceOptions
from collector.sources.processes import ProcessesSource
from collector.sources.top_processes import TopProcessesOptions, TopProcessesSource
from tests.collector.conftest import FIXTURE_ROOT


def test_top_processes_read_the_hosts_procfs_and_leave_psutil_on_this_machines():
    before = psutil.PROCFS_PATH
    source = TopProcessesSource(Host(FIXTURE_ROOT), TopProcessesOptions(enabled=True, count=2, by="memory"))
    assert {p.attributes["process.pid"] for p in source.collect()} == {200, 101}  # the fixture's largest
    assert before == psutil.PROCFS_PATH


def test_top_processes_read_the_hosts_procfs_only_while_collecting():
    source = TopProcessesSource(Host("/"), TopProcessesOptions(enabled=True, count=3))
    assert {p.attributes["process.pid"] for p in source.collect() if p.metric == "process.memory.usage"}
    assert psutil.PROCFS_PATH == "/proc"


def test_process_stats_come_from_the_hosts_proc(tmp_path):
    (tmp_path / "proc" / "42").mkdir(parents=True)
    (tmp_path / "proc" / "43").mkdir()  # exited between the listing and the reading
    (tmp_path / "proc" / "self").mkdir()
    (tmp_path / "proc" / "42" / "stat").write_bytes(b"42 (a b) S 1")
    assert Host(tmp_path).process_stats() == [("42", b"42 (a b) S 1")]
    assert str(os.getpid()) in dict(Host().process_stats())  # the root by default: this machine's


def test_a_process_stat_is_one_read_of_at_most_4_kib_whether_kept_open_or_not(tmp_path):
    for pid in (42, 43):
        (tmp_path / "proc" / str(pid)).mkdir(parents=True)
        (tmp_path / "proc" / str(pid) / "stat").write_bytes(b"%d (a) S " % pid + b"1 " * 3000)
    host = Host(tmp_path, keep_open_max=1)  # one file kept open, the other read past the cap
    assert [len(stat) for _, stat in host.process_stats()] == [4096, 4096]
    for _ in range(2):  # opened and kept, then read through the kept descriptor
        with host.cycle():
            assert [len(stat) for _, stat in host.process_stats()] == [4096, 4096]
        assert len(host.kept_open()) == 1


def test_a_text_read_is_whole_past_one_read_and_undecodable_bytes_are_escaped(tmp_path):
    (tmp_path / "proc" / "net").mkdir(parents=True)
    lines = b"".join(b"%06d eth\xff%d\n" % (n, n) for n in range(10_000))  # 140 KB: three reads of 64 KiB
    (tmp_path / "proc" / "net" / "dev").write_bytes(lines)
    text = Host(tmp_path).read_proc("net/dev")
    assert len(text.splitlines()) == 10_000 and text.splitlines()[-1] == "009999 eth\\xff9999"
    assert text == lines.decode(errors="backslashreplace")
    host = Host(tmp_path)
    for _ in range(2):  # through the descriptor kept open, the same
        with host.cycle():
            assert host.read_proc("net/dev") == text
    assert Host(tmp_path).read_proc("net/dev", errors="surrogateescape").splitlines()[0] == "000000 eth\udcff0"


# Files kept open from one cycle to the next (Host.cycle()), on this machine's /proc.

def stat_of(host: Host, pid: int) -> bytes | None:
    return dict(host.process_stats()).get(str(pid))


def state_of(stat: bytes) -> str:
    return chr(stat[stat.rindex(b")") + 2])


@pytest.fixture
def child():
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def wait_for_state(pid: int, letters: str) -> None:
    for _ in range(200):
        if state_of(Path(f"/proc/{pid}/stat").read_bytes()) in letters:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never reached state {letters}")


def test_a_process_is_read_through_the_same_descriptor_each_cycle_with_its_state_of_the_moment(child):
    host = Host("/")
    wait_for_state(child.pid, "S")
    with host.cycle():
        assert state_of(stat_of(host, child.pid)) == "S"
    descriptor = host._kept[f"proc/{child.pid}/stat"]
    child.send_signal(signal.SIGSTOP)
    wait_for_state(child.pid, "T")
    with host.cycle():
        assert state_of(stat_of(host, child.pid)) == "T"
    child.send_signal(signal.SIGCONT)
    wait_for_state(child.pid, "S")
    with host.cycle():
        assert state_of(stat_of(host, child.pid)) == "S"
    assert host._kept[f"proc/{child.pid}/stat"] == descriptor  # kept, not reopened


def test_a_process_killed_between_cycles_is_read_then_forgotten_and_its_file_closed(child):
    host = Host("/")
    with host.cycle():
        assert stat_of(host, child.pid) is not None
    descriptor = host._kept[f"proc/{child.pid}/stat"]
    assert f"proc/{child.pid}/stat" in host.kept_open()
    child.kill()
    child.wait()
    with host.cycle():
        assert stat_of(host, child.pid) is None
        with pytest.raises(FileNotFoundError):  # its descriptor reads nothing, the path is gone
            host.read_proc(f"{child.pid}/stat")
    assert f"proc/{child.pid}/stat" not in host.kept_open()
    with pytest.raises(OSError):
        os.fstat(descriptor)  # closed (no other file took its number meanwhile: nothing else opened one)


def spawn_with_pid(pid: int, argv: list[str]) -> subprocess.Popen:
    """A process given `pid`, freed a moment ago: the kernel hands out ns_last_pid + 1 next (root only)."""
    for _ in range(50):  # another process of the machine may take the number first
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        process = subprocess.Popen(argv)
        if process.pid == pid:
            return process
        process.kill()
        process.wait()
    pytest.fail(f"pid {pid} was always taken by another process first")


@pytest.mark.skipif(not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK), reason="needs root to choose a pid")
def test_a_pid_reused_by_another_process_is_read_anew(child):
    host = Host("/")
    with host.cycle():
        assert b"(sleep)" in stat_of(host, child.pid)
    child.kill()
    child.wait()
    reused = spawn_with_pid(child.pid, ["cat"])  # reads its stdin: stays until killed
    try:
        with host.cycle():
            assert b"(cat)" in stat_of(host, child.pid)  # the old descriptor reads nothing: reopened
    finally:
        reused.kill()
        reused.wait()


def test_past_the_cap_every_process_is_still_read_and_only_the_cap_kept_open(tmp_path):
    for pid in range(100, 130):
        (tmp_path / "proc" / str(pid)).mkdir(parents=True)
        (tmp_path / "proc" / str(pid) / "stat").write_bytes(b"%d (p) S 1" % pid)
    host = Host(tmp_path, keep_open_max=10)
    for _ in range(2):
        with host.cycle():
            source = ProcessesSource(host, SourceOptions())
            assert dict(source._state_letters()) == {"S": 30}
            assert len(host.process_stats()) == 30
        assert len(host.kept_open()) == 10


def test_at_most_half_the_open_file_soft_limit_is_kept_open(tmp_path):
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    limit = 2 * highest + 40  # half of it, kept open, leaves room for the reads past it
    processes = limit // 2 + 10
    for pid in range(100, 100 + processes):
        (tmp_path / "proc" / str(pid)).mkdir(parents=True)
        (tmp_path / "proc" / str(pid) / "stat").write_bytes(b"%d (p) S 1" % pid)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    host = Host(tmp_path)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        with host.cycle():
            assert len(host.process_stats()) == processes
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(host.kept_open()) == limit // 2


def test_a_read_that_fails_for_another_reason_than_an_exit_is_an_error_not_a_process_less(tmp_path):
    (tmp_path / "proc" / "42").mkdir(parents=True)
    (tmp_path / "proc" / "42" / "stat").mkdir()  # reading a directory: EISDIR
    with pytest.raises(IsADirectoryError):
        Host(tmp_path).process_stats()
    host, open_before = Host(tmp_path), os.listdir("/proc/self/fd")
    with pytest.raises(IsADirectoryError), host.cycle():  # opened, then the read fails: closed, not kept
        host.process_stats()
    assert host.kept_open() == set() and os.listdir("/proc/self/fd") == open_before


def test_the_agent_raises_its_soft_limit_on_open_files_to_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(highest + 64, hard), hard))
    try:
        raise_open_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
        raise_open_file_limit()  # already raised: nothing to do
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_one_scan_per_cycle_serves_every_source_and_outside_a_cycle_nothing_is_kept(tmp_path):
    (tmp_path / "proc" / "42").mkdir(parents=True)
    stat = tmp_path / "proc" / "42" / "stat"
    stat.write_bytes(b"42 (a) S 1")
    host = Host(tmp_path)
    with host.cycle():
        first = host.process_stats()
        stat.write_bytes(b"42 (a) T 1")
        assert host.process_stats() is first  # the same scan, not a second one
    with host.cycle():
        assert host.process_stats() == [("42", b"42 (a) T 1")]  # a new cycle, a new scan
    assert host.kept_open() == {"proc/42/stat"}
    stat.write_bytes(b"42 (a) R 1")
    outside = host.process_stats()
    stat.write_bytes(b"42 (a) D 1")
    assert (outside, host.process_stats()) == ([("42", b"42 (a) R 1")], [("42", b"42 (a) D 1")])  # each call scans
    fresh = Host(tmp_path)
    fresh.process_stats()
    fresh.read_proc("42/stat")
    assert fresh.kept_open() == set()


def test_closing_the_host_closes_every_file_it_kept_open(tmp_path):
    (tmp_path / "proc" / "42").mkdir(parents=True)
    (tmp_path / "proc" / "42" / "stat").write_bytes(b"42 (a) S 1")
    host = Host(tmp_path)
    with host.cycle():
        host.process_stats()
    descriptor = host._kept["proc/42/stat"]
    host.close()
    assert host.kept_open() == set()
    with pytest.raises(OSError):
        os.fstat(descriptor)


def test_a_file_kept_open_reads_what_the_kernel_writes_now(tmp_path):
    """pread at offset 0 on the kinds of file a cycle reads: seq_file (/proc/stat, /proc/uptime, /proc/loadavg,
    /proc/meminfo), the network namespace's (/proc/net/dev), a sysctl (/proc/sys), a sysfs attribute; a process's
    stat above."""
    host = Host("/")
    paths = ["stat", "uptime", "net/dev", "sys/kernel/ns_last_pid", "loadavg", "meminfo"]
    rx_bytes = "class/net/lo/statistics/rx_bytes"
    with host.cycle():
        before = {path: host.read_proc(path) for path in paths}
        before_rx = int(host.read_sys(rx_bytes))
    time.sleep(0.05)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"x" * 1000, ("127.0.0.1", 9))  # lo's byte counters grow
    subprocess.run(["true"], check=True)  # a process is created: /proc/stat's "processes", ns_last_pid
    descriptors = dict(host._kept)
    with host.cycle():
        after = {path: host.read_proc(path) for path in paths}
        after_rx = int(host.read_sys(rx_bytes))
    # each file kept open, read again
    assert host._kept == descriptors and set(descriptors) == {"proc/" + path for path in paths} | {"sys/" + rx_bytes}
    assert after_rx >= before_rx + 1000
    created = [int(t.split("processes ")[1].split()[0]) for t in (before["stat"], after["stat"])]
    assert created[1] > created[0]
    assert float(after["uptime"].split()[0]) > float(before["uptime"].split()[0])
    assert int(after["sys/kernel/ns_last_pid"]) != int(before["sys/kernel/ns_last_pid"])
    lo = [next(line for line in text.splitlines() if line.strip().startswith("lo:")) for text in (before["net/dev"],
                                                                                                   after["net/dev"])]
    assert int(lo[1].split()[1]) > int(lo[0].split()[1])
    assert after["loadavg"].split()[4] != before["loadavg"].split()[4]  # the last pid created


@pytest.fixture
def veth():
    """A network interface of our own (root only: a veth pair), deleted afterwards."""
    name = f"hatest{os.getpid() % 10000}"

    def create() -> None:
        created = subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                                 capture_output=True, text=True)
        if created.returncode:
            pytest.skip(f"cannot create a network interface here (needs root and veth): {created.stderr.strip()}")

    def delete() -> None:
        subprocess.run(["ip", "link", "del", name], capture_output=True)

    create()
    yield name, create, delete
    delete()


def test_a_kept_sysfs_attribute_reads_its_device_now_and_a_new_device_of_the_same_name(veth):
    name, create, delete = veth
    mtu = f"class/net/{name}/mtu"
    host = Host("/")
    with host.cycle():
        assert host.read_sys(mtu) == "1500\n"
    descriptor = host._kept["sys/" + mtu]
    subprocess.run(["ip", "link", "set", name, "mtu", "1400"], check=True)
    with host.cycle():
        assert host.read_sys(mtu) == "1400\n"  # the kernel writes the attribute anew at offset 0
    assert host._kept["sys/" + mtu] == descriptor
    delete()
    create()  # the old descriptor reads nothing (ENODEV): reopened by its path
    with host.cycle():
        assert host.read_sys(mtu) == "1500\n"  # the new device's, not the old one's 1400
    delete()
    with host.cycle(), pytest.raises(FileNotFoundError):
        host.read_sys(mtu)
    assert "sys/" + mtu not in host.kept_open()


def test_a_sysfs_attribute_is_read_as_text_its_undecodable_bytes_escaped(tmp_path):
    (tmp_path / "sys/class/net/eth0").mkdir(parents=True)
    (tmp_path / "sys/class/net/eth0/ifalias").write_bytes(b"uplink \xff\n")
    host = Host(tmp_path)
    assert host.read_sys("class/net/eth0/ifalias") == "uplink \\xff\n"
    with host.cycle():
        assert host.read_sys("class/net/eth0/ifalias") == "uplink \\xff\n"
    assert host.kept_open() == {"sys/class/net/eth0/ifalias"}
