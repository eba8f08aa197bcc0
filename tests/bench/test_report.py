"""The report's arithmetic on hand-built results: each cell is the figure it names, each target's verdict its own."""

from bench import capacity
from bench.cost import Cost
from bench.loadgen import Sent
from bench.report import OURS, TARGET_HOSTS, breakdown, capacity_steps, costs, targets
from bench.suite import Results, Settings
from bench.throughput import Step


def _rows(markdown: str) -> dict[str, dict[str, str]]:
    """A Markdown table's rows by their first cell, each as {header: cell}."""
    headers, _, *rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown.splitlines()]
    return {row[0]: dict(zip(headers, row)) for row in rows}


def _cost(name: str, cpu_per_cycle: float, points: int = 80) -> Cost:
    return Cost(name, cpu_per_cycle, rss=20 * 2**20, peak_rss=25 * 2**20, cycles=30, points=points, names=None)


# The agent takes half node_exporter's CPU per cycle and twice the hostmetrics receiver's.
COSTS = [_cost(OURS, 0.002), _cost("node_exporter", 0.004), _cost("hostmetrics receiver", 0.001)]


def test_costs_give_the_agent_s_cpu_against_each_peer_s_and_per_point():
    ours = _rows(costs(Results(Settings(), costs=COSTS)))[OURS]
    assert ours["CPU per cycle"] == "2.0 ms"
    assert (ours["× node_exporter"], ours["× hostmetrics receiver"]) == ("0.50", "2.00")
    assert ours["CPU per point"] == "25 µs"  # 2 ms over 80 points


def test_a_target_reached_exactly_is_met():
    held = Step(hosts=TARGET_HOSTS, interval=10.0, busy=[4.0, 4.0], points=100,
                samples={"prometheus": 100, "victoriametrics": 100})
    found = _rows(targets(Results(Settings(interval=10.0), costs=COSTS, steps=[held])))
    assert found["agent CPU per cycle ≤ 0.5× node_exporter's per cycle"]["measured"] == "0.50×"
    assert found["agent CPU per cycle ≤ 0.5× node_exporter's per cycle"]["result"] == "met"
    assert found["agent CPU per cycle ≤ 1.0× hostmetrics receiver's per cycle"]["result"] == "**missed**"
    hosts = found[f"≥ {TARGET_HOSTS} hosts at a 10 s interval, zero loss"]
    assert (hosts["measured"], hosts["result"]) == (f"{TARGET_HOSTS} hosts at 10 s", "met")


def test_breakdown_gives_each_phase_s_share_of_the_cycle():
    found = _rows(breakdown(Results(Settings(), phases={"collect": 0.003, "export": 0.001})))
    assert [(row["CPU per cycle"], row["share"]) for row in found.values()] == [
        ("3.00 ms", "75%"), ("1.00 ms", "25%"), ("4.00 ms", "100%")]


def test_a_gateway_step_s_row_gives_its_warm_up_its_drain_and_every_failed_request():
    step = capacity.Step("otelcol", 2000, 10.0, 3, points_per_request=187, series_created_after=9.25, drain=0.5,
                         warmup=Sent(failures=2), sent=Sent(failures=1, latencies=[0.02] * 100),
                         cpu={"otelcol": 0.5}, rss={"otelcol": 100 * 2**20},
                         samples={"prometheus": 1496000, "victoria-metrics": 1496000}, series={
                             "prometheus": 374000, "victoria-metrics": 374000})
    row = _rows(capacity_steps([step]))["2000"]
    assert (row["data points/s"], row["warm-up queryable after"], row["last cycle queryable after"]) == (
        "37400", "9.2 s", "0.5 s")
    assert (row["failed requests"], row["points sent"], row["data points/s per gateway core"]) == (
        "3", "1496000", "74800")
    assert row["result"] == "requests failed"
