"""The host a collector reads: a filesystem root (``/`` or ``/hostfs`` in a container) and its procfs.

Everything a source reads goes through this object, so tests point it at a fixture tree.

Within a collection cycle (`Host.cycle()`) the /proc files read stay open for the next cycle: a procfs file
read again at offset 0 is written anew by the kernel, and the open and close are about 40 % of what a read of
/proc/<pid>/stat costs. docs/architecture.md, "Files kept open", has the costs.
"""

import contextlib
import logging
import os
import resource
import weakref
from pathlib import Path

from collector.problems import ProblemLog

log = logging.getLogger(__name__)

# Each file kept open holds ~4.4 KiB of kernel memory (its seq_file buffer), charged to the agent's cgroup:
# at most 4096 files, ~18 MiB, and never more than half the soft limit on open files. Past it, open/read/close.
KEEP_OPEN_MAX = 4096
SYSFS_MAX_BYTES = 65536  # a sysfs attribute is at most a page: one read


def raise_open_file_limit() -> None:
    """Raise the soft limit on open files to the hard limit, as Go programs do at start-up (systemd's soft 1024
    is kept for select(), which the agent does not use): one /proc file per process is kept open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Host:
    def __init__(self, root: str | os.PathLike = "/", keep_open_max: int = KEEP_OPEN_MAX):
        self.root = Path(root)
        self.proc = self.root / "proc"
        self._prefix = str(self.root).rstrip("/") + "/"  # reads join strings: a Path per read costs 3 µs
        self.in_container = self.root != Path("/")
        self.keep_open_max = keep_open_max
        self._kept: dict[str, int] = {}  # path under the root → descriptor, kept from cycle to cycle
        self._read: set[str] | None = None  # paths read in this cycle; None outside a cycle: nothing is kept
        self._limit = 0  # how many files may be kept open in this cycle
        self._process_stats: list[tuple[str, bytes]] | None = None
        self.problems = ProblemLog(log)
        self.close = weakref.finalize(self, _close_all, self._kept)  # also when the Host is garbage

    @contextlib.contextmanager
    def cycle(self):
        """One collection: the files it reads stay open for the next one, those it did not read (an exited
        process's) are closed at its end, and one scan of the processes serves every source."""
        self._limit = min(self.keep_open_max, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 2)
        self._read = set()
        try:
            yield
        finally:
            for relative in self._kept.keys() - self._read:
                os.close(self._kept.pop(relative))
            self._read, self._process_stats = None, None

    def kept_open(self) -> frozenset[str]:
        """The files kept open for the next cycle, as paths under the root (``proc/42/stat``)."""
        return frozenset(self._kept)

    def process_stats(self) -> list[tuple[str, bytes]]:
        """(pid, its /proc/<pid>/stat) of every process; within a cycle the first call scans, the others share it."""
        if self._process_stats is not None:
            return self._process_stats
        stats, kept, read, pread = [], self._kept, self._read, os.pread
        for pid in os.listdir(self.proc):
            if not pid.isdigit():
                continue
            relative = "proc/" + pid + "/stat"
            # the common case, inline: 2,000 processes' method calls would cost a tenth of the scan
            if read is not None and (descriptor := kept.get(relative)) is not None:
                try:
                    data = pread(descriptor, 4096, 0)
                except OSError:
                    data = b""
                if data:
                    read.add(relative)
                    stats.append((pid, data))
                    continue
            try:
                stats.append((pid, self._read_bytes(relative, 4096)))
            except (FileNotFoundError, ProcessLookupError):  # exited between listing and reading
                continue
        if read is not None:
            self._process_stats = stats
        return stats

    def read_process(self, pid: int | str, name: str) -> bytes:
        """A small file of one process (``statm``): one read of at most 4 KiB, kept open within a cycle as its stat.
        Raises OSError once the process has exited."""
        return self._read_bytes(f"proc/{pid}/{name}", 4096)

    def read_proc(self, relative: str, errors: str = "backslashreplace") -> str:
        # Device and interface names are bytes to the kernel; OTLP needs valid UTF-8 in every attribute.
        # Paths that must still be opened are read with errors="surrogateescape" and shown with printable().
        # os.open/os.pread rather than Path.read_text: the 17 files of a cycle cost 0.35 ms instead of 0.6 ms
        # (and 0.15 ms kept open).
        return self._read_bytes("proc/" + relative, None).decode(errors=errors)

    def read_sys(self, relative: str) -> str:
        """A sysfs attribute (``class/net/eth0/mtu``), kept open like the /proc files: opening one costs ~9 µs of
        path lookup, 5 times the read. An attribute the driver cannot give raises OSError (EINVAL), as on open."""
        return self._read_bytes("sys/" + relative, SYSFS_MAX_BYTES).decode(errors="backslashreplace")

    def _read_bytes(self, relative: str, limit: int | None) -> bytes:
        """The file read whole (or its first `limit` bytes); in a cycle, from the descriptor kept open."""
        if self._read is None:
            return self._read_once(relative, limit)
        descriptor = self._kept.get(relative)
        if descriptor is not None:
            try:
                if data := _read_from_start(descriptor, limit):
                    self._read.add(relative)
                    return data
            except OSError:
                pass
            # The process exited (its pid may be another process's now): the old descriptor reads nothing.
            os.close(self._kept.pop(relative))
        if len(self._kept) >= self._limit:
            return self._read_once(relative, limit)
        descriptor = os.open(self._prefix + relative, os.O_RDONLY)
        try:
            data = _read_from_start(descriptor, limit)
        except OSError:
            os.close(descriptor)
            raise
        self._kept[relative] = descriptor
        self._read.add(relative)
        return data

    def _read_once(self, relative: str, limit: int | None) -> bytes:
        # os.open/os.read: without a Python file object per read, a scan of every process costs half as much CPU.
        descriptor = os.open(self._prefix + relative, os.O_RDONLY)
        try:
            return _read_from_start(descriptor, limit)
        finally:
            os.close(descriptor)

    @staticmethod
    def printable(text: str) -> str:
        """A surrogate-escaped name as valid UTF-8 text: undecodable bytes become \\xNN."""
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")

    def read_etc(self, relative: str) -> str:
        return (self.root / "etc" / relative).read_text()

    def host_path(self, path: str) -> Path:
        """A path of the host as seen from here (``/var`` → ``/hostfs/var`` in a container)."""
        return self.root / path.lstrip("/")

    def read_mounts(self) -> str:
        """The host's mount table, with the kernel's bytes surrogate-escaped (statvfs needs them): init's, as
        node_exporter and the hostmetrics receiver read it. The agent's own lists a container's mounts, or under
        systemd the service's namespace, where ProtectSystem= remounts every mount read-only and PrivateTmp= adds a
        /tmp. Where /proc/1 is hidden (hidepid=, ProtectProc=) the agent's own is the next best, outside a container."""
        try:
            table = self.read_proc("1/mounts", errors="surrogateescape")
        except OSError as error:
            if self.in_container:
                raise
            self.problems.report("mount table", f"cannot read /proc/1/mounts ({error.strerror}): reading the agent's "
                                 "own, where mounts its service manager made read-only or private show as such")
            return self.read_proc("self/mounts", errors="surrogateescape")
        self.problems.report("mount table", None)
        return table

    def net_file(self, name: str) -> str:
        # /proc/net follows the reader's network namespace; pid 1 of the host root is the host's.
        return f"1/net/{name}" if self.in_container else f"net/{name}"


def _read_from_start(descriptor: int, limit: int | None) -> bytes:
    """pread from offset 0: a procfs or sysfs file is generated anew by the kernel for a read at offset 0."""
    if limit is not None:
        return os.pread(descriptor, limit, 0)
    chunks, offset = [], 0
    while chunk := os.pread(descriptor, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _close_all(kept: dict[str, int]) -> None:
    for descriptor in kept.values():
        os.close(descriptor)
    kept.clear()
