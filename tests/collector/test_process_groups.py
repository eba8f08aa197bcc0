"""The process_groups source over the fixture /proc: exact per-group sums, empty groups, exited processes and
threads."""

import logging
import os
import re
import shutil
from pathlib import Path

import pytest

from collector.collection import Collection
from collector.config import ConfigError, load
from collector.host import Host
from collector.sources.base import PartialFailure
from collector.sources.process_groups import GroupRule, ProcessGroupsOptions, ProcessGroupsSource, parse_stat
from collector.telemetry import AgentTelemetry
from tests.collector.conftest import FIXTURE_ROOT

PAGE = os.sysconf("SC_PAGE_SIZE")
HZ = os.sysconf("SC_CLK_TCK")
GROUPS = {
    "nginx-workers": GroupRule(systemd_unit=(r"^nginx\.service$",), user=("^www-data$",)),
    "nginx": GroupRule(executable=("^nginx$",)),
    "api": GroupRule(cmdline=("gunicorn api:app",), cgroup=("kubepods",)),
    "cron": GroupRule(executable=("^cron$",)),
}


def source(root=FIXTURE_ROOT, groups=GROUPS):
    return ProcessGroupsSource(Host(root), ProcessGroupsOptions(enabled=True, groups=groups))


def by_group(points, metric, kind=None):
    return {p.attributes["hostagent.process_group"]: p.value for p in points
            if p.metric == metric and (kind is None or kind in p.attributes.values())}


def test_each_group_sums_its_processes_and_the_first_matching_rule_wins():
    points = source().collect()
    assert by_group(points, "hostagent.process_group.count") == {"nginx-workers": 1, "nginx": 1, "api": 1, "cron": 0}
    assert by_group(points, "process.cpu.time", "user") == {
        "nginx-workers": 1500 / HZ, "nginx": 500 / HZ, "api": 250 / HZ, "cron": 0}
    assert by_group(points, "process.cpu.time", "system") == {
        "nginx-workers": 300 / HZ, "nginx": 200 / HZ, "api": 50 / HZ, "cron": 0}
    # resident memory from statm (the kernel's summed counter, as psutil and VmRSS), not stat's 5000, 2500, 25000
    assert by_group(points, "process.memory.usage") == {
        "nginx-workers": 5020 * PAGE, "nginx": 2510 * PAGE, "api": 25100 * PAGE, "cron": 0}
    assert by_group(points, "process.memory.virtual") == {
        "nginx-workers": 200_000_000, "nginx": 100_000_000, "api": 900_000_000, "cron": 0}
    assert by_group(points, "process.disk.io", "read") == {"nginx-workers": 1048576, "nginx": 4096, "api": 0, "cron": 0}
    assert by_group(points, "process.disk.io", "write")["api"] == 65536
    assert by_group(points, "process.context_switches", "involuntary")["api"] == 900
    assert by_group(points, "process.context_switches", "voluntary")["api"] == 9000
    assert by_group(points, "process.paging.faults", "minor")["nginx-workers"] == 3000
    assert by_group(points, "process.paging.faults", "major")["nginx"] == 10
    assert by_group(points, "process.thread.count") == {"nginx-workers": 4, "nginx": 1, "api": 8, "cron": 0}
    assert by_group(points, "process.unix.file_descriptor.count") == {
        "nginx-workers": 12, "nginx": 6, "api": 30, "cron": 0}
    # uptime 12345.67 s; the processes started 1000, 2000 and 10000 s after boot. An empty group has no age.
    assert by_group(points, "process.uptime") == pytest.approx({"nginx-workers": 10345.67, "nginx": 11345.67,
                                                                "api": 2345.67})
    assert not any("process.pid" in p.attributes for p in points)


def test_counters_keep_what_exited_processes_used_and_a_reused_pid_is_a_new_process(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    nginx = source(root, {"nginx": GroupRule(executable=("^nginx$",))})
    nginx.collect()
    shutil.rmtree(root / "proc/101")  # the worker exits
    stat = root / "proc/100/stat"
    stat.write_text(stat.read_text().replace(" 500 200 ", " 600 200 "))
    points = nginx.collect()
    assert by_group(points, "hostagent.process_group.count") == {"nginx": 1}
    assert by_group(points, "process.cpu.time", "user") == {"nginx": (600 + 1500) / HZ}
    assert by_group(points, "process.memory.usage") == {"nginx": 2510 * PAGE}
    # pid 100 restarts (a new start time) with a fresh CPU count: its new time adds to the total.
    stat.write_text(stat.read_text().replace(" 600 200 ", " 5 1 ").replace(" 100000 ", " 1200000 "))
    assert by_group(nginx.collect(), "process.cpu.time", "user") == {"nginx": (600 + 1500 + 5) / HZ}


def test_a_member_without_a_readable_statm_counts_its_stat_resident_size(tmp_path):
    # Since Linux 6.2 stat's rss is the unsummed per-CPU counter, up to hundreds of KiB low; statm's is summed.
    # A member that exits between the scan and its statm keeps the value its stat gave: it is still counted.
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    (root / "proc/101/statm").unlink()
    points = source(root, {"nginx": GroupRule(executable=("^nginx$",))}).collect()
    assert by_group(points, "process.memory.usage") == {"nginx": (2510 + 5000) * PAGE}


def test_a_process_that_leaves_a_group_and_comes_back_adds_only_what_it_used_since_the_last_collection(tmp_path):
    # Rules are checked at every collection: a process that renames itself (prctl PR_SET_NAME) leaves its group.
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    nginx = source(root, {"nginx": GroupRule(executable=("^nginx$",))})
    nginx.collect()
    stat, threads = root / "proc/100/stat", root / "proc/100/task"
    stat.write_text(stat.read_text().replace("(nginx)", "(other)").replace(" 1000 0 10 0 500 ", " 1100 0 10 0 600 "))
    write_thread(threads / "100", 70, 7)
    io = root / "proc/100/io"
    io.write_text(io.read_text().replace("read_bytes: 4096", "read_bytes: 9000"))
    points = nginx.collect()  # out of the group: what it used before stays, what it uses now is not the group's
    assert by_group(points, "hostagent.process_group.count") == {"nginx": 1}
    assert by_group(points, "process.cpu.time", "user") == {"nginx": (500 + 1500) / HZ}
    stat.write_text(stat.read_text().replace("(other)", "(nginx)").replace(" 1100 0 10 0 600 ", " 1150 0 10 0 650 "))
    write_thread(threads / "100", 80, 8)
    points = nginx.collect()  # back: its CPU time and faults since the previous collection, not its whole life again
    assert by_group(points, "hostagent.process_group.count") == {"nginx": 2}
    assert by_group(points, "process.cpu.time", "user") == {"nginx": (500 + 1500 + 50) / HZ}
    assert by_group(points, "process.paging.faults", "minor") == {"nginx": 1000 + 3000 + 50}
    # io and context switches are read for members only: none since it left was read, those from now on count
    assert by_group(points, "process.disk.io", "read") == {"nginx": 4096 + 1048576}
    voluntary = by_group(points, "process.context_switches", "voluntary")["nginx"]
    write_thread(threads / "100", 90, 9)
    assert by_group(nginx.collect(), "process.context_switches", "voluntary") == {"nginx": voluntary + 10}


def test_a_process_that_starts_to_match_adds_only_what_it_used_since_the_last_collection(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    nginx = source(root, {"nginx": GroupRule(executable=("^nginx$",))})
    nginx.collect()  # python3 (pid 200, 2.5 s of user time) is in no group
    stat = root / "proc/200/stat"
    stat.write_text(stat.read_text().replace("(python3)", "(nginx)").replace(" 250 50 ", " 260 50 "))
    assert by_group(nginx.collect(), "process.cpu.time", "user") == {"nginx": (500 + 1500 + 10) / HZ}
    # what is remembered of each process goes with it
    shutil.rmtree(root / "proc/200")
    nginx.collect()
    assert 200 not in {pid for pid, _ in nginx._last} | {pid for pid, _ in nginx._stats}


def test_context_switches_sum_every_thread_and_keep_what_an_exited_thread_made(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    threads = root / "proc/200/task"  # its main thread 200 (/proc/200/status: 9000 voluntary, 900 involuntary)
    for tid, voluntary, involuntary in (("201", 500, 50), ("202", 40, 4)):
        write_thread(threads / tid, voluntary, involuntary)
    api = source(root)

    def switches():
        points = api.collect()
        return {kind: by_group(points, "process.context_switches", kind)["api"]
                for kind in ("voluntary", "involuntary")}

    assert switches() == {"voluntary": 9540, "involuntary": 954}
    shutil.rmtree(threads / "201")  # a thread exits (the process's sum drops by 500) while another switches 10 times
    write_thread(threads / "202", 50, 5)
    assert switches() == {"voluntary": 9550, "involuntary": 955}
    write_thread(threads / "203", 7, 0)  # a new thread: all its switches are new
    assert switches() == {"voluntary": 9557, "involuntary": 955}


def write_thread(directory: Path, voluntary: int, involuntary: int):
    directory.mkdir(exist_ok=True)
    (directory / "status").write_text(f"Name:\tpython3\nTgid:\t200\nPid:\t{directory.name}\n"
                                      f"voluntary_ctxt_switches:\t{voluntary}\n"
                                      f"nonvoluntary_ctxt_switches:\t{involuntary}\n")


@pytest.mark.parametrize("unreadable", ["io", "fd"])
def test_unreadable_io_or_fds_are_counted_as_a_partial_failure(tmp_path, unreadable):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    # as /proc/<pid>/io and /proc/<pid>/fd of another user's process read without CAP_SYS_PTRACE
    path = root / "proc/200" / unreadable
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(PartialFailure) as partial:
        source(root).collect()
    assert str(partial.value) == "1 matched processes without readable io or fd (run as root or with CAP_SYS_PTRACE)"
    assert by_group(partial.value.points, "process.cpu.time", "user")["api"] == 250 / HZ


def test_a_changing_count_of_unreadable_processes_is_logged_once(tmp_path, caplog):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    collection = Collection([source(root)], AgentTelemetry())
    with caplog.at_level(logging.INFO, logger="collector.collection"):
        for pid in (200, 100):
            (root / f"proc/{pid}/io").unlink()
            collection.refresh()
    assert [r.getMessage() for r in caplog.records] == [
        "source process_groups: 1 matched processes without readable io or fd (run as root or with CAP_SYS_PTRACE)"]
    assert collection.telemetry.sources["process_groups"].outcomes == {"error": 2}


def test_stat_parsing_survives_odd_process_names():
    stat = parse_stat(b"7 (a) b (c)) S 1 7 7 0 -1 0 11 0 12 0 13 14 0 0 20 0 3 0 15 16 17 0 18 19 0")
    assert stat == ("a) b (c)", 11, 12, 13, 14, 3, 15, 16, 17, (b"18", b"19"))
    assert parse_stat(b"7 (a\xffb) S 1 7 7 0 -1 0 11 0 12 0 13 14 0 0 20 0 3 0 15 16 17 0 0").comm == "a\\xffb"


def test_a_process_that_cannot_be_looked_at_matches_no_rule(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    (root / "proc/200/cmdline").unlink()  # exited between the listing and the match
    assert by_group(source(root).collect(), "hostagent.process_group.count")["api"] == 0


def test_groups_are_configured_by_name_with_lists_or_single_patterns(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("sources:\n  process_groups:\n    enabled: true\n    groups:\n"
                    "      nginx: {executable: '^nginx$'}\n      api: {cmdline: [gunicorn], user: [app]}\n")
    groups = load(path, environ={}).sources["process_groups"].groups
    assert groups == {"nginx": GroupRule(executable=("^nginx$",)),
                      "api": GroupRule(cmdline=("gunicorn",), user=("app",))}
    path.write_text("sources:\n  process_groups:\n    groups:\n      nginx: {exe: nginx}\n")
    with pytest.raises(ConfigError, match="sources.process_groups.groups.nginx.exe: unknown option"):
        load(path, environ={})


def test_live_this_test_process_is_found_in_its_group():
    # this process's own command line (pytest, or mutmut running pytest in-process)
    me = re.escape(Path("/proc/self/cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
    live = ProcessGroupsSource(Host("/"), ProcessGroupsOptions(enabled=True, groups={
        "me": GroupRule(cmdline=(me,)), "nobody": GroupRule(executable=("^no-such-daemon$",))}))
    points = live.collect()
    assert by_group(points, "hostagent.process_group.count")["me"] >= 1
    assert by_group(points, "hostagent.process_group.count")["nobody"] == 0
    assert by_group(points, "process.memory.usage")["me"] > 10 * 2**20
    assert by_group(points, "process.uptime")["me"] > 0


def test_users_by_name_from_passwd_or_by_number_without_it(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    passwd = root / "etc" / "passwd"
    # lines too short to hold a uid are skipped; the uid is the third field, not the gid
    # a uid given twice is its first line's user, as getpwuid(3) finds it
    passwd.write_text("garbage\nshort:x\nroot:x:0:0:root:/root:/bin/bash\napp:x:1000:2000::/home/app:/bin/sh\n"
                      "alias:x:1000:2000::/home/app:/bin/sh\n")
    count = "hostagent.process_group.count"
    assert by_group(source(root, {"app": GroupRule(user=("^app$",))}).collect(), count) == {"app": 1}
    passwd.unlink()  # no passwd (a distroless host root): users by number
    assert by_group(source(root, {"app": GroupRule(user=("^1000$",))}).collect(), count) == {"app": 1}


def test_workers_forked_in_the_same_clock_tick_keep_their_own_counters(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    shutil.copytree(root / "proc/101", root / "proc/102", symlinks=True)  # a second worker, same start time
    worker = root / "proc/102/stat"
    worker.write_text(worker.read_text().replace("101 (nginx)", "102 (nginx)").replace(" 1500 300 ", " 1000 300 "))
    workers = source(root, {"workers": GroupRule(executable=("^nginx$",), user=("^www-data$",))})
    assert by_group(workers.collect(), "process.cpu.time", "user") == {"workers": (1500 + 1000) / HZ}
    for pid, before, now in ((101, 1500, 1600), (102, 1000, 1100)):
        stat = root / f"proc/{pid}/stat"
        stat.write_text(stat.read_text().replace(f" {before} 300 ", f" {now} 300 "))
    assert by_group(workers.collect(), "process.cpu.time", "user") == {"workers": (1600 + 1100) / HZ}


def test_user_rules_match_the_real_user_not_the_effective_one(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    status = root / "proc/200/status"
    status.write_text(re.sub(r"Uid:.*", "Uid:\t1000\t0\t0\t0", status.read_text()))  # app runs a setuid-root program
    groups = {"app": GroupRule(user=("^app$",)), "root": GroupRule(user=("^root$",))}
    assert by_group(source(root, groups).collect(), "hostagent.process_group.count") == {"app": 1, "root": 1}


def test_a_systemd_unit_rule_matches_the_innermost_unit_of_the_cgroup(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs", symlinks=True)
    # a service of a user's systemd, nested in the user manager's own unit
    (root / "proc/200/cgroup").write_text("0::/user.slice/user-1000.slice/user@1000.service/app.slice/api.service\n")
    groups = {"api": GroupRule(systemd_unit=(r"^api\.service$",)),
              "user manager": GroupRule(systemd_unit=(r"^user@1000\.service$",))}
    assert by_group(source(root, groups).collect(), "hostagent.process_group.count") == {"api": 1, "user manager": 0}


def test_a_groups_uptime_is_the_age_of_its_oldest_process():
    points = source(groups={"nginx": GroupRule(executable=("^nginx$",))}).collect()
    assert by_group(points, "hostagent.process_group.count") == {"nginx": 2}
    # uptime 12345.67 s; the master started 1000 s after boot, its worker 2000 s
    assert by_group(points, "process.uptime") == pytest.approx({"nginx": 11345.67})
