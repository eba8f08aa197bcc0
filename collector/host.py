"""The host a collector reads: a filesystem root (``/`` or ``/hostfs`` in a container) and its procfs.

Everything a source reads goes through this object, so tests point it at a fixture tree.
"""

import os
from collections.abc import Iterator
from pathlib import Path


class Host:
    def __init__(self, root: str | os.PathLike = "/"):
        self.root = Path(root)
        self.proc = self.root / "proc"
        self._proc_prefix = f"{self.proc}/"  # reads join strings: a Path per read costs 3 µs
        self.in_container = self.root != Path("/")

    def pids(self) -> Iterator[str]:
        return (name for name in os.listdir(self.proc) if name.isdigit())

    def read_proc_bytes(self, relative: str, limit: int = 4096) -> bytes:
        # os.open/os.read: without a Python file object per read, a scan of every process costs half as much CPU.
        descriptor = os.open(self._proc_prefix + relative, os.O_RDONLY)
        try:
            return os.read(descriptor, limit)
        finally:
            os.close(descriptor)

    def read_proc(self, relative: str, errors: str = "backslashreplace") -> str:
        # Device and interface names are bytes to the kernel; OTLP needs valid UTF-8 in every attribute.
        # Paths that must still be opened are read with errors="surrogateescape" and shown with printable().
        # os.read rather than Path.read_text: the 17 files of a cycle cost 0.35 ms instead of 0.6 ms.
        descriptor = os.open(self._proc_prefix + relative, os.O_RDONLY)
        try:
            chunks = []
            while chunk := os.read(descriptor, 65536):
                chunks.append(chunk)
        finally:
            os.close(descriptor)
        return b"".join(chunks).decode(errors=errors)

    @staticmethod
    def printable(text: str) -> str:
        """A surrogate-escaped name as valid UTF-8 text: undecodable bytes become \\xNN."""
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")

    def read_etc(self, relative: str) -> str:
        return (self.root / "etc" / relative).read_text()

    def host_path(self, path: str) -> Path:
        """A path of the host as seen from here (``/var`` → ``/hostfs/var`` in a container)."""
        return self.root / path.lstrip("/")

    @property
    def mounts_file(self) -> str:
        # The container's own mount table would hide the host's filesystems: read init's instead.
        return "1/mounts" if self.in_container else "self/mounts"

    def net_file(self, name: str) -> str:
        # /proc/net follows the reader's network namespace; pid 1 of the host root is the host's.
        return f"1/net/{name}" if self.in_container else f"net/{name}"
