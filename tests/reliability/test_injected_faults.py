"""Bugs injected into the real agent process (tests/reliability/injected/sitecustomize.py): a source that
raises, collection cycles that raise, a transport that raises. The agent goes on exporting the rest, each
fault logged once and counted; or, when it cannot recover, it exits non-zero. It never runs on silently."""
from pathlib import Path

from pipeline.testing import running, wait_for
from tests.reliability.agent_process import AgentProcess
from tests.reliability.endpoint import Endpoint
from tests.reliability.otlp import latest, points

INJECTED = Path(__file__).parent / "injected"


def faulty_agent(tmp_path, endpoint: str, fault: str) -> AgentProcess:
    return AgentProcess(tmp_path / "agent", endpoint,
                        environment={"PYTHONPATH": str(INJECTED), "INJECT_FAULT": fault})


def four_exports_with(tmp_path, fault: str) -> tuple[list, str]:
    """What an agent with `fault` exported in its first four requests (it must still run then), and its log."""
    with Endpoint() as receiver:
        with running(faulty_agent(tmp_path, receiver.url(), fault)) as agent:
            wait_for(lambda: len(receiver.received()) >= 4, timeout=30, what="four exports")
            assert agent.running()
            log = agent.log()
        return receiver.received(), log


def test_a_source_that_raises_costs_only_its_own_data(tmp_path):
    received, log = four_exports_with(tmp_path, "source")
    assert latest(received, "hostagent.source.collections", hostagent_source="memory", hostagent_outcome="error") >= 3
    assert not points(received, "system.memory.usage")
    assert len(points(received, "system.uptime")) >= 4  # the other sources keep exporting
    assert log.count("source memory: ZeroDivisionError: injected source fault") == 1, log


def test_a_collection_cycle_that_raises_is_counted_logged_once_and_the_next_cycles_export(tmp_path):
    received, log = four_exports_with(tmp_path, "collect")
    assert latest(received, "hostagent.faults", hostagent_stage="collect") >= 3
    assert latest(received, "hostagent.faults", hostagent_stage="send") == 0
    assert log.count("collect: unexpected OverflowError: injected collect fault") == 1, log
    assert "Traceback" in log


def test_a_transport_that_keeps_raising_makes_the_agent_exit_non_zero(tmp_path):
    with Endpoint() as receiver:
        agent = faulty_agent(tmp_path, receiver.url(), "transport")
        with running(agent):
            code = wait_for(lambda: agent.process.poll(), timeout=30, what="the agent to exit")
            log = agent.log()
        assert receiver.received() == []
    assert code == 1
    assert log.count("send: unexpected RuntimeError: injected transport fault") == 1, log
    assert "send failed 3 times in a row: stopping, to be restarted" in log, log
