"""Process counts by state, processes created, the task limit and uptime (/proc/<pid>/stat, /proc/stat,
/proc/sys/kernel, /proc/uptime)."""

from collections import Counter

from collector.sources.base import Source
from collector.spec import Point, counter, gauge, updowncounter

# Every state letter of /proc/<pid>/stat (proc(5)) → semconv process.state, so that every process is counted.
# W is "waking" (2.6.33-3.13; "paging" before 2.6), about to run; D (disk sleep), I (idle kernel thread),
# P (parked kernel thread) and K (wakekill, 2.6.33-3.13) are asleep; X and x are dead. A letter a future kernel
# adds is counted as sleeping, the state of most processes.
STATES = {"R": "running", "W": "running", "S": "sleeping", "D": "sleeping", "I": "sleeping", "P": "sleeping",
          "K": "sleeping", "T": "stopped", "t": "stopped", "Z": "defunct", "X": "defunct", "x": "defunct"}
COUNTED_STATES = ("running", "sleeping", "stopped", "defunct")


COUNT = updowncounter("system.process.count", "{process}",
                      "Processes in each state; /proc state letters R, W: running; S, D, I, P, K and any other: "
                      "sleeping; T, t: stopped; Z, X, x: defunct.", "process.state")
CREATED = counter("system.process.created", "{process}", "Processes created since boot.")
UPTIME = gauge("system.uptime", "s", "Time since the host booted.")
LIMIT = updowncounter("system.process.limit", "{thread}",
                      "Tasks the kernel allows at once: the smaller of kernel.pid_max and kernel.threads-max "
                      "(every task needs a pid and a thread slot).")


class ProcessesSource(Source):
    name = "processes"
    metrics = (COUNT, CREATED, UPTIME, LIMIT)

    def collect(self) -> list[Point]:
        counts = dict.fromkeys(COUNTED_STATES, 0)
        for letter, processes in self._state_letters().items():
            counts[STATES.get(letter, "sleeping")] += processes
        points = [Point(COUNT.name, n, {"process.state": s}) for s, n in counts.items()]
        points.append(Point(CREATED.name, parse_processes_created(self.host.read_proc("stat"))))
        points.append(Point(UPTIME.name, float(self.host.read_proc("uptime").split()[0])))
        points.append(Point(LIMIT.name, min(int(self.host.read_proc("sys/kernel/pid_max")),
                                            int(self.host.read_proc("sys/kernel/threads-max")))))
        return points

    def _state_letters(self) -> Counter:
        """Processes by state letter. Most of the cost is the kernel's: writing each /proc/<pid>/stat."""
        return Counter(parse_state(stat) for _, stat in self.host.process_stats())


def parse_state(stat: bytes) -> str:
    # The command name may contain spaces and parentheses: the state follows the last ')'.
    return chr(stat[stat.rindex(b")") + 2])


def parse_processes_created(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("processes "):
            return int(line.split()[1])
    raise ValueError("no 'processes' line in /proc/stat")
