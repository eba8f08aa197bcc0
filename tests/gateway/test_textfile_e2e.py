"""Textfile histograms and summaries through either gateway, with the real agent: every bucket and quantile is its
own series, with the same values in both backends (docs/workloads.md, the textfile source)."""
import pytest

from pipeline.services import Agent
from pipeline.testing import exporting, free_port, wait_for

LATENCY = """\
# TYPE newcomer_latency_seconds histogram
newcomer_latency_seconds_bucket{le="0.1"} 2
newcomer_latency_seconds_bucket{le="0.5"} 6
newcomer_latency_seconds_bucket{le="1"} 9
newcomer_latency_seconds_bucket{le="+Inf"} 10
newcomer_latency_seconds_sum 3.2
newcomer_latency_seconds_count 10
# TYPE newcomer_rpc_seconds summary
newcomer_rpc_seconds{quantile="0.5"} 0.2
newcomer_rpc_seconds{quantile="0.9"} 0.7
newcomer_rpc_seconds_sum 4.5
newcomer_rpc_seconds_count 12
"""
EXPECTED = {
    ("newcomer_latency_seconds_bucket", "le"): {"0.1": 2, "0.5": 6, "1": 9, "+Inf": 10},
    ("newcomer_latency_seconds_sum", None): {None: 3.2},
    ("newcomer_latency_seconds_count", None): {None: 10},
    ("newcomer_rpc_seconds", "quantile"): {"0.5": 0.2, "0.9": 0.7},
    ("newcomer_rpc_seconds_sum", None): {None: 4.5},
    ("newcomer_rpc_seconds_count", None): {None: 12},
}
# Rank 5 of 10 falls in (0.1, 0.5], holding samples 3 to 6: 0.1 + 0.4 * (5 - 2) / 4.
MEDIAN = 0.4


def textfile_agent(tmp_path, pipeline, text: str) -> Agent:
    directory = tmp_path / "textfile"
    directory.mkdir()
    (directory / "newcomer.prom").write_text(text)
    return Agent(free_port(), tmp_path / "agent", pipeline.gateway.otlp_url, interval="1s",
                 sources={"textfile": {"enabled": True, "directory": str(directory)}})


def by_label(backend, metric: str, label: str | None) -> dict:
    return {sample["metric"].get(label): float(sample["value"][1]) for sample in backend.query(metric)}


def test_histogram_and_summary_series_are_each_their_own_in_both_backends(gateway_pipeline, tmp_path):
    with exporting(textfile_agent(tmp_path, gateway_pipeline, LATENCY), gateway_pipeline):
        for backend in gateway_pipeline.backends:
            wait_for(lambda: all(by_label(backend, metric, label) for metric, label in EXPECTED), timeout=30,
                     what=f"the textfile's series in {backend.name}")
            found = {(metric, label): by_label(backend, metric, label) for metric, label in EXPECTED}
            assert found == EXPECTED, backend.name
            [median] = backend.query("histogram_quantile(0.5, newcomer_latency_seconds_bucket)")
            assert float(median["value"][1]) == pytest.approx(MEDIAN), backend.name


def test_other_textfile_labels_are_kept_by_the_collector_and_dropped_by_vmagent(gateway_pipeline, tmp_path):
    """The difference docs/workloads.md names: vmagent's allow-list cannot tell a textfile label from a resource
    attribute, so only `le` and `quantile` pass it."""
    text = '# TYPE newcomer_queue_length gauge\nnewcomer_queue_length{queue="mail"} 5\n'
    with exporting(textfile_agent(tmp_path, gateway_pipeline, text), gateway_pipeline):
        expected = {"otelcol": {"mail": 5}, "vmagent": {None: 5}}[gateway_pipeline.gateway.name]
        for backend in gateway_pipeline.backends:
            found = wait_for(lambda: by_label(backend, "newcomer_queue_length", "queue"), timeout=30,
                             what=f"newcomer_queue_length in {backend.name}")
            assert found == expected, backend.name
