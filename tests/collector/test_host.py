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
