"""Process counts by state, processes created, the task limit and uptime (/proc/<pid>/stat, /proc/stat,
/proc/sys/kernel, /proc/uptime)."""

import os

from collector.sources.base import Source
from collector.spec import Point, counter, gauge, updowncounter

# ps(1) state codes → semconv process.state. D (disk sleep) and I (idle kernel thread) are asleep.
STATES = {"R": "running", "S": "sleeping", "D": "sleeping", "I": "sleeping", "T": "stopped", "t": "stopped",
          "Z": "defunct"}


class ProcessesSource(Source):
    name = "processes"
    metrics = (
        updowncounter("system.process.count", "{process}", "Processes in each state.", "process.state"),
        counter("system.process.created", "{process}", "Processes created since boot."),
        gauge("system.uptime", "s", "Time since the host booted."),
        updowncounter("system.process.limit", "{thread}",
                      "Tasks the kernel allows at once: the smaller of kernel.pid_max and kernel.threads-max "
                      "(every task needs a pid and a thread slot)."),
    )

    def collect(self) -> list[Point]:
        counts = dict.fromkeys(("running", "sleeping", "stopped", "defunct"), 0)
        for state in self._process_states():
            if state in STATES:
                counts[STATES[state]] += 1
        points = [Point("system.process.count", n, {"process.state": s}) for s, n in counts.items()]
        points.append(Point("system.process.created", parse_processes_created(self.host.read_proc("stat"))))
        points.append(Point("system.uptime", float(self.host.read_proc("uptime").split()[0])))
        points.append(Point("system.process.limit", min(int(self.host.read_proc("sys/kernel/pid_max")),
                                                        int(self.host.read_proc("sys/kernel/threads-max")))))
        return points

    def _process_states(self):
        # os.open/os.read: without a Python file object per process, a scan costs half as much CPU.
        for name in os.listdir(self.host.proc):
            if not name.isdigit():
                continue
            try:
                descriptor = os.open(os.path.join(self.host.proc, name, "stat"), os.O_RDONLY)
            except OSError:  # the process exited between listing and reading
                continue
            try:
                text = os.read(descriptor, 4096)
            except OSError:
                continue
            finally:
                os.close(descriptor)
            yield parse_state(text)


def parse_state(stat: bytes) -> str:
    # The command name may contain spaces and parentheses: the state follows the last ')'.
    return stat[stat.rindex(b")") + 2:][:1].decode()


def parse_processes_created(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("processes "):
            return int(line.split()[1])
    raise ValueError("no 'processes' line in /proc/stat")
