"""Every rule expression on both real backends, fed by the real agent through the vmagent gateway."""
from __future__ import annotations

import pytest
import yaml

from pipeline.testing import wait_for
from rules import check

RULES = [rule for path in check.RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
         for rule in group["rules"]]
HOST_LABELS = {"job", "instance", "host_name"}
# Recordings every Linux host yields from the agent's default sources (swap, disks, errors may be absent).
EVERYWHERE = ["host_name:system_cpu_utilization:avg5m", "host_name_cpu_mode:system_cpu_time:ratio_rate5m",
              "host_name:system_cpu_load_average_1m:per_cpu_avg5m", "host_name:system_memory_utilization:avg5m",
              "host_name_fault_type:system_paging_faults:rate5m",
              "host_name_mountpoint:system_filesystem_utilization:avg5m",
              "host_name:system_cpu_utilization:avg1h", "host_name:system_memory_utilization:avg1h"]
SHARES = [name for name in EVERYWHERE if "utilization" in name or "ratio" in name]
EXPRESSIONS = {rule.get("record") or rule["alert"]: rule["expr"] for rule in RULES}


@pytest.mark.parametrize("backend", ["prometheus", "victoriametrics"])
def test_every_rule_expression_is_accepted(fed_pipeline, backend):
    server = getattr(fed_pipeline, backend)
    for rule in RULES:
        server.query(rule["expr"])  # raises with the backend's error message on a bad expression


@pytest.mark.parametrize("backend", ["prometheus", "victoriametrics"])
@pytest.mark.parametrize("record", EVERYWHERE)
def test_recording_yields_per_host_series_from_the_agent(fed_pipeline, backend, record):
    server = getattr(fed_pipeline, backend)
    result = wait_for(lambda: server.query(EXPRESSIONS[record]), timeout=30, what=f"{record} on {backend}")
    for series in result:
        assert set(series["metric"]) >= HOST_LABELS, series["metric"]
        assert {"host_id", "os_type"}.isdisjoint(series["metric"]), series["metric"]
        if record in SHARES:
            assert 0 <= float(series["value"][1]) <= 1, series
