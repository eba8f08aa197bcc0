"""Panels whose answer depends on the shape of the data, evaluated by both engines on crafted samples
(crafted.py): two agents on one host, series that stopped, a counter's first sample."""
from __future__ import annotations

from .crafted import AGENT, Expect, failures, panel_expr

PIPELINE = "pipeline-health"
# Two agents on one host: the `instance` label (service.instance.id) tells them apart.
FIRST, SECOND = f'{AGENT}, instance="agent-a"', f'{AGENT}, instance="agent-b"'


def test_agents_reporting_counts_two_agents_on_one_host_as_two(tmp_path):
    series = {f"system_uptime_seconds{{{FIRST}}}": "100+10x30", f"system_uptime_seconds{{{SECOND}}}": "100+10x30"}
    assert not failures(panel_expr(PIPELINE, "Agents reporting"), series, [Expect("4m", {"{}": 2})], tmp_path)


def test_agent_memory_has_a_series_per_agent(tmp_path):
    series = {f"hostagent_memory_usage_bytes{{{FIRST}}}": "1000x30",
              f"hostagent_memory_usage_bytes{{{SECOND}}}": "3000x30"}
    expected = {'{host_name="web-1", instance="agent-a"}': 1000, '{host_name="web-1", instance="agent-b"}': 3000}
    assert not failures(panel_expr(PIPELINE, "Agent memory"), series, [Expect("4m", expected)], tmp_path)


def test_export_requests_has_a_line_per_agent_and_outcome(tmp_path):
    # one request per 10 s export from each agent: 0.1 per second each, not 0.2 for the host
    series = {f'hostagent_export_requests_total{{{agent}, hostagent_outcome="success"}}': "0+1x30"
              for agent in (FIRST, SECOND)}
    expected = {f'{{host_name="web-1", hostagent_outcome="success", instance="agent-{x}"}}': 0.1 for x in "ab"}
    assert not failures(panel_expr(PIPELINE, "Export requests"), series, [Expect("4m", expected)], tmp_path)
