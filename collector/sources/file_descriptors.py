"""System-wide file handles allocated and their limit, from /proc/sys/fs/file-nr."""

from collector.sources.base import Source
from collector.spec import PROJECT, Point, updowncounter


class FileDescriptorsSource(Source):
    name = "file_descriptors"
    metrics = (
        updowncounter("system.linux.file_descriptor.usage", "{file_descriptor}",
                      "File handles allocated by the kernel.", precedent=PROJECT),
        updowncounter("system.linux.file_descriptor.limit", "{file_descriptor}",
                      "Maximum number of file handles (fs.file-max).", precedent=PROJECT),
    )

    def collect(self) -> list[Point]:
        allocated, unused, limit = (int(v) for v in self.host.read_proc("sys/fs/file-nr").split())
        return [Point("system.linux.file_descriptor.usage", allocated - unused),
                Point("system.linux.file_descriptor.limit", limit)]
