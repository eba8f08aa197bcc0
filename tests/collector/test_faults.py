"""Unexpected exceptions in the agent's loops: counted, logged once, fatal when they persist or kill a thread —
and then /readyz fails with the reason."""
import logging
import threading

from collector.faults import Faults
from collector.health import Readiness
from collector.telemetry import AgentTelemetry


def faults_with(limit: int = 3) -> tuple[Faults, AgentTelemetry, threading.Event]:
    telemetry, stop = AgentTelemetry(), threading.Event()
    return Faults(telemetry, limit, on_fatal=stop.set), telemetry, stop


def test_a_recurring_fault_is_counted_every_time_and_logged_once(caplog):
    faults, telemetry, stop = faults_with()
    caplog.set_level(logging.ERROR, logger="collector.faults")
    for _ in range(5):
        faults.report("collect", KeyError("cpu"))
        faults.clear("collect")  # the next cycle worked
    assert telemetry.faults == {"collect": 5}
    assert [r.getMessage() for r in caplog.records] == ["collect: unexpected KeyError: 'cpu'"]
    assert caplog.records[0].exc_info and not stop.is_set() and telemetry.fatal is None


def test_faults_in_a_row_up_to_the_limit_are_fatal_and_readiness_fails():
    faults, telemetry, stop = faults_with(limit=3)
    readiness = Readiness(telemetry, window=3600)
    for _ in range(2):
        faults.report("send", RuntimeError("boom"))
    assert not stop.is_set() and readiness.check()[0]
    faults.report("send", RuntimeError("boom"))
    assert stop.is_set()
    assert readiness.check() == (False, "send failed 3 times in a row")


def test_a_thread_that_dies_is_fatal():
    faults, telemetry, stop = faults_with()

    def loop():
        raise OverflowError("timestamp out of range for platform time_t")
    thread = threading.Thread(target=faults.guard("collect", loop))
    thread.start()
    thread.join()
    assert stop.is_set()
    assert telemetry.fatal == "the collect thread died: OverflowError: timestamp out of range for platform time_t"
