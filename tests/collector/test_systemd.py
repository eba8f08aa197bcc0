"""The systemd source against a real D-Bus daemon (dbus-daemon, private bus) serving a fake systemd manager."""

import pytest
from jeepney import DBusErrorResponse

from collector.host import Host
from collector.sources import systemd as systemd_source
from collector.sources.base import PartialFailure, Unavailable
from collector.sources.systemd import SystemdOptions, SystemdSource
from pipeline.fake_systemd import private_bus


def states(points):
    return {(p.attributes["systemd.unit.name"], p.attributes["systemd.unit.active_state"]): p.value for p in points}


def test_each_service_has_1_for_its_state_and_0_for_the_others(tmp_path):
    with private_bus(tmp_path) as systemd:
        source = SystemdSource(Host(tmp_path), SystemdOptions(enabled=True))
        found = states(source.collect())
        assert {name for name, _ in found} == {"nginx.service", "backup.service", "cron.service"}  # services only
        assert {key for key, value in found.items() if value == 1} == {
            ("nginx.service", "active"), ("backup.service", "failed"), ("cron.service", "activating")}
        assert len(found) == 3 * len(systemd_source.ACTIVE_STATES) == 3 * 8
        systemd.units[1] = ("backup.service", "inactive")
        found = states(source.collect())  # over the same connection
        assert found[("backup.service", "failed")] == 0 and found[("backup.service", "inactive")] == 1
        assert systemd.calls == 2


def test_every_unit_is_in_exactly_one_state_whatever_state_systemd_names(tmp_path):
    with private_bus(tmp_path) as systemd:
        systemd.units[:3] = [("nginx.service", "refreshing"), ("backup.service", "maintenance"),
                             ("cron.service", "hibernating")]  # a state of a systemd to come
        found = states(SystemdSource(Host(tmp_path), SystemdOptions(enabled=True)).collect())
    for unit, state in (("nginx.service", "refreshing"), ("backup.service", "maintenance"),
                        ("cron.service", "hibernating")):
        assert found[(unit, state)] == 1
        assert sum(value for (name, _), value in found.items() if name == unit) == 1


def test_filters_and_the_unit_cap(tmp_path):
    with private_bus(tmp_path):
        everything = SystemdSource(Host(tmp_path), SystemdOptions(enabled=True, include=(), exclude=(r"\.mount$",)))
        assert {name for name, _ in states(everything.collect())} == {
            "nginx.service", "backup.service", "cron.service", "ssh.socket"}
        capped = SystemdSource(Host(tmp_path), SystemdOptions(enabled=True, max_units=2))
        with pytest.raises(PartialFailure, match="3 units, only max_units=2 kept") as partial:
            capped.collect()
        assert {name for name, _ in states(partial.value.points)} == {"backup.service", "cron.service"}


def test_an_error_reply_fails_the_collection_and_the_next_one_reconnects(tmp_path):
    with private_bus(tmp_path) as systemd:
        source = SystemdSource(Host(tmp_path), SystemdOptions(enabled=True))
        systemd.error = "org.freedesktop.DBus.Error.AccessDenied"
        with pytest.raises(DBusErrorResponse, match="AccessDenied"):
            source.collect()
        systemd.error = None
        assert states(source.collect())[("nginx.service", "active")] == 1
        assert len(set(systemd.senders)) == 2, "the call after the error comes over a new connection"


def test_a_systemd_that_does_not_answer_fails_the_collection_after_the_call_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(systemd_source, "CALL_TIMEOUT", 0.3)
    with private_bus(tmp_path) as systemd:
        source = SystemdSource(Host(tmp_path), SystemdOptions(enabled=True))
        systemd.silent = True
        with pytest.raises(TimeoutError):
            source.collect()
        systemd.silent = False
        assert states(source.collect())[("nginx.service", "active")] == 1


def test_no_system_bus_is_unavailable(tmp_path):
    with pytest.raises(Unavailable, match="no D-Bus system bus at"):
        SystemdSource(Host(tmp_path), SystemdOptions(enabled=True)).collect()
