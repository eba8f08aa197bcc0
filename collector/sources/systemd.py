"""systemd unit states (opt-in), read over D-Bus: one ListUnits call per collection on the system bus, with the
pure-Python jeepney client — no process is forked (unlike `systemctl`), and no systemd or dbus library is needed.

Like node_exporter's systemd collector: one series per unit and active state, 1 for the unit's current state and
0 for the others, so that an alert on "failed" resolves instead of going stale.
"""

from dataclasses import dataclass, field

from collector.sources.base import OptInOptions, PartialFailure, Source, Unavailable
from collector.sources.filters import REGEX, NameFilter, capped
from collector.spec import Point, updowncounter

# systemd's unit_active_state_table (src/basic/unit-def.c): maintenance since v246, refreshing since v254.
ACTIVE_STATES = ("active", "reloading", "inactive", "failed", "activating", "deactivating", "maintenance", "refreshing")
MANAGER = {"object_path": "/org/freedesktop/systemd1", "bus_name": "org.freedesktop.systemd1",
           "interface": "org.freedesktop.systemd1.Manager"}
CALL_TIMEOUT = 5.0


@dataclass(frozen=True)
class SystemdOptions(OptInOptions):
    include: tuple[str, ...] = field(default=(r"\.service$",), metadata=REGEX)  # searched in the unit name
    exclude: tuple[str, ...] = field(default=(), metadata=REGEX)
    max_units: int = field(default=500, metadata={"min": 1})
    # The system bus socket, a path on the host (under host_root in a container).
    bus_socket: str = "/run/dbus/system_bus_socket"


UNIT_STATE = updowncounter("systemd.unit.state", "1", "1 for the active state each unit is in, 0 for the other states.",
                           "systemd.unit.name", "systemd.unit.active_state",
                           condition="only with systemd.enabled: true, on hosts whose system bus is reachable",
                           precedent="the OpenTelemetry Collector's systemd receiver")


class SystemdSource(Source):
    name = "systemd"
    Options = SystemdOptions
    metrics = (UNIT_STATE,)

    def __init__(self, host, options):
        super().__init__(host, options)
        self.socket = host.host_path(options.bus_socket)
        self.filter = NameFilter(options.include, options.exclude)
        self._connection = None

    def collect(self) -> list[Point]:
        units = [(name, state) for name, state in self._list_units() if self.filter.allows(name)]
        units, overflow = capped(sorted(units), self.options.max_units, "units")
        # A state a later systemd adds is reported too: each unit's series always sum to 1.
        points = [Point(UNIT_STATE.name, int(state == candidate),
                        {"systemd.unit.name": name, "systemd.unit.active_state": candidate})
                  for name, state in units
                  for candidate in (ACTIVE_STATES if state in ACTIVE_STATES else (*ACTIVE_STATES, state))]
        if overflow:
            raise PartialFailure(points, overflow)
        return points

    def _list_units(self) -> list[tuple[str, str]]:
        # Imported here: an agent without this opt-in source does not load the D-Bus client (0.4 MiB of RSS).
        from jeepney import DBusAddress, DBusErrorResponse, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg

        if not self.socket.exists():
            raise Unavailable(f"no D-Bus system bus at {self.socket}")
        try:
            if self._connection is None:
                self._connection = open_dbus_connection(bus=f"unix:path={self.socket}")
            reply = self._connection.send_and_get_reply(new_method_call(DBusAddress(**MANAGER), "ListUnits"),
                                                        timeout=CALL_TIMEOUT)
            units = unwrap_msg(reply)[0]
        except (OSError, TimeoutError, DBusErrorResponse):
            self._close()  # a restarted bus or systemd: connect again next time
            raise
        # (name, description, load state, active state, sub state, followed, path, job id, job type, job path)
        return [(unit[0], unit[3]) for unit in units]

    def _close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None
