"""collector/usage.py: what reads a series, directly or through the series recorded from it."""
import json
import textwrap

from collector.usage import Use, uses


def test_readers_are_found_directly_and_through_recorded_series(tmp_path):
    rules, dashboards = tmp_path / "rules", tmp_path / "dashboards"
    rules.mkdir()
    dashboards.mkdir()
    (rules / "a.rules.yml").write_text(textwrap.dedent("""\
        groups:
        - name: g
          rules:
          - record: host:busy:avg5m
            expr: 1 - avg(rate(system_cpu_time_seconds_total{cpu_mode="idle"}[5m]))
          - record: host:busy:avg1h
            expr: avg_over_time(host:busy:avg5m[1h])
          - alert: Busy
            expr: host:busy:avg1h > 0.9
          - alert: Busy
            expr: host:busy:avg1h > 0.95
          - alert: Down
            expr: absent(system_uptime_seconds)
        """))
    (dashboards / "d.json").write_text(json.dumps({"title": "Host", "panels": [
        {"type": "row", "title": "CPU", "panels": [
            {"title": "Busy", "targets": [{"expr": "host:busy:avg5m"}, {"expr": "system_cpu_time_seconds_total"}]}]},
        {"title": "Text", "type": "text"}]}))
    found = uses(rules, dashboards)
    assert found["system_cpu_time_seconds_total"] == [
        Use("panel", "Host › Busy"), Use("recording rule", "host:busy:avg5m"),
        Use("alert", "Busy", via="host:busy:avg5m"), Use("panel", "Host › Busy", via="host:busy:avg5m"),
        Use("recording rule", "host:busy:avg1h", via="host:busy:avg5m")]
    assert found["system_uptime_seconds"] == [Use("alert", "Down")]
    assert str(Use("alert", "Busy", via="host:busy:avg5m")) == "alert `Busy` (via `host:busy:avg5m`)"
    assert str(Use("panel", "Host › Busy")) == "panel Host › Busy"
