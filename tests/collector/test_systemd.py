"""The systemd source against a real D-Bus daemon (dbus-daemon, private bus) serving a fake systemd manager."""

import shutil
import subprocess
import threading
from contextlib import contextmanager

import pytest
from jeepney import DBusErrorResponse, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

from collector.host import Host
from collector.sources.base import PartialFailure, Unavailable
from collector.sources.systemd import SystemdOptions, SystemdSource
from pipeline.testing import unavailable

UNITS = [("nginx.service", "active"), ("backup.service", "failed"), ("cron.service", "activating"),
         ("ssh.socket", "active"), ("tmp.mount", "active")]


def unit_row(name, state):
    escaped = "".join(c if c.isalnum() else f"_{ord(c):02x}" for c in name)  # as systemd names its objects
    return (name, f"{name} description", "loaded", state, "running", "", "/org/freedesktop/systemd1/unit/" + escaped,
            0, "", "/")


class FakeSystemd:
    """Owns org.freedesktop.systemd1 on the bus and answers ListUnits with `units` (or an error)."""

    def __init__(self, address: str):
        self.units, self.error, self.calls = list(UNITS), None, 0
        self.connection = open_dbus_connection(bus=address)
        self.connection.send_and_get_reply(message_bus.RequestName("org.freedesktop.systemd1"), timeout=5)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                message = self.connection.receive()
            except (OSError, EOFError, ValueError):  # closed by close()
                return
            header = message.header
            if header.message_type is MessageType.method_call:
                self.calls += 1
                if self.error:
                    reply = new_error(message, self.error, "s", ("access denied",))
                else:
                    reply = new_method_return(message, "a(ssssssouso)", ([unit_row(*u) for u in self.units],))
                self.connection.send(reply)

    def close(self):
        self.connection.close()


@contextmanager
def private_bus(root):
    """A dbus-daemon listening where the host `root` has its system bus, with a FakeSystemd on it."""
    if not shutil.which("dbus-daemon"):
        unavailable("dbus-daemon is not installed (Debian package dbus-daemon)")
    socket = root / "run/dbus/system_bus_socket"
    socket.parent.mkdir(parents=True)
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                               f"--address=unix:path={socket}", "--print-address"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        daemon.stdout.readline()  # printed once it listens
        fake = FakeSystemd(f"unix:path={socket}")
        try:
            yield fake
        finally:
            fake.close()
    finally:
        daemon.terminate()
        daemon.wait(5)


def states(points):
    return {(p.attributes["systemd.unit.name"], p.attributes["systemd.unit.active_state"]): p.value for p in points}


def test_each_service_has_1_for_its_state_and_0_for_the_others(tmp_path):
    with private_bus(tmp_path) as systemd:
        source = SystemdSource(Host(tmp_path), SystemdOptions(enabled=True))
        found = states(source.collect())
        assert {name for name, _ in found} == {"nginx.service", "backup.service", "cron.service"}  # services only
        assert {key for key, value in found.items() if value == 1} == {
            ("nginx.service", "active"), ("backup.service", "failed"), ("cron.service", "activating")}
        assert len(found) == 3 * 6
        systemd.units[1] = ("backup.service", "inactive")
        found = states(source.collect())  # over the same connection
        assert found[("backup.service", "failed")] == 0 and found[("backup.service", "inactive")] == 1
        assert systemd.calls == 2


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


def test_no_system_bus_is_unavailable(tmp_path):
    with pytest.raises(Unavailable, match="no D-Bus system bus at"):
        SystemdSource(Host(tmp_path), SystemdOptions(enabled=True)).collect()
