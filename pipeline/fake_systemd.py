"""A fake systemd manager on a private D-Bus daemon (dbus-daemon), for the systemd source's tests and benchmark."""

import shutil
import subprocess
import threading
from contextlib import contextmanager

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

from pipeline.backends import MissingBackend

UNITS = [("nginx.service", "active"), ("backup.service", "failed"), ("cron.service", "activating"),
         ("ssh.socket", "active"), ("tmp.mount", "active")]


def unit_row(name, state):
    escaped = "".join(c if c.isalnum() else f"_{ord(c):02x}" for c in name)  # as systemd names its objects
    return (name, f"{name} description", "loaded", state, "running", "", "/org/freedesktop/systemd1/unit/" + escaped,
            0, "", "/")


class FakeSystemd:
    """Owns org.freedesktop.systemd1 on the bus and answers the manager's ListUnits with `units` (or an error, or
    nothing when `silent`), any other method with UnknownMethod as systemd does. `senders`: the bus name of each
    caller (a new connection has a new one)."""

    def __init__(self, address: str):
        self.units, self.error, self.calls, self.silent, self.senders = list(UNITS), None, 0, False, []
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
                self.senders.append(header.fields.get(HeaderFields.sender))
                method = (header.fields.get(HeaderFields.interface), header.fields.get(HeaderFields.member))
                if method != ("org.freedesktop.systemd1.Manager", "ListUnits"):
                    reply = new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", ("unknown method",))
                elif self.silent:
                    continue
                elif self.error:
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
        raise MissingBackend("dbus-daemon is not installed (Debian package dbus-daemon)")
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
