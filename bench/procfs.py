"""What a process has cost so far, read from /proc/<pid> (Linux)."""

import os


def cpu_seconds(pid: int) -> float:
    """CPU time of the process's threads, to the nanosecond (/proc/<pid>/stat counts in 10 ms ticks, too
    coarse for a cycle of a few milliseconds). Threads that have exited no longer count: measure processes
    whose threads live as long as they do."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as file:
                total += int(file.read().split()[0])
        except FileNotFoundError:  # the thread exited meanwhile
            continue
    return total / 1e9


def memory_bytes(pid: int) -> dict[str, int]:
    """{"rss": resident set size now, "peak": its high-water mark}, in bytes."""
    wanted = {"VmRSS": "rss", "VmHWM": "peak"}
    values = {}
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            key, _, rest = line.partition(":")
            if key in wanted:
                values[wanted[key]] = int(rest.split()[0]) * 1024
    return values


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (every process, other users' included), from /proc/stat."""
    with open("/proc/stat") as file:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in file.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
