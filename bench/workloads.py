"""What the opt-in workload sources cost per collection, on synthetic hosts of a busy server's size: thousands of
processes, hundreds of cgroups and systemd units, a full textfile directory (the default sources' cost is the
latency part's)."""

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from collector.host import Host
from collector.sources.base import PartialFailure
from collector.sources.cgroup import CgroupOptions, CgroupSource
from collector.sources.process_groups import GroupRule, ProcessGroupsOptions, ProcessGroupsSource
from collector.sources.systemd import SystemdOptions, SystemdSource
from collector.sources.textfile import TextfileOptions, TextfileSource
from pipeline import fake_systemd

PROCESSES, MEMBER_EVERY = 3000, 10  # every 10th process belongs to a group
THREADS = 4  # per process, as its stat says
CGROUPS = 200
TEXTFILES, SERIES_PER_FILE = 20, 50
UNITS = 300


@dataclass(frozen=True)
class WorkloadCost:
    source: str
    size: str
    cpu_per_collection: float  # seconds
    points: int


def measure(cycles: int, workdir: Path) -> list[WorkloadCost]:
    root = workdir / "workload-host"
    _write_processes(root / "proc")
    _write_cgroups(root / "sys/fs/cgroup")
    _write_textfiles(root / "textfile")
    host = Host(root)
    sources = [
        (ProcessGroupsSource(host, ProcessGroupsOptions(enabled=True, groups={
            "web": GroupRule(executable=("^nginx$",), user=("^www-data$",)),
            "api": GroupRule(cmdline=("gunicorn",)), "absent": GroupRule(executable=("^cron$",))})),
         f"{PROCESSES} processes, {PROCESSES // MEMBER_EVERY} in 3 groups"),
        (CgroupSource(host, CgroupOptions(enabled=True, max_cgroups=CGROUPS)), f"{CGROUPS} cgroups"),
        (TextfileSource(host, TextfileOptions(enabled=True, directory="/textfile")),
         f"{TEXTFILES} files × {SERIES_PER_FILE} series"),
    ]
    costs = [_cost(source, size, cycles) for source, size in sources]
    if shutil.which("dbus-daemon"):
        states = [state for _, state in fake_systemd.UNITS]
        with fake_systemd.private_bus(root) as systemd:
            systemd.units = [(f"unit-{n}.service", states[n % len(states)]) for n in range(UNITS)]
            costs.append(_cost(SystemdSource(host, SystemdOptions(enabled=True)), f"{UNITS} units over D-Bus", cycles))
    return costs


def _cost(source, size: str, cycles: int) -> WorkloadCost:
    _collect(source)  # the first collection opens connections and fills caches
    started = time.thread_time()
    for _ in range(cycles):
        points = _collect(source)
    return WorkloadCost(source.name, size, (time.thread_time() - started) / cycles, len(points))


def _collect(source) -> list:
    try:
        return source.collect()
    except PartialFailure as partial:
        return partial.points


def _write_processes(proc: Path):
    proc.mkdir(parents=True)
    (proc / "uptime").write_text("100000.00 150000.00\n")
    for pid in range(1000, 1000 + PROCESSES):
        kind = ("nginx", "www-data") if pid % MEMBER_EVERY == 0 else ("kworker", "root")
        directory = proc / str(pid)
        (directory / "fd").mkdir(parents=True)
        for fd in range(8):
            (directory / "fd" / str(fd)).touch()
        (directory / "stat").write_text(f"{pid} ({kind[0]}) S 1 {pid} {pid} 0 -1 0 100 0 2 0 300 100 0 0 20 0 4 0 "
                                        f"5000 100000000 2500 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")
        (directory / "cmdline").write_bytes(f"{kind[0]}\0--worker\0".encode())
        uid = 33 if kind[1] == "www-data" else 0
        (directory / "status").write_text(f"Name:\t{kind[0]}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
                                          "voluntary_ctxt_switches:\t10\nnonvoluntary_ctxt_switches:\t1\n")
        for tid in [pid] + [pid + PROCESSES * n for n in range(1, THREADS)]:  # the main thread's id is the pid
            thread = directory / "task" / str(tid)
            thread.mkdir(parents=True)
            shutil.copyfile(directory / "status", thread / "status")
        (directory / "io").write_text("read_bytes: 4096\nwrite_bytes: 8192\n")
    (proc.parent / "etc").mkdir()
    (proc.parent / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\n")


def _write_cgroups(root: Path):
    root.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory io pids\n")
    for n in range(CGROUPS):
        directory = root / "system.slice" / f"unit-{n}.service" if n else root / "system.slice"
        directory.mkdir(parents=True)
        (directory / "cpu.stat").write_text("usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\nthrottled_usec 0\n")
        (directory / "memory.current").write_text("268435456\n")
        (directory / "memory.max").write_text("536870912\n")
        (directory / "memory.events").write_text("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
        for resource in ("cpu", "memory", "io"):
            (directory / f"{resource}.pressure").write_text(
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=50\n")


def _write_textfiles(directory: Path):
    directory.mkdir()
    for n in range(TEXTFILES):
        lines = [f"# HELP job_{n}_runs_total Runs.", f"# TYPE job_{n}_runs_total counter"]
        lines += [f'job_{n}_runs_total{{outcome="o{s}"}} {s}' for s in range(SERIES_PER_FILE)]
        (directory / f"job-{n}.prom").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        for cost in measure(20, Path(tmp)):
            print(f"{cost.source:15} {cost.size:40} {cost.cpu_per_collection * 1000:6.1f} ms  {cost.points} points")
