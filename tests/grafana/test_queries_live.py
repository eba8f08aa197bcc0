"""Every panel query, with its variables substituted as Grafana would, returns data from the real Prometheus
and the real VictoriaMetrics fed by the agent, through each gateway (the project's collector, vmagent).

The pipeline (live_pipeline.py) is `pipeline.testing`'s fed pipeline with the agent's opt-in sources switched
on and Kubernetes resource attributes set, so that per-core CPU, connections, top processes and the
cluster/node variables are proven too; plus the self-monitoring a deployment adds for the pipeline-health
dashboard (the components' own metrics in both backends, as `make run` gets them) and a vmalert per backend with an
alert that fires at once, so that ALERTS and ALERTS_FOR_STATE exist. Queries whose data cannot exist in this
pipeline (the other gateway's own metrics, GATEWAY_TARGETS) still run on both backends and must be accepted, they
may come back empty.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from dashgen import DASHBOARDS_DIR, lint, promql
from pipeline.testing import GATEWAYS, Pipeline, wait_for

from .live_pipeline import CLUSTER, NODE, TEST_ALERT, TEXTFILES, dashboards_pipeline

# Grafana's built-in time variables, with values a dashboard showing the last hour would get.
TIME_VALUES = {"__rate_interval": "1m", "__interval": "5s", "__range": "1h", "__range_s": "3600"}
RANGE_SECONDS, STEP_SECONDS = 300, 5
DATA_TIMEOUT = 45.0

# The Pipeline health panels' targets of one gateway: through the other gateway they are rightly empty.
GATEWAY_TARGETS: dict[str, set[tuple[str, str, str]]] = {
    "otelcol": {("pipeline-health", "Gateway queue", "B"), ("pipeline-health", "Gateway send failures", "C"),
                ("pipeline-health", "Gateway accepted data points", "B")},
    "vmagent": {("pipeline-health", "Gateway queue", "A"), ("pipeline-health", "Gateway send failures", "A"),
                ("pipeline-health", "Gateway send failures", "B"),
                ("pipeline-health", "Gateway accepted data points", "A")},
}

_CGROUP_V1 = "the cgroup source reads cgroup v2 only; these machines have cgroup v1"
OPTIONAL: dict[tuple[str, str, str], str] = {
    **{("workloads", title, ref): _CGROUP_V1 for title, refs in (
        ("Cgroup CPU", "A"), ("Cgroup memory against its limit", "A"), ("Cgroups", "ABCD")) for ref in refs},
    ("host-detail", "Swap usage", "A"): "one series per swap device (system.device): none on a host without swap",
    ("host-detail", "Network interfaces", "B"): "virtual adapters (this machine's) report no link speed",
}


def optional(key: tuple[str, str, str], gateway: str) -> bool:
    """True when the target may come back empty through `gateway`: OPTIONAL, or it reads the other gateway's own
    metrics."""
    return key in OPTIONAL or any(key in targets for name, targets in GATEWAY_TARGETS.items() if name != gateway)


_TOP_PROCESSES = ("the top processes change between exports, and the backends differ in how long a vanished "
                  "series stays visible")
# Targets whose series (label sets) may legitimately differ between the two backends.
SERIES_MAY_DIFFER: dict[tuple[str, str, str], str] = {
    ("host-detail", "Top processes by CPU", "A"): _TOP_PROCESSES,
    ("host-detail", "Top processes", "A"): _TOP_PROCESSES,
    ("host-detail", "Top processes", "B"): _TOP_PROCESSES,
}


@pytest.fixture(scope="module", params=GATEWAYS)
def pipeline(request, tmp_path_factory) -> Iterator[Pipeline]:
    with dashboards_pipeline(tmp_path_factory.mktemp(f"grafana-pipeline-{request.param}"), request.param) as fed:
        yield fed


@pytest.fixture(scope="module")
def identity(pipeline) -> dict[str, str]:
    """The job and host_name the agent's series carry (identical in both backends)."""
    found = {backend.name: [r["metric"] for r in backend.query("group by (job, host_name) (system_uptime_seconds)")]
             for backend in pipeline.backends}
    assert found["prometheus"] == found["victoria-metrics"] and len(found["prometheus"]) == 1, found
    return found["prometheus"][0]


def _targets() -> Iterator[tuple[str, dict, dict]]:
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in lint.panels(dashboard):
            for target in panel.get("targets", []):
                yield dashboard, panel, target


TARGETS = list(_targets())


def _key(dashboard: dict, panel: dict, target: dict) -> tuple[str, str, str]:
    return dashboard["uid"], panel["title"], target["refId"]


def _regex_escape(value: str) -> str:
    """A value as Grafana puts it into a PromQL regex string: regex-escaped, then backslashes doubled."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", value)


def _values(dashboard: dict, identity: dict[str, str]) -> dict[str, str]:
    """Variable values for the dashboard's defaults: All for multi-value variables, the agent's host."""
    values = dict(TIME_VALUES)
    for variable in dashboard["templating"]["list"]:
        name = variable["name"]
        if variable.get("allValue"):
            values[name] = variable["allValue"]
        elif variable.get("multi"):
            values[name] = f"({_regex_escape(identity[name if name != 'host' else 'host_name'])})"
        elif name == "host":
            values[name] = identity["host_name"]
    return values


def _run(backend, target: dict, expr: str) -> list[dict]:
    if target["instant"]:
        return backend.query(expr)
    end = time.time()
    return backend.api("query_range", query=expr, start=end - RANGE_SECONDS, end=end, step=STEP_SECONDS)["result"]


BACKENDS = ["prometheus", "victoriametrics"]


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("dashboard, panel, target", TARGETS, ids=["/".join(_key(*t)) for t in TARGETS])
def test_panel_query_returns_data(pipeline, identity, backend_name, dashboard, panel, target):
    backend = getattr(pipeline, backend_name)
    expr = promql.substitute(target["expr"], _values(dashboard, identity))
    assert not promql.variables_in(expr), f"unsubstituted variables in {expr}"
    if optional(_key(dashboard, panel, target), pipeline.gateway.name):
        _run(backend, target, expr)  # must still be a query the backend accepts
        return
    wait_for(lambda: _run(backend, target, expr), timeout=DATA_TIMEOUT,
             what=f"data from {backend_name} for {expr}")


def _label_sets(result: list[dict]) -> list[tuple]:
    return sorted(tuple(sorted(series["metric"].items())) for series in result)


COMPARED = [t for t in TARGETS if _key(*t) not in OPTIONAL.keys() | SERIES_MAY_DIFFER.keys()]


@pytest.mark.parametrize("dashboard, panel, target", COMPARED, ids=["/".join(_key(*t)) for t in COMPARED])
def test_both_backends_return_the_same_series(pipeline, identity, dashboard, panel, target):
    """The dashboards work the same on either data source: same series, same labels."""
    if optional(_key(dashboard, panel, target), pipeline.gateway.name):
        return
    expr = promql.substitute(target["expr"], _values(dashboard, identity))

    def same() -> bool:
        prometheus, victoriametrics = (_label_sets(_run(b, target, expr)) for b in pipeline.backends)
        return prometheus == victoriametrics and prometheus

    wait_for(same, timeout=DATA_TIMEOUT, what=f"the same series from both backends for {expr}")


def _target(uid: str, title: str, ref_id: str = "A") -> tuple[dict, dict, dict]:
    return next(t for t in TARGETS if _key(*t) == (uid, title, ref_id))


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_firing_alerts_table_has_a_row_per_alert(pipeline, identity, backend_name):
    """The test alert fires on the one host once per textfile, as HostTextfileStale would: a row for each, with its
    file as the object and its own start time (a row merging alerts shows the newest)."""
    dashboard, _, target = _target("fleet-overview", "Firing alerts")
    expr = promql.substitute(target["expr"], _values(dashboard, identity))
    backend = getattr(pipeline, backend_name)
    firing = f'ALERTS_FOR_STATE{{alertname="{TEST_ALERT}"}} and ignoring (alertstate) ALERTS{{alertstate="firing"}}'
    at = time.time() - 2
    alerts = {(s["metric"]["host_name"], s["metric"]["file_name"]): float(s["value"][1]) * 1000
              for s in backend.api("query", query=firing, time=at)["result"]}
    rows = {(s["metric"].get("host_name"), s["metric"].get("object")): float(s["value"][1])
            for s in backend.api("query", query=expr, time=at)["result"] if s["metric"]["alertname"] == TEST_ALERT}
    assert sorted(file for _, file in alerts) == sorted(TEXTFILES)
    assert rows == alerts


def test_series_per_host_counts_the_same_on_both_backends(pipeline, identity):
    """Its description says the two backends' counts match: the numbers, not only the hosts (compared above), while
    the top processes' short-lived series come and go."""
    dashboard, _, target = _target("pipeline-health", "Series per host")
    expr = promql.substitute(target["expr"], _values(dashboard, identity))

    def counts(backend, end: int) -> dict[str, list]:
        result = backend.api("query_range", query=expr, start=end - RANGE_SECONDS, end=end, step=STEP_SECONDS)
        return {json.dumps(s["metric"], sort_keys=True): [(float(t), v) for t, v in s["values"]]
                for s in result["result"]}

    def same() -> bool:
        # the same instants for both, on the step grid and far enough in the past for both to hold all their data
        end = STEP_SECONDS * (int(time.time()) // STEP_SECONDS - 2)
        prometheus, victoriametrics = (counts(backend, end) for backend in pipeline.backends)
        return prometheus == victoriametrics and prometheus

    wait_for(same, timeout=DATA_TIMEOUT, what=f"the same counts from both backends for {expr}")


RATIO_PANELS = [t for t in TARGETS if t[1]["fieldConfig"]["defaults"].get("max") == 1 and _key(*t) not in OPTIONAL]


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("dashboard, panel, target", RATIO_PANELS, ids=["/".join(_key(*t)) for t in RATIO_PANELS])
def test_ratio_panels_stay_between_0_and_1(pipeline, identity, backend_name, dashboard, panel, target):
    expr = promql.substitute(target["expr"], _values(dashboard, identity))
    result = wait_for(lambda: _run(getattr(pipeline, backend_name), target, expr), timeout=DATA_TIMEOUT,
                      what=f"data for {expr}")
    values = [float(v) for series in result for _, v in series.get("values", [series.get("value")])]
    assert values and all(0 <= v <= 1 for v in values), (expr, sorted(values)[:3], sorted(values)[-3:])


def test_exception_tables_name_only_existing_targets():
    named = set(OPTIONAL) | set(SERIES_MAY_DIFFER) | set().union(*GATEWAY_TARGETS.values())
    assert named <= {_key(*t) for t in TARGETS}


def _label_values(backend, query: str) -> list[str]:
    match = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
    assert match, query
    selector, label = match.groups()
    return backend.api(f"label/{label}/values", **{"match[]": selector, "start": time.time() - 3600})


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("variable, label", [("job", "job"), ("cluster", "k8s_cluster_name"),
                                             ("node", "k8s_node_name"), ("host", "host_name")])
def test_variable_query_lists_the_agent(pipeline, identity, backend_name, variable, label):
    dashboard = json.loads((DASHBOARDS_DIR / "host-detail.json").read_text())
    query = next(v for v in dashboard["templating"]["list"] if v["name"] == variable)["query"]["query"]
    expected = {"k8s_cluster_name": CLUSTER, "k8s_node_name": NODE}.get(label) or identity[label]
    backend = getattr(pipeline, backend_name)
    assert _label_values(backend, promql.substitute(query, _values(dashboard, identity))) == [expected]
