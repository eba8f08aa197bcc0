"""What a process has cost so far, read from /proc/<pid> (Linux)."""

import os

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (its threads included, exited children not)."""
    with open(f"/proc/{pid}/stat") as file:
        # The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
        fields = file.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / TICKS_PER_SECOND


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
