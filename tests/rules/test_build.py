"""rules.build: templates plus thresholds give rule files; mistakes in either are errors, not silent output."""
from __future__ import annotations

import functools
import re
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from rules import build
from tests.support.declarations import AS_BYTES, METRIC, PROMETHEUS, redeclare

THRESHOLDS = """
links: {runbooks: "https://runbooks.test/", grafana: "http://grafana.test"}
alerts:
  DiskBusy:
    warning: {threshold: 0.8, duration: 5m, keep_firing_for: 2m}
    critical: {threshold: 0.9, duration: 1m}
"""
TEMPLATE = """
groups:
  - name: disk-${window}
    each: [{window: 5m}, {window: 1h}]
    rules:
      - record: host_name:disk:rate${window}
        expr: rate(disk_seconds_total[${window}])
  - name: alerts
    rules:
      - alert: DiskBusy
        dashboard: host-detail
        expr: host_name:disk:rate5m > ${threshold}
        annotations:
          summary: 'Disk busy on {{ $labels.host_name }}'
          description: '{{ $value | humanizePercentage }}, ${severity} above ${threshold|percent}'
"""


def write_sources(tmp_path: Path, template: str = TEMPLATE, thresholds: str = THRESHOLDS) -> tuple[Path, Path]:
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    (source_dir / "disk.yml").write_text(textwrap.dedent(template))
    (tmp_path / "thresholds.yml").write_text(textwrap.dedent(thresholds))
    return source_dir, tmp_path / "thresholds.yml"


def rendered_groups(tmp_path: Path, **sources: str) -> list[dict]:
    outputs = build.render_all(*write_sources(tmp_path, **sources))
    return yaml.safe_load(outputs["disk.rules.yml"])["groups"]


def test_a_group_with_each_is_rendered_once_per_entry(tmp_path):
    groups = rendered_groups(tmp_path)
    assert [(g["name"], g["rules"][0]["record"], g["rules"][0]["expr"]) for g in groups[:2]] == [
        ("disk-5m", "host_name:disk:rate5m", "rate(disk_seconds_total[5m])"),
        ("disk-1h", "host_name:disk:rate1h", "rate(disk_seconds_total[1h])")]


def test_an_alert_gets_one_rule_per_severity_with_timing_labels_and_links(tmp_path):
    warning, critical = rendered_groups(tmp_path)[2]["rules"]
    assert warning == {
        "alert": "DiskBusy", "expr": "host_name:disk:rate5m > 0.8", "for": "5m", "keep_firing_for": "2m",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "Disk busy on {{ $labels.host_name }}",
                        "description": "{{ $value | humanizePercentage }}, warning above 80%",
                        "runbook_url": "https://runbooks.test/DiskBusy.md",
                        "dashboard_url": "http://grafana.test/d/host-detail?var-host={{ $labels.host_name }}"}}
    assert (critical["expr"], critical["for"], critical["labels"]) == (
        "host_name:disk:rate5m > 0.9", "1m", {"severity": "critical"})
    assert "keep_firing_for" not in critical


def test_for_is_the_duration_less_the_step_the_expression_measures(tmp_path):
    template = TEMPLATE.replace("dashboard: host-detail", "dashboard: host-detail\n        step: 1m")
    warning, critical = rendered_groups(tmp_path, template=template)[2]["rules"]
    assert (warning["for"], critical["for"]) == ("4m", "0s")


def test_a_duration_shorter_than_the_step_is_an_error(tmp_path):
    template = TEMPLATE.replace("dashboard: host-detail", "dashboard: host-detail\n        step: 2m")
    with pytest.raises(build.TemplateError,
                       match="DiskBusy/critical: duration 1m is shorter than the expression's step 2m"):
        build.render_all(*write_sources(tmp_path, template=template))


def test_a_severity_without_duration_is_an_error(tmp_path):
    with pytest.raises(build.TemplateError, match="DiskBusy/critical: no `duration`"):
        build.render_all(*write_sources(tmp_path, thresholds=THRESHOLDS.replace(", duration: 1m", "")))


@pytest.mark.parametrize("total, text", [(0, "0s"), (30, "30s"), (240, "4m"), (5400, "1h30m"), (86400, "1d")])
def test_duration_writes_seconds_in_prometheus_syntax(total, text):
    assert build.duration(total) == text
    assert build.seconds(text) == total


def test_go_template_dollars_are_left_alone():
    assert build.substitute("{{ $value }} ${x}", {"x": 1}, "t") == "{{ $value }} 1"


def test_a_metric_placeholder_is_the_prometheus_name_of_its_declaration():
    assert build.substitute("rate(${system.cpu.time}[1m]) > ${x}", {"x": 1}, "t") == \
        "rate(system_cpu_time_seconds_total[1m]) > 1"


@pytest.mark.parametrize("text, message", [
    ("${nope}", "unknown placeholder"),
    ("${x|bogus}", "unknown format"),
    ("${system.cpu.nope}", "t: system.cpu.nope is declared by no source"),
])
def test_bad_placeholders_are_errors(text, message):
    with pytest.raises(build.TemplateError, match=message):
        build.substitute(text, {"x": 1}, "t")


@pytest.mark.parametrize("duration, seconds", [("30s", 30), ("4h", 14400), ("1d", 86400), ("1h30m", 5400)])
def test_seconds(duration, seconds):
    assert build.seconds(duration) == seconds


@pytest.mark.parametrize("text", ["4 hours", "1.5h", "5m30", "1h x", "h", ""])
def test_a_malformed_duration_is_an_error(text):
    with pytest.raises(build.TemplateError, match=re.escape(f"not a duration: {text!r}")):
        build.seconds(text)


@pytest.mark.parametrize("ratio, text", [(0.8, "80%"), (0.005, "0.5%"), (0.125, "12.5%"), (1, "100%")])
def test_percent_keeps_the_threshold_s_digits(ratio, text):
    assert build.percent(ratio) == text


def test_thresholds_for_an_alert_no_template_defines_are_an_error(tmp_path):
    extra = THRESHOLDS + "  Forgotten:\n    warning: {threshold: 1, duration: 1m}\n"
    with pytest.raises(build.TemplateError, match="Forgotten"):
        build.render_all(*write_sources(tmp_path, thresholds=extra))


def test_a_window_no_template_reads_is_an_error(tmp_path):
    template = TEMPLATE.replace("${threshold|percent}'", "${threshold|percent} within ${fresh_within}'")
    windows = THRESHOLDS + "windows: {fresh_within: 3m}\n"
    (tmp_path / "read").mkdir()
    warning = rendered_groups(tmp_path / "read", template=template, thresholds=windows)[2]["rules"][0]
    assert warning["annotations"]["description"].endswith("above 80% within 3m")
    windows = windows.replace("fresh_within: 3m", "fresh_within: 3m, forgotten_window: 10m")
    with pytest.raises(build.TemplateError, match=re.escape("has windows no template reads: ['forgotten_window']")):
        build.render_all(*write_sources(tmp_path, template=template, thresholds=windows))


def test_an_alert_without_thresholds_is_an_error(tmp_path):
    with pytest.raises(build.TemplateError, match="no entry"):
        build.render_all(*write_sources(tmp_path, template=TEMPLATE.replace("alert: DiskBusy", "alert: Other")))


def test_an_unknown_severity_is_an_error(tmp_path):
    with pytest.raises(build.TemplateError, match="unknown severities"):
        build.render_all(*write_sources(tmp_path, thresholds=THRESHOLDS.replace("critical:", "page:")))


def test_an_unknown_dashboard_is_an_error(tmp_path):
    with pytest.raises(build.TemplateError, match="unknown dashboard"):
        build.render_all(*write_sources(tmp_path, template=TEMPLATE.replace("host-detail", "nowhere")))


def test_stale_names_edited_missing_and_orphaned_rule_files(tmp_path):
    source_dir, thresholds = write_sources(tmp_path)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    assert build.stale(rules_dir, source_dir, thresholds) == ["disk.rules.yml"]
    (rules_dir / "disk.rules.yml").write_text(build.render_all(source_dir, thresholds)["disk.rules.yml"])
    assert build.stale(rules_dir, source_dir, thresholds) == []
    (rules_dir / "old.rules.yml").write_text("groups: []\n")
    assert build.stale(rules_dir, source_dir, thresholds) == ["old.rules.yml"]


def test_per_host_selects_the_host_on_any_dashboard(tmp_path):
    template = TEMPLATE.replace("dashboard: host-detail", "dashboard: pipeline-health\n        per_host: true")
    warning, _ = rendered_groups(tmp_path, template=template)[2]["rules"]
    assert warning["annotations"]["dashboard_url"] == \
        "http://grafana.test/d/pipeline-health?var-host={{ $labels.host_name }}"


def test_an_unknown_template_key_is_an_error(tmp_path):
    with pytest.raises(build.TemplateError, match="template keys"):
        build.render_all(*write_sources(tmp_path, template=TEMPLATE.replace("dashboard: host-detail",
                                                                           "dashboard: host-detail\n        fro: 5m")))


def test_check_mode_passes_on_the_committed_rules_and_writes_nothing(capsys):
    before = {path: path.read_text() for path in build.RULES_DIR.glob("*.rules.yml")}
    assert build.main(["--check"]) == 0
    assert {path: path.read_text() for path in build.RULES_DIR.glob("*.rules.yml")} == before
    assert capsys.readouterr().err == ""


def test_check_mode_fails_naming_each_stale_rule_file(tmp_path, monkeypatch, capsys):
    for path in build.RULES_DIR.glob("*.rules.yml"):
        shutil.copy(path, tmp_path)
    (tmp_path / "host.rules.yml").write_text((tmp_path / "host.rules.yml").read_text() + "# edited by hand\n")
    monkeypatch.setattr(build, "stale", functools.partial(build.stale, tmp_path))
    assert build.main(["--check"]) == 1
    assert capsys.readouterr().err == "rules/host.rules.yml is stale: run `python -m rules.build`\n"


def test_the_rules_follow_a_metric_s_declaration(monkeypatch):
    """Only the Prometheus name changes in the rendered rules, wherever the metric is read."""
    committed = {name: (build.RULES_DIR / name).read_text() for name in build.render_all()}
    redeclare(monkeypatch, METRIC, unit="By")
    rendered = build.render_all()
    assert any(AS_BYTES in text for text in rendered.values())
    assert not any(PROMETHEUS in text for text in rendered.values())
    assert {name: text.replace(AS_BYTES, PROMETHEUS) for name, text in rendered.items()} == committed


def test_a_metric_renamed_in_its_declaration_fails_the_build_where_a_rule_reads_it(monkeypatch):
    redeclare(monkeypatch, METRIC, name="system.filesystem.fullness")
    recording = "host_name_mountpoint:system_filesystem_utilization:avg${window}"
    with pytest.raises(build.TemplateError, match=re.escape(f"{recording}: {METRIC} is declared by no source")):
        build.render_all()
