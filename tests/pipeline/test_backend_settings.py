"""The project's Prometheus runs with the garbage-collector setting docs/deploy.md's sizing was measured with,
whatever a developer's shell exports (a GOGC meant for the collector must not reach it)."""
import re

from pipeline.services import PROMETHEUS_GOGC, Prometheus, http_get
from pipeline.testing import free_port, running

GOGC_PERCENT = re.compile(r"^go_gc_gogc_percent (\S+)$", re.MULTILINE)


def test_prometheus_collects_garbage_at_the_measured_gogc(tmp_path, monkeypatch):
    monkeypatch.setenv("GOGC", "50")
    with running(Prometheus(free_port(), tmp_path)) as prometheus:
        [percent] = GOGC_PERCENT.findall(http_get(prometheus.url + "/metrics").decode())
    assert float(percent) == PROMETHEUS_GOGC
