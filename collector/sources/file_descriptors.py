"""System-wide file handles allocated and their limit, from /proc/sys/fs/file-nr."""

from collector.sources.base import Source
from collector.spec import PROJECT, Point, updowncounter

USAGE = updowncounter("system.linux.file_descriptor.usage", "{file_descriptor}",
                      "File handles allocated by the kernel.", precedent=PROJECT)
LIMIT = updowncounter("system.linux.file_descriptor.limit", "{file_descriptor}",
                      "Maximum number of file handles (fs.file-max).", precedent=PROJECT)


class FileDescriptorsSource(Source):
    name = "file_descriptors"
    metrics = (USAGE, LIMIT)

    def collect(self) -> list[Point]:
        allocated, unused, limit = (int(v) for v in self.host.read_proc("sys/fs/file-nr").split())
        return [Point(USAGE.name, allocated - unused),
                Point(LIMIT.name, limit)]
