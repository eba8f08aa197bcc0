"""Block device I/O from /proc/diskstats and size from /sys/block, per whole device (partitions told apart by
sysfs), with include/exclude filters."""

from dataclasses import dataclass, field

from collector.sources.base import PartialFailure, Source, SourceOptions
from collector.sources.filters import REGEX, NameFilter, capped
from collector.spec import HOSTMETRICS, Point, counter, updowncounter

SECTOR_BYTES = 512  # diskstats and /sys/block/<dev>/size count 512-byte sectors whatever the real sector size
# The fields (of the 11 read) the kernel prints as unsigned int milliseconds in every version (block/genhd.c,
# diskstats_show): read and write time, io_ticks, weighted time. They wrap at 2^32 ms, ~50 days of it (weighted time
# on a busy disk within days); the agent counts on past each wrap. in_flight, also unsigned int, is a gauge.
MILLISECOND_FIELDS = (3, 7, 9, 10)
WRAP_MS = 1 << 32
# unsigned long: on a 64-bit kernel these counts go back only when the device is re-created
COUNT_FIELDS = (0, 1, 2, 4, 5, 6)
PRECEDENT = HOSTMETRICS.format("disk")


@dataclass(frozen=True)
class DiskOptions(SourceOptions):
    include: tuple[str, ...] = field(default=(), metadata=REGEX)
    exclude: tuple[str, ...] = field(default=(r"^(z?ram|loop|fd)\d+$",), metadata=REGEX)
    # Partitions are left out whatever their name (sysfs tells them: /sys/class/block/<dev>/partition): their I/O is
    # already counted on their whole device. node_exporter tells them by name only (its default device-exclude misses
    # md, nbd, rbd, pmem and loop partitions); the hostmetrics receiver reports every device, partitions included.
    partitions: bool = False
    max_devices: int = field(default=200, metadata={"min": 1})


IO = counter("system.disk.io", "By", "Bytes read and written.", "system.device", "disk.io.direction")
OPERATIONS = counter("system.disk.operations", "{operation}", "Completed reads and writes.",
                     "system.device", "disk.io.direction")
IO_TIME = counter("system.disk.io_time", "s", "Time the device was busy with I/O.", "system.device")
OPERATION_TIME = counter("system.disk.operation_time", "s", "Sum of the time each operation took.",
                         "system.device", "disk.io.direction")
MERGED = counter("system.disk.merged", "{operation}", "Adjacent reads and writes merged by the kernel.",
                 "system.device", "disk.io.direction")
WEIGHTED_IO_TIME = counter("system.disk.weighted_io_time", "s",
                           "Time spent on I/O weighted by the number of operations in flight (its rate is the "
                           "average queue length).", "system.device", precedent=PRECEDENT)
PENDING_OPERATIONS = updowncounter("system.disk.pending_operations", "{operation}", "I/O operations in flight.",
                                   "system.device", precedent=PRECEDENT)
LIMIT = updowncounter("system.disk.limit", "By", "Size of the device.", "system.device",
                      condition="where /sys/block names the device's size")


class DiskSource(Source):
    name = "disk"
    Options = DiskOptions
    metrics = (IO, OPERATIONS, IO_TIME, OPERATION_TIME, MERGED, WEIGHTED_IO_TIME, PENDING_OPERATIONS, LIMIT)

    def __init__(self, host, options):
        super().__init__(host, options)
        self.filter = NameFilter(options.include, options.exclude)
        self._is_partition: dict[str, bool | None] = {}  # the devices of the last read, in its order
        self._last: dict[str, tuple[list[int], list[int]]] = {}  # device → its last fields read, its wraps so far

    def collect(self) -> list[Point]:
        devices = [fields for fields in parse_diskstats(self.host.read_proc("diskstats"))
                   if self.filter.allows(fields[0])]
        if not self.options.partitions:
            is_partition = self._partitions_among([name for name, _ in devices])
            devices = [fields for fields in devices if not is_partition[fields[0]]]
        devices, overflow = capped(devices, self.options.max_devices, "devices")
        points = [p for name, stats in self._past_wraps(devices) for p in device_points(name, stats)]
        points += [p for name, _ in devices for p in self._size_points(name)]
        if overflow:
            raise PartialFailure(points, overflow)
        return points

    def _past_wraps(self, devices: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
        """The devices' fields with the millisecond ones counted on past their wraps. A device missing from this read
        is forgotten: if it comes back, it starts over, as its counters do."""
        last, self._last, counted = self._last, {}, []
        for name, stats in devices:
            wrapped = wraps_since(stats, last.get(name))
            self._last[name] = (stats, wrapped)
            total = stats.copy()
            for i, wrapped_ms in zip(MILLISECOND_FIELDS, wrapped):
                total[i] += wrapped_ms
            counted.append((name, total))
        return counted

    def _partitions_among(self, names: list[str]) -> dict[str, bool | None]:
        """Whether each device is a partition (None: sysfs does not know it, it counts as a whole device). sysfs is
        asked only about devices that were not there at the last read: comparing the names costs well under the
        ~10 µs of one lookup."""
        if list(self._is_partition) != names:
            known = self._is_partition
            self._is_partition = {name: known[name] if name in known else self._partition_in_sysfs(name)
                                  for name in names}
            unknown = [name for name, verdict in self._is_partition.items() if verdict is None]
            self.host.problems.report("disk partitions", (
                f"no /sys/class/block entry for {', '.join(unknown[:3])}{' …' if len(unknown) > 3 else ''}: "
                "partitions cannot be told from whole devices, each is counted (is the host's /sys visible?)"
            ) if unknown else None)
        return self._is_partition

    def _partition_in_sysfs(self, device: str) -> bool | None:
        try:
            self.host.read_sys(f"class/block/{device}/partition")  # kernel Documentation/ABI/stable/sysfs-block
            return True
        except OSError:
            pass
        try:
            self.host.read_sys(f"class/block/{device}/dev")  # every block device has it, partition or not
        except FileNotFoundError:
            return None
        except OSError:
            pass
        return False

    def _size_points(self, device: str) -> list[Point]:
        try:
            sectors = int(self.host.read_sys(f"block/{device}/size"))
        except (OSError, ValueError):  # device-mapper and other virtual devices may have no size here
            return []
        return [Point(LIMIT.name, sectors * SECTOR_BYTES, {"system.device": device})]


def parse_diskstats(text: str):
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 14:
            yield fields[2], [int(v) for v in fields[3:14]]


def wraps_since(stats: list[int], last: tuple[list[int], list[int]] | None) -> list[int]:
    """The milliseconds each MILLISECOND_FIELDS field lost to its wraps since the device was first read: a field lower
    than at the last read wrapped, unless a count went back too (the device was re-created: every field starts over)."""
    if last is None or any(stats[i] < last[0][i] for i in COUNT_FIELDS):
        return [0] * len(MILLISECOND_FIELDS)
    before, wrapped = last
    return [wrapped_ms + WRAP_MS * (stats[i] < before[i]) for i, wrapped_ms in zip(MILLISECOND_FIELDS, wrapped)]


def device_points(device: str, stats: list[int]) -> list[Point]:
    reads, reads_merged, sectors_read, read_ms, writes, writes_merged, sectors_written, write_ms, \
        in_flight, io_ms, weighted_ms = stats
    read = {"system.device": device, "disk.io.direction": "read"}
    write = {"system.device": device, "disk.io.direction": "write"}
    return [
        Point(IO.name, sectors_read * SECTOR_BYTES, read),
        Point(IO.name, sectors_written * SECTOR_BYTES, write),
        Point(OPERATIONS.name, reads, read),
        Point(OPERATIONS.name, writes, write),
        Point(IO_TIME.name, io_ms / 1000, {"system.device": device}),
        Point(OPERATION_TIME.name, read_ms / 1000, read),
        Point(OPERATION_TIME.name, write_ms / 1000, write),
        Point(MERGED.name, reads_merged, read),
        Point(MERGED.name, writes_merged, write),
        Point(WEIGHTED_IO_TIME.name, weighted_ms / 1000, {"system.device": device}),
        Point(PENDING_OPERATIONS.name, in_flight, {"system.device": device}),
    ]
