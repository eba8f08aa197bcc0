"""Panels' answers evaluated by both engines on crafted samples (crafted.py): those that depend on the shape of the
data (two agents on one host, series that stopped, a counter's first sample) and the fleet's and a host's values
(memory used, network in and out, retransmit share, who is reporting, the busiest hosts)."""
from __future__ import annotations

from .crafted import AGENT, JOB, Expect, assert_both, panel_expr

PIPELINE = "pipeline-health"
# Two agents on one host: the `instance` label (service.instance.id) tells them apart.
FIRST, SECOND = f'{AGENT}, instance="agent-a"', f'{AGENT}, instance="agent-b"'


def test_agents_reporting_counts_two_agents_on_one_host_as_two(tmp_path):
    series = {f"system_uptime_seconds{{{FIRST}}}": "100+10x30", f"system_uptime_seconds{{{SECOND}}}": "100+10x30"}
    assert_both(panel_expr(PIPELINE, "Agents reporting"), series, [Expect("4m", {"{}": 2})], tmp_path)


def test_agent_memory_has_a_series_per_agent(tmp_path):
    series = {f"hostagent_memory_usage_bytes{{{FIRST}}}": "1000x30",
              f"hostagent_memory_usage_bytes{{{SECOND}}}": "3000x30"}
    expected = {'{host_name="web-1", instance="agent-a"}': 1000, '{host_name="web-1", instance="agent-b"}': 3000}
    assert_both(panel_expr(PIPELINE, "Agent memory"), series, [Expect("4m", expected)], tmp_path)


def test_export_requests_has_a_line_per_agent_and_outcome(tmp_path):
    # one request per 10 s export from each agent: 0.1 per second each, not 0.2 for the host
    series = {f'hostagent_export_requests_total{{{agent}, hostagent_outcome="success"}}': "0+1x30"
              for agent in (FIRST, SECOND)}
    expected = {f'{{host_name="web-1", hostagent_outcome="success", instance="agent-{x}"}}': 0.1 for x in "ab"}
    assert_both(panel_expr(PIPELINE, "Export requests"), series, [Expect("4m", expected)], tmp_path)


def test_top_processes_table_lists_only_processes_of_the_latest_exports(tmp_path):
    """Without staleness markers a process that left the top N long ago (kthreadd, sampled in the first export)
    must not stay in the table as long as the backend's lookback."""
    gone, current = 'process_executable_name="kthreadd", process_pid="2"', \
        'process_executable_name="python3", process_pid="100"'
    series = {f"process_memory_usage_bytes{{{AGENT}, {gone}}}": "0 0 0",
              f"process_memory_usage_bytes{{{AGENT}, {current}}}": "5000x30",
              f'process_cpu_time_seconds_total{{{AGENT}, {gone}, cpu_mode="system"}}': "1 1 1",
              f'process_cpu_time_seconds_total{{{AGENT}, {current}, cpu_mode="user"}}': "0+5x30"}
    key = '{process_executable_name="python3", process_pid="100"}'
    assert_both(panel_expr("host-detail", "Top processes", "B"), series, [Expect("4m", {key: 5000})],
                        tmp_path / "memory")
    assert_both(panel_expr("host-detail", "Top processes", "A"), series, [Expect("4m", {key: 0.5})],
                        tmp_path / "cpu")


# Evaluated 90 minutes after the first sample: the dashboard's range ($__range, 1h) starts at minute 30.
IN_RANGE = "90m"


def test_textfile_skips_are_whole_and_count_the_first(tmp_path):
    errors = "hostagent_textfile_errors_total"
    series = {
        # first skipped at minute 40: the counter is created at 1; four more skips
        f'{errors}{{{AGENT}, file_name="new.prom"}}': "_x240 1 2 3 4 5x300",
        # skipped 3 times before the range, twice in it
        f'{errors}{{{AGENT}, file_name="old.prom"}}': "3x200 3 4 5x300",
        # the agent restarted in the range (counter from 0 again): the skips since
        f'{errors}{{{AGENT}, file_name="restarted.prom"}}': "4x250 1 2x300",
    }
    expected = {'{file_name="new.prom"}': 5, '{file_name="old.prom"}': 2, '{file_name="restarted.prom"}': 2}
    assert_both(panel_expr("workloads", "Textfiles", "B"), series, [Expect(IN_RANGE, expected)], tmp_path)


def test_oom_kills_are_whole_and_count_a_new_cgroup_s_first(tmp_path):
    events = 'linux_cgroup_memory_events_total{%s, linux_cgroup_path="%s", linux_cgroup_memory_event="oom_kill"}'
    series = {events % (AGENT, "/old.slice"): "1x200 2 2 3x300",  # one kill before the range, two in it
              events % (AGENT, "/new.slice"): "_x300 1x300",  # first seen at minute 50 after a kill
              events % (AGENT, "/calm.slice"): "0x540"}
    expected = {'{linux_cgroup_path="/old.slice"}': 2, '{linux_cgroup_path="/new.slice"}': 1,
                '{linux_cgroup_path="/calm.slice"}': 0}
    assert_both(panel_expr("workloads", "Cgroups", "C"), series, [Expect(IN_RANGE, expected)], tmp_path)


def test_vmagent_gateway_panels_name_the_backend_of_each_remote_write_url(tmp_path):
    """vmagent labels a remote-write URL's metrics url="<n>:secret-url", n its place among the -remoteWrite.url
    flags (vmagent.flags: Prometheus first, VictoriaMetrics second)."""
    for title, ref, metric, values in (("Gateway queue", "A", "vmagent_remotewrite_pending_data_bytes", "{n}00x30"),
                                       ("Gateway send failures", "A", "vmagent_remotewrite_retries_count_total",
                                        "0+{n}x30"),
                                       ("Gateway send failures", "B", "vmagent_remotewrite_packets_dropped_total",
                                        "0+{n}x30")):
        series = {f'{metric}{{job="vmagent", instance="127.0.0.1:8429", url="{n}:secret-url"}}': values.format(n=n)
                  for n in (1, 2)}
        value = 100 if title == "Gateway queue" else 0.1
        expected = {f'{{backend="{name}", url="{n}:secret-url"}}': n * value
                    for n, name in ((1, "prometheus"), (2, "victoriametrics"))}
        assert_both(panel_expr(PIPELINE, title, ref), series, [Expect("4m", expected)], tmp_path / f"{title}{ref}")


FLEET = "fleet-overview"


def _host(name: str) -> str:
    return f'job="{JOB}", host_name="{name}"'


def test_hosts_table_shows_memory_used_and_network_in_and_out(tmp_path):
    series = {f"system_memory_linux_available_bytes{{{AGENT}}}": "750x30",
              f"system_memory_limit_bytes{{{AGENT}}}": "1000x30",
              # 1000 bytes received and 3000 transmitted per 10 s export
              f'system_network_io_bytes_total{{{AGENT}, network_io_direction="receive"}}': "0+1000x30",
              f'system_network_io_bytes_total{{{AGENT}, network_io_direction="transmit"}}': "0+3000x30"}
    for ref, value in (("D", 0.25), ("H", 100), ("I", 300)):  # Memory, Network in, Network out
        assert_both(panel_expr(FLEET, "Hosts", ref), series, [Expect("4m", {'{host_name="web-1"}': value})],
                    tmp_path / ref)


def test_tcp_retransmit_share_is_of_the_segments_sent(tmp_path):
    segments = "system_network_tcp_segments_total"
    series = {f"system_network_tcp_retransmits_total{{{AGENT}}}": "0+5x30",
              f'{segments}{{{AGENT}, network_io_direction="transmit"}}': "0+100x30",
              f'{segments}{{{AGENT}, network_io_direction="receive"}}': "0+400x30"}
    assert_both(panel_expr("host-detail", "TCP retransmits"), series,
                [Expect("4m", {'{host_name="web-1"}': 0.05})], tmp_path)


def test_a_host_silent_for_longer_than_the_alert_s_silence_is_not_reporting(tmp_path):
    """web-3 stopped 5 minutes before the evaluation: longer than HostStoppedReporting's `silent` (2m), the others
    send every 10 s."""
    series = {f"system_uptime_seconds{{{_host('web-1')}}}": "100+10x60",
              f"system_uptime_seconds{{{_host('web-2')}}}": "100+10x60",
              f"system_uptime_seconds{{{_host('web-3')}}}": "100+10x30"}
    hosts = "(web-1|web-2|web-3)"
    assert_both(panel_expr(FLEET, "Hosts not reporting", host=hosts), series, [Expect("10m", {"{}": 1})],
                tmp_path / "silent")
    assert_both(panel_expr(FLEET, "Hosts reporting", host=hosts), series, [Expect("10m", {"{}": 2})],
                tmp_path / "reporting")
    status = {'{host_name="web-1"}': 1, '{host_name="web-2"}': 1, '{host_name="web-3"}': 0}
    assert_both(panel_expr(FLEET, "Hosts", "A", host=hosts), series, [Expect("10m", status)], tmp_path / "status")


def test_top_hosts_are_the_ten_highest(tmp_path):
    # web-1 … web-11, using 0.01 … 0.11 of their fullest filesystem: web-1 is the one left out
    series = {f"system_filesystem_utilization_ratio{{{_host(f'web-{n}')}}}": f"{n / 100}x30" for n in range(1, 12)}
    expected = {f'{{host_name="web-{n}"}}': n / 100 for n in range(2, 12)}
    assert_both(panel_expr(FLEET, "Top hosts by disk usage", host="web-.*"), series, [Expect("4m", expected)],
                tmp_path)
