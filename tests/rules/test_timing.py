"""rules.timing: the timing table, the unit tests and the docs table generated from it, and the specification."""
from __future__ import annotations

import shutil

import pytest
import yaml

from pipeline.testing import require_binary
from rules import build, check, timing
from tests.rules.test_rules import RESOURCE_LABELS, agent_contract

THRESHOLDS, _ = build.load_thresholds()
RULES = timing.rendered_rules()
# The product specification (issue #12): (threshold, duration) per alert and severity. Deviating from it
# is a deliberate change of rules/thresholds.yml and of this table.
SPEC = {
    ("HostCpuBusy", "warning"): (0.80, "5m"),
    ("HostCpuBusy", "critical"): (0.95, "5m"),
    ("HostMemoryUsage", "warning"): (0.85, "0m"),
    ("HostMemoryUsage", "critical"): (0.95, "0m"),
    ("HostFilesystemUsage", "warning"): (0.80, "0m"),
    ("HostNetworkDrops", "warning"): (0.01, "5m"),
    ("HostStoppedReporting", "critical"): (None, "0m"),
}
TIMED = {row.alert: row for row in timing.TIMING}


def test_generated_tests_and_docs_table_are_fresh(capsys):
    assert timing.main(["--check"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().err == ""


def test_check_mode_fails_naming_each_stale_file(tmp_path, monkeypatch, capsys):
    rules_dir, docs = tmp_path / "rules", tmp_path / "docs"
    (rules_dir / "tests").mkdir(parents=True)
    docs.mkdir()
    test_file, doc = rules_dir / "tests" / timing.TEST_FILE.name, docs / timing.DOC.name
    test_file.write_text(timing.TEST_FILE.read_text() + "# edited by hand\n")
    shutil.copy(timing.DOC, doc)
    for name, value in (("RULES_DIR", rules_dir), ("TEST_FILE", test_file), ("DOC", doc)):
        monkeypatch.setattr(timing, name, value)
    assert timing.main(["--check"]) == 1
    assert capsys.readouterr().err == "rules/tests/timing.test.yml is stale: run `python -m rules.timing`\n"


def test_the_docs_table_replaces_only_what_lies_between_its_markers():
    begin, end = timing.DOC_BEGIN, timing.DOC_END
    text = f"intro\n{begin}\n| old table |\n{end}\n## Next section\n"
    assert timing.doc_text(text) == f"intro\n{begin}\n{timing.doc_table()}{end}\n## Next section\n"
    for broken in (text.replace(end, ""), text.replace(begin, "")):
        with pytest.raises(ValueError, match="lacks the markers"):
            timing.doc_text(broken)


@pytest.mark.parametrize("alert, severity", SPEC, ids=lambda value: str(value))
def test_the_specification_is_the_default_and_fires_its_duration_after_a_breach(alert, severity):
    threshold, duration = SPEC[(alert, severity)]
    level = THRESHOLDS[alert][severity]
    assert (level.get("threshold"), level["duration"]) == (threshold, duration)
    fired = {s.name: s for s in timing.severities(TIMED[alert], THRESHOLDS, RULES)}[severity]
    # Counters: exactly the duration. Gauges: the next evaluation after it. Absence: `silent` after the last sample.
    lag = build.seconds(level.get("silent", "1m"))
    assert build.seconds(duration) <= fired.fires_after <= build.seconds(duration) + lag


def test_every_host_alert_on_agent_series_is_in_the_timing_table():
    """Only alerts reading a recording (a measurement window by design) may be left out."""
    groups = [group for path in check.RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    host_groups = yaml.safe_load((build.RULES_DIR / "host.rules.yml").read_text())["groups"]
    on_agent_series = {rule["alert"] for group in host_groups for rule in group["rules"]
                       if not any(name in rule["expr"] for name in recorded)}
    assert on_agent_series == set(TIMED)


def test_counters_add_each_samples_own_increase_and_gaps_are_n_samples():
    counter = timing.Series("c_total", {}, lambda level: 10 * level, counter=True)
    assert timing.values(counter, [0.5, 0.5, 2.0, 2.0, 2.0, 0.5]) == "1000+5x1 1025+20x2 1070+5x0"
    absent = timing.Series("g", {}, lambda level: None if level else 7.0)
    assert timing.values(absent, [0, 1, 1, 0]) == "7x0 _x2 7x0"


@pytest.mark.parametrize("thresholds, severity, expected", [
    ([0.8, 0.95], 0.8, (0.875, 0.78)),
    ([0.8, 0.95], 0.95, (0.97, 0.78)),
    ([0.01], 0.01, (0.03, 0.005)),
    ([2.0], 2.0, (2.04, 1.96)),
    ([0], 0, (0.1, 0)),
])
def test_levels_are_just_above_the_severity_and_just_below_the_lowest_threshold(thresholds, severity, expected):
    found = [timing.Severity(str(t), t, 60, 0, {}) for t in thresholds]
    above, below = timing.levels_of(TIMED["HostCpuBusy"], found[thresholds.index(severity)], found)
    assert (round(above, 6), round(below, 6)) == expected


def test_the_timing_tests_catch_an_alert_that_waits_a_window_plus_for(tmp_path):
    """HostCpuBusy over 5-minute rates (what the alert did before): promtool reports it late and held too long."""
    require_binary("promtool")
    late = (build.RULES_DIR / "host.rules.yml").read_text().replace(
        'system_cpu_time_seconds_total{cpu_mode="idle"}[1m]', 'system_cpu_time_seconds_total{cpu_mode="idle"}[5m]')
    (tmp_path / "tests").mkdir()
    (tmp_path / "host.rules.yml").write_text(late)
    shutil.copy(timing.TEST_FILE, tmp_path / "tests")
    result = check.promtool_test(tmp_path / "tests" / timing.TEST_FILE.name, tmp_path)
    assert result.returncode != 0
    assert "alertname: HostCpuBusy, time: 15m" in result.stdout + result.stderr


def test_every_generated_group_checks_silence_before_firing_and_a_resolution():
    groups = yaml.safe_load(timing.TEST_FILE.read_text())["tests"]
    assert {group["name"].split(":")[0] for group in groups} == {
        f"{alert} {severity}" for alert in TIMED for severity in THRESHOLDS[alert]}
    for group in groups:
        states = [bool(case["exp_alerts"]) for case in group["alert_rule_test"]]
        assert states[0] is False and True in states and states[-1] is False, group["name"]


def spoken(seconds: int) -> str:
    return f"for {seconds // 60} minutes" if seconds else "next evaluation"


@pytest.mark.parametrize("alert", TIMED)
def test_the_runbook_states_the_thresholds_and_durations_of_the_rules(alert):
    meaning = (timing.RULES_DIR.parent / "docs" / "runbooks" / f"{alert}.md").read_text()
    meaning = " ".join(meaning.split("## Meaning", 1)[1].split("## Impact", 1)[0].split())
    for severity, level in THRESHOLDS[alert].items():
        threshold = level.get("threshold")
        if threshold is not None and TIMED[alert].at_or_below:  # a count of what is left
            assert f"at most {threshold:g}" in meaning, (severity, threshold)
        elif threshold is not None:
            said = f"{round(threshold * 100, 6):g} %" if 0 < threshold <= 1 else f"{threshold:g}"  # 0: any
            assert f"above {said}" in meaning or f"than {said}" in meaning, (severity, said)
        assert spoken(build.seconds(level["duration"])) in meaning, (severity, level["duration"])


def test_the_timing_tests_feed_exactly_the_series_and_labels_the_agent_emits():
    """Every input series: a declared name, all its labels, optional ones only as declared,
    the gateway's resource labels."""
    contract = agent_contract()
    groups = yaml.safe_load(timing.TEST_FILE.read_text())["tests"]
    for selector in {series["series"] for group in groups for series in group["input_series"]}:
        name, _, labels = selector.partition("{")
        given = {pair.split("=")[0] for pair in labels.rstrip("}").split(",")}
        required, optional = contract[name]
        assert required | {"job", "instance", "host_name", "host_id", "os_type"} <= given <= \
            required | optional | RESOURCE_LABELS, selector
