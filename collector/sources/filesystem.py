"""Filesystem space and inodes per mount (the host's mount table, measured under the host root)."""

import os
import queue
import threading
from dataclasses import dataclass, field

from collector.host import Host
from collector.sources.base import PartialFailure, Source, SourceOptions, unescape_path
from collector.sources.filters import REGEX, NameFilter, capped
from collector.spec import HOSTMETRICS, Point, gauge, updowncounter
from collector.units import Duration

VIRTUAL_TYPES = (
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
    "efivarfs", "fuse.lxcfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "overlay", "proc", "procfs",
    "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs",
)
MOUNT_ATTRIBUTES = ("system.device", "system.filesystem.type", "system.filesystem.mode",
                    "system.filesystem.mountpoint")


@dataclass(frozen=True)
class FilesystemOptions(SourceOptions):
    # Space changes slowly and statfs can be slow on network filesystems: a longer default interval.
    interval: Duration | None = field(default=Duration(30), metadata={"min": 0.1})
    include_types: tuple[str, ...] = field(default=(), metadata=REGEX)
    exclude_types: tuple[str, ...] = field(default=tuple(f"^{t}$" for t in VIRTUAL_TYPES), metadata=REGEX)
    include_mountpoints: tuple[str, ...] = field(default=(), metadata=REGEX)
    # A mount point and what is under it, not /sysroot or /devdata; under the container runtimes' directories
    # only, as a dedicated disk mounted at /var/lib/docker itself is real space.
    exclude_mountpoints: tuple[str, ...] = field(
        default=(r"^/((dev|proc|sys|run/credentials)($|/)|var/lib/(docker|containers|kubelet)/)",), metadata=REGEX)
    max_filesystems: int = field(default=100, metadata={"min": 1})
    # statfs on a hung network filesystem never returns: give up after this long, and skip that mount
    # while its call is still stuck.
    statfs_timeout: Duration = field(default=Duration(5), metadata={"min": 0.1})


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]

    @property
    def attributes(self):
        return {"system.device": Host.printable(self.device), "system.filesystem.type": self.fstype,
                "system.filesystem.mode": "ro" if "ro" in self.options else "rw",
                "system.filesystem.mountpoint": Host.printable(self.mountpoint)}


USAGE = updowncounter("system.filesystem.usage", "By",
                      "Space used, free (available to users) and reserved (for root); they add up to the limit.",
                      "system.filesystem.state", *MOUNT_ATTRIBUTES)
UTILIZATION = gauge("system.filesystem.utilization", "1",
                    "Used space as a share of used + free (as df shows it); one point, state `used`.",
                    "system.filesystem.state", *MOUNT_ATTRIBUTES)
LIMIT = updowncounter("system.filesystem.limit", "By", "Total size of the filesystem.", *MOUNT_ATTRIBUTES)
INODES_USAGE = updowncounter("system.filesystem.inodes.usage", "{inode}", "Inodes used and free.",
                             "system.filesystem.state", *MOUNT_ATTRIBUTES,
                             condition="filesystems with a fixed inode table",
                             precedent=HOSTMETRICS.format("filesystem"))


class FilesystemSource(Source):
    name = "filesystem"
    Options = FilesystemOptions
    metrics = (USAGE, UTILIZATION, LIMIT, INODES_USAGE)

    statvfs = staticmethod(os.statvfs)

    def __init__(self, host, options):
        super().__init__(host, options)
        self.types = NameFilter(options.include_types, options.exclude_types)
        self.mountpoints = NameFilter(options.include_mountpoints, options.exclude_mountpoints)
        self._stuck: dict[str, StatfsCall] = {}
        self._worker: StatfsWorker | None = None

    def collect(self) -> list[Point]:
        mounts = [m for m in parse_mounts(self.host.read_mounts())
                  if self.types.allows(m.fstype) and self.mountpoints.allows(m.mountpoint)]
        points, failures = [], []
        mounts, overflow = capped(mounts, self.options.max_filesystems, "filesystems")
        for mount in mounts:
            try:
                stat = self._statfs(mount.mountpoint)
            except TimeoutError:  # before OSError, of which it is a subclass
                failures.append(f"{Host.printable(mount.mountpoint)}: statfs did not answer within "
                                f"{self.options.statfs_timeout:g}s (hung network filesystem?)")
                continue
            except OSError as error:
                failures.append(f"{Host.printable(mount.mountpoint)}: {error.strerror}")
                continue
            points += statvfs_points(mount, stat)
        if overflow:
            failures.append(overflow)
        if failures:
            raise PartialFailure(points, *failures)
        return points


    def _statfs(self, mountpoint: str):
        """statvfs with a time limit; a mount whose call is still stuck gets no second thread."""
        if (pending := self._stuck.get(mountpoint)) and not pending.finished.is_set():
            raise TimeoutError
        self._stuck.pop(mountpoint, None)
        call = StatfsCall(self.statvfs, self.host.host_path(mountpoint))
        if self._worker is None:
            self._worker = StatfsWorker()
        self._worker.calls.put(call)
        if not call.finished.wait(self.options.statfs_timeout):
            self._stuck[mountpoint] = call
            # it stays with the stuck call (and ends once that returns): the next mount gets a new worker
            self._worker.calls.put(None)
            self._worker = None
            raise TimeoutError
        if call.error:
            raise call.error
        return call.result


class StatfsWorker:
    """A daemon thread making statvfs calls one after the other (a call stuck on a dead server must not hold up
    the agent's exit); kept from call to call: a thread started per call cost more than the call."""

    def __init__(self):
        self.calls: queue.SimpleQueue[StatfsCall | None] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="statfs", daemon=True).start()

    def _serve(self):
        while (call := self.calls.get()) is not None:
            call.run()


class StatfsCall:
    def __init__(self, statvfs, path):
        self.statvfs, self.path = statvfs, path
        self.finished = threading.Event()
        self.result, self.error = None, None

    def run(self):
        try:
            self.result = self.statvfs(self.path)
        except OSError as error:
            self.error = error
        finally:
            self.finished.set()


def parse_mounts(text: str) -> list[Mount]:
    seen, mounts = set(), []
    for line in text.splitlines():
        device, mountpoint, fstype, options, *_ = line.split()
        mountpoint = unescape_path(mountpoint)
        if mountpoint in seen:  # stacked mounts: only the top one is visible, as df shows
            mounts = [m for m in mounts if m.mountpoint != mountpoint]
        seen.add(mountpoint)
        mounts.append(Mount(unescape_path(device), mountpoint, fstype, tuple(options.split(","))))
    return mounts


def statvfs_points(mount: Mount, stat) -> list[Point]:
    labels = mount.attributes
    block = stat.f_frsize
    used = (stat.f_blocks - stat.f_bfree) * block
    free = stat.f_bavail * block
    reserved = (stat.f_bfree - stat.f_bavail) * block
    points = [Point(LIMIT.name, stat.f_blocks * block, labels)]
    for state, value in (("used", used), ("free", free), ("reserved", reserved)):
        points.append(Point(USAGE.name, value, {**labels, "system.filesystem.state": state}))
    if used + free:
        points.append(Point(UTILIZATION.name, used / (used + free),
                            {**labels, "system.filesystem.state": "used"}))
    if stat.f_files:
        points.append(Point(INODES_USAGE.name, stat.f_files - stat.f_ffree,
                            {**labels, "system.filesystem.state": "used"}))
        points.append(Point(INODES_USAGE.name, stat.f_ffree,
                            {**labels, "system.filesystem.state": "free"}))
    return points
