import errno
import time
import urllib.error
import urllib.request

import pytest

from collector.config import HealthConfig
from collector.health import HealthServer, Readiness
from collector.telemetry import AgentTelemetry


def thread_cpu_ns(native_id: int) -> int:
    with open(f"/proc/self/task/{native_id}/schedstat") as schedstat:
        return int(schedstat.read().split()[0])


def settled_cpu_ns(native_id: int) -> int:
    """The thread's CPU time once two readings 0.1 s apart agree (within 5 s)."""
    reading = thread_cpu_ns(native_id)
    for _ in range(50):
        time.sleep(0.1)
        reading, previous = thread_cpu_ns(native_id), reading
        if reading == previous:
            break
    return reading


def test_the_idle_endpoint_spends_no_cpu_and_stop_closes_it_at_once():
    server = HealthServer(HealthConfig(listen="127.0.0.1:0"), Readiness(AgentTelemetry(), window=30))
    server.start()
    url = f"http://127.0.0.1:{server.port}/healthz"
    try:
        assert urllib.request.urlopen(url, timeout=5).read() == b"ok\n"
        idle_from = settled_cpu_ns(server.thread.native_id)  # back to waiting after the probe
        time.sleep(1.2)  # socketserver's serve_forever would have woken twice
        assert thread_cpu_ns(server.thread.native_id) == idle_from
    finally:
        stopping_from = time.monotonic()
        server.stop()
    assert time.monotonic() - stopping_from < 0.45  # serve_forever's shutdown waits for its 0.5 s poll
    assert not server.thread.is_alive()
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        urllib.request.urlopen(url, timeout=5)


def test_ready_within_the_window_after_start_and_after_the_last_export():
    now = [100.0]
    telemetry = AgentTelemetry()
    readiness = Readiness(telemetry, window=10, clock=lambda: now[0])
    now[0] = 109.9
    assert readiness.check() == (True, "no successful export yet (10s since start)")
    now[0] = 110.0
    assert readiness.check() == (False, "no successful export yet (10s since start)")
    telemetry.last_export_success = 105.0
    now[0] = 114.9
    assert readiness.check() == (True, "last successful export 10s ago")
    now[0] = 115.0
    assert readiness.check() == (False, "last successful export 10s ago")
    telemetry.fatal = "send: the sending thread died"
    assert readiness.check() == (False, "send: the sending thread died")


@pytest.mark.parametrize("listen, address", [("127.0.0.1:0", "127.0.0.1"), ("[::1]:0", "::1")])
def test_the_endpoint_listens_where_configured_ipv6_too_on_a_daemon_thread_named_health(listen, address):
    server = HealthServer(HealthConfig(listen=listen), Readiness(AgentTelemetry(), window=30))
    server.start()
    try:
        assert server.server.server_address[0] == address
        assert (server.thread.name, server.thread.daemon) == ("health", True)
        host = f"[{address}]" if ":" in address else address
        assert urllib.request.urlopen(f"http://{host}:{server.port}/healthz", timeout=5).read() == b"ok\n"
    finally:
        server.stop()


def test_an_address_in_use_names_the_setting_and_the_variable_to_change():
    taken = HealthServer(HealthConfig(listen="127.0.0.1:0"), Readiness(AgentTelemetry(), window=30))
    try:
        with pytest.raises(OSError, match=rf"health endpoint 127\.0\.0\.1:{taken.port}: Address already in use; "
                                          r"choose another address with health\.listen in the config file or "
                                          r"HOSTAGENT_HEALTH__LISTEN=HOST:PORT$") as refused:
            HealthServer(HealthConfig(listen=f"127.0.0.1:{taken.port}"), Readiness(AgentTelemetry(), window=30))
        assert refused.value.errno == errno.EADDRINUSE
    finally:
        taken.stop()
