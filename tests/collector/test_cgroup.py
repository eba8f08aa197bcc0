"""The cgroup source over the fixture /sys/fs/cgroup: exact values, identity from the path, bounds."""

from pathlib import Path

import pytest

from collector.host import Host
from collector.sources.base import PartialFailure, Unavailable
from collector.sources.cgroup import CgroupOptions, CgroupSource, identity
from tests.collector.conftest import FIXTURE_ROOT

POD = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0c1d2e3f_4a5b_6c7d_8e9f_0a1b2c3d4e5f.slice"
CONTAINER = POD + "/cri-containerd-" + "0123456789abcdef" * 4 + ".scope"
DOCKER = "/system.slice/docker-" + "fedcba9876543210" * 4 + ".scope"


def collect(**options):
    return CgroupSource(Host(FIXTURE_ROOT), CgroupOptions(enabled=True, **options)).collect()


def by_path(points, metric, **attributes):
    return {p.attributes["linux.cgroup.path"]: p.value for p in points if p.metric == metric
            and all(p.attributes.get(k) == v for k, v in attributes.items())}


def test_cpu_memory_oom_and_pressure_per_cgroup():
    points = collect()
    assert set(by_path(points, "linux.cgroup.memory.usage")) == {
        "/kubepods.slice", "/kubepods.slice/kubepods-burstable.slice", POD, CONTAINER,
        "/system.slice", "/system.slice/nginx.service", DOCKER}  # the .mount unit is excluded by default
    assert by_path(points, "linux.cgroup.cpu.time", **{"cpu.mode": "user"})["/system.slice/nginx.service"] == 2.0
    assert by_path(points, "linux.cgroup.cpu.time", **{"cpu.mode": "system"})[CONTAINER] == 5.0
    assert by_path(points, "linux.cgroup.cpu.throttled_time")[POD] == 2.0
    assert by_path(points, "linux.cgroup.memory.usage")[CONTAINER] == 990_000_000
    # "max" is no limit: no series rather than a made-up number
    assert by_path(points, "linux.cgroup.memory.limit") == {
        "/kubepods.slice": 8589934592, POD: 1073741824, CONTAINER: 1073741824,
        "/system.slice/nginx.service": 536870912}
    assert by_path(points, "linux.cgroup.memory.events", **{"linux.cgroup.memory.event": "oom_kill"})[CONTAINER] == 3
    assert by_path(points, "linux.cgroup.memory.events", **{"linux.cgroup.memory.event": "max"})[
        "/system.slice/nginx.service"] == 12
    # the kernel's totals only (µs → s), one metric per resource as system.<resource>.linux.pressure.total
    assert {(p.metric, p.attributes["system.pressure.stall_type"]): p.value for p in points
            if "pressure" in p.metric and p.attributes["linux.cgroup.path"] == POD} == {
        (f"linux.cgroup.{resource}.pressure.total", stall_type): seconds
        for resource in ("cpu", "memory", "io") for stall_type, seconds in (("some", 4.0), ("full", 3.0))}


def test_container_and_pod_identity_come_from_the_path():
    points = collect()
    labels = {p.attributes["linux.cgroup.path"]: p.attributes for p in points
              if p.metric == "linux.cgroup.memory.usage"}
    assert labels[CONTAINER] == {"linux.cgroup.path": CONTAINER, "container.id": "0123456789abcdef" * 4,
                                 "k8s.pod.uid": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"}
    assert labels[POD] == {"linux.cgroup.path": POD, "k8s.pod.uid": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"}
    assert labels[DOCKER]["container.id"] == "fedcba9876543210" * 4
    assert labels["/system.slice/nginx.service"] == {"linux.cgroup.path": "/system.slice/nginx.service"}
    # The cgroupfs driver's layout: plain ids.
    assert identity("/kubepods/burstable/pod0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f/" + "ab" * 32) == {
        "linux.cgroup.path": "/kubepods/burstable/pod0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f/" + "ab" * 32,
        "k8s.pod.uid": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f", "container.id": "ab" * 32}


def test_depth_include_and_the_cgroup_cap_bound_the_walk():
    assert set(by_path(collect(max_depth=1), "linux.cgroup.memory.usage")) == {"/kubepods.slice", "/system.slice"}
    assert set(by_path(collect(include=("nginx",)), "linux.cgroup.memory.usage")) == {"/system.slice/nginx.service"}
    with pytest.raises(PartialFailure, match="7 cgroups, only max_cgroups=2 kept") as capped:
        collect(max_cgroups=2)
    assert len(by_path(capped.value.points, "linux.cgroup.memory.usage")) == 2


def test_a_cgroup_v1_host_is_unavailable(tmp_path):
    (tmp_path / "sys/fs/cgroup/memory").mkdir(parents=True)
    with pytest.raises(Unavailable, match="not a cgroup v2 hierarchy"):
        CgroupSource(Host(tmp_path), CgroupOptions(enabled=True)).collect()


def test_live_host_cgroups_or_unavailable_on_cgroup_v1():
    source = CgroupSource(Host("/"), CgroupOptions(enabled=True))
    if not Path("/sys/fs/cgroup/cgroup.controllers").is_file():
        with pytest.raises(Unavailable):
            source.collect()
        return
    points = source.collect()
    assert by_path(points, "linux.cgroup.cpu.time") and all(p.value >= 0 for p in points)


def test_a_cgroup_that_vanishes_or_cannot_be_read_leaves_the_others_measured(host_tree):
    cgroups = host_tree / "sys" / "fs" / "cgroup"
    (cgroups / "kubepods.slice" / "cpu.stat").unlink()  # removed while being read: skipped, not a failure
    (cgroups / "system.slice" / "memory.current").write_text("garbage\n")
    (cgroups / DOCKER.lstrip("/") / "memory.current").write_text("\n")
    unreadable = cgroups / "system.slice" / "nginx.service" / "memory.max"
    unreadable.unlink()
    unreadable.mkdir()  # unreadable, as a file without permission would be (as root, a mode would not stop the read)
    with pytest.raises(PartialFailure) as partial:
        CgroupSource(Host(host_tree), CgroupOptions(enabled=True)).collect()
    assert str(partial.value) == ("/system.slice: invalid literal for int() with base 10: 'garbage\\n'; "
                                  f"{DOCKER}: invalid literal for int() with base 10: '\\n'; "
                                  f"/system.slice/nginx.service: [Errno 21] Is a directory: '{unreadable}'")
    assert set(by_path(partial.value.points, "linux.cgroup.memory.usage")) == {
        "/kubepods.slice/kubepods-burstable.slice", POD, CONTAINER}


def test_missing_memory_events_count_0_and_a_missing_pressure_file_leaves_the_others(host_tree):
    nginx = host_tree / "sys" / "fs" / "cgroup" / "system.slice" / "nginx.service"
    (nginx / "memory.events").write_text("max 12\noom 1\n")  # no oom_kill line
    (nginx / "cpu.pressure").unlink()
    points = CgroupSource(Host(host_tree), CgroupOptions(enabled=True, include=("nginx",))).collect()
    assert {p.attributes["linux.cgroup.memory.event"]: p.value for p in points
            if p.metric == "linux.cgroup.memory.events"} == {"max": 12, "oom": 1, "oom_kill": 0}
    assert {p.metric for p in points if ".pressure." in p.metric} == {
        "linux.cgroup.memory.pressure.total", "linux.cgroup.io.pressure.total"}
