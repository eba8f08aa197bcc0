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
