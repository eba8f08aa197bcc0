"""Host: every read of the host goes through it, and it leaves no process-wide state behind."""
import os

import psutil

from collector.host import Host
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


def test_pids_and_raw_reads_come_from_the_hosts_proc(tmp_path):
    (tmp_path / "proc" / "42").mkdir(parents=True)
    (tmp_path / "proc" / "self").mkdir()
    (tmp_path / "proc" / "42" / "stat").write_bytes(b"42 (a b) S 1")
    host = Host(tmp_path)
    assert list(host.pids()) == ["42"]
    assert host.read_proc_bytes("42/stat") == b"42 (a b) S 1"
    assert str(os.getpid()) in Host("/").pids()


def test_a_text_read_is_whole_past_one_read_and_undecodable_bytes_are_escaped(tmp_path):
    (tmp_path / "proc" / "net").mkdir(parents=True)
    lines = b"".join(b"%06d eth\xff%d\n" % (n, n) for n in range(10_000))  # 140 KB: three reads of 64 KiB
    (tmp_path / "proc" / "net" / "dev").write_bytes(lines)
    text = Host(tmp_path).read_proc("net/dev")
    assert len(text.splitlines()) == 10_000 and text.splitlines()[-1] == "009999 eth\\xff9999"
    assert Host(tmp_path).read_proc("net/dev", errors="surrogateescape").splitlines()[0] == "000000 eth\udcff0"
