"""Render rules/src/*.yml templates with rules/thresholds.yml into rules/*.rules.yml.

    python -m rules.build            write the rule files
    python -m rules.build --check    exit 1 (and name the files) when a committed rule file is stale

Templates are Prometheus rule files plus five conventions:
- `${name}` / `${name|format}` placeholders (formats: percent, seconds) take their value from the
  variables in scope (thresholds.yml's `windows` everywhere); an unknown name is an error.
- `${system.cpu.time}`: a placeholder with a dot is a metric the agent declares (collector/sources), by its
  OTLP name; it becomes the Prometheus name its declaration translates to. A metric no source declares is an
  error, so renaming one in its declaration renames it in the rules or fails the build.
- a group with `each: [{var: value, ...}, ...]` is rendered once per entry (5m and 1h aggregates).
- an alert gets one rule per severity listed under its name in thresholds.yml; that entry's keys
  (`threshold`, `horizon`, ...) become variables, `keep_firing_for` and the `severity` label are set
  from it, `for` is its `duration` less the template's `step`, and `runbook_url`/`dashboard_url` are
  added from `links` and the alert's `dashboard:` (a Grafana dashboard uid), selecting the alert's
  host on `host-detail` and wherever the template says `per_host: true`.
- `step:` (default 0s) is how much of the breach the expression itself measures: an expression over
  1-minute windows (`rate(…[1m])`) is true one step after the breach starts, so `for: duration - step`
  makes the alert fire `duration` after a breach starts, not a window plus a `for` later.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from collector.sources import UndeclaredMetric, prometheus_name_of

RULES_DIR = Path(__file__).resolve().parent
SOURCE_DIR = RULES_DIR / "src"
THRESHOLDS = RULES_DIR / "thresholds.yml"
SEVERITIES = ("info", "warning", "critical")
DASHBOARDS = ("host-detail", "fleet-overview", "pipeline-health", "workloads")
HOST_VARIABLE = "?var-host={{ $labels.host_name }}"
ALERT_KEYS = {"alert", "expr", "labels", "annotations", "dashboard", "per_host", "step"}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)(?:\|([a-z]+))?\}")
DURATION = re.compile(r"(\d+)([smhdw])")
SECONDS_PER = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class TemplateError(ValueError):
    pass


def seconds(duration: str) -> int:
    parts = DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise TemplateError(f"not a duration: {duration!r}")
    return sum(int(n) * SECONDS_PER[u] for n, u in parts)


def duration(total: int) -> str:
    """Seconds in Prometheus syntax, largest units first: 300 -> 5m, 5400 -> 1h30m, 0 -> 0s."""
    parts = []
    for unit, size in sorted(SECONDS_PER.items(), key=lambda item: -item[1]):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def hold(level: Mapping[str, Any], step: str, where: str) -> str:
    """The rule's `for`: the severity's `duration` less the part of it the expression measures."""
    if "duration" not in level:
        raise TemplateError(f"{where}: no `duration` in {THRESHOLDS.name}")
    remaining = seconds(level["duration"]) - seconds(step)
    if remaining < 0:
        raise TemplateError(f"{where}: duration {level['duration']} is shorter than the expression's step {step}")
    return duration(remaining)


def percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


FORMATS = {"percent": percent, "seconds": seconds}


def substitute(text: str, variables: Mapping[str, Any], where: str) -> str:
    def replace(match: re.Match) -> str:
        name, form = match.groups()
        if "." in name and not form:
            try:
                return prometheus_name_of(name)
            except UndeclaredMetric as error:
                raise TemplateError(f"{where}: {error}") from None
        if name not in variables:
            raise TemplateError(f"{where}: unknown placeholder ${{{name}}}")
        if form and form not in FORMATS:
            raise TemplateError(f"{where}: unknown format |{form}")
        value = variables[name]
        return str(FORMATS[form](value) if form else value)
    return PLACEHOLDER.sub(replace, text)


def fill(node: Any, variables: Mapping[str, Any], where: str) -> Any:
    if isinstance(node, str):
        return substitute(node, variables, where)
    if isinstance(node, list):
        return [fill(item, variables, where) for item in node]
    if isinstance(node, dict):
        return {key: fill(value, variables, where) for key, value in node.items()}
    return node


def links(settings: Mapping[str, str], alert: str, dashboard: str, per_host: bool) -> dict[str, str]:
    if dashboard not in DASHBOARDS:
        raise TemplateError(f"{alert}: unknown dashboard {dashboard!r} (one of {', '.join(DASHBOARDS)})")
    query = HOST_VARIABLE if per_host or dashboard == "host-detail" else ""
    return {"runbook_url": f"{settings['runbooks'].rstrip('/')}/{alert}.md",
            "dashboard_url": f"{settings['grafana'].rstrip('/')}/d/{dashboard}{query}"}


def render_alert(template: dict, thresholds: Mapping[str, dict], settings: Mapping[str, str],
                 variables: Mapping[str, Any]) -> list[dict]:
    name = template["alert"]
    unknown_keys = set(template) - ALERT_KEYS
    if unknown_keys or "dashboard" not in template:
        raise TemplateError(f"{name}: template keys are {sorted(ALERT_KEYS)} (dashboard required), "
                            f"not {sorted(unknown_keys)}")
    levels = thresholds.get(name)
    if not levels:
        raise TemplateError(f"{name}: no entry in {THRESHOLDS.name}")
    unknown = set(levels) - set(SEVERITIES)
    if unknown:
        raise TemplateError(f"{name}: unknown severities {sorted(unknown)} in {THRESHOLDS.name}")
    body = {key: template[key] for key in ("expr", "labels", "annotations") if key in template}
    rules = []
    for severity in (s for s in SEVERITIES if s in levels):
        level = levels[severity]
        where = f"{name}/{severity}"
        filled = fill(body, {**variables, **level, "severity": severity}, where)
        rules.append({
            "alert": name,
            "expr": filled["expr"],
            "for": hold(level, template.get("step", "0s"), where),
            **({"keep_firing_for": level["keep_firing_for"]} if "keep_firing_for" in level else {}),
            "labels": {**filled.get("labels", {}), "severity": severity},
            "annotations": {**filled["annotations"], **links(settings, name, template["dashboard"],
                                                                 template.get("per_host", False))},
        })
    return rules


def render_group(group: dict, thresholds: Mapping[str, dict], settings: Mapping[str, str],
                 windows: Mapping[str, str]) -> list[dict]:
    rendered = []
    for each in group.get("each", [{}]):
        variables = {**windows, **each}
        rules = []
        for rule in group["rules"]:
            if "alert" in rule:
                rules += render_alert(rule, thresholds, settings, variables)
            else:
                rules.append(fill(rule, variables, rule["record"]))
        head = {key: value for key, value in group.items() if key not in ("each", "rules")}
        rendered.append({**fill(head, variables, group["name"]), "rules": rules})
    return rendered


def load_thresholds(path: Path = THRESHOLDS) -> tuple[dict, dict]:
    document = yaml.safe_load(path.read_text())
    return document["alerts"], document["links"]


def load_windows(path: Path = THRESHOLDS) -> dict[str, str]:
    """The windows every template may name (`${fresh_within}`)."""
    return yaml.safe_load(path.read_text()).get("windows", {})


def render(source: Path, thresholds: Mapping[str, dict], settings: Mapping[str, str],
           windows: Mapping[str, str] | None = None) -> str:
    template = yaml.safe_load(source.read_text())
    groups = [g for group in template["groups"] for g in render_group(group, thresholds, settings, windows or {})]
    header = (f"# Generated by `python -m rules.build` from rules/src/{source.name} and "
              f"rules/{THRESHOLDS.name}.\n# Do not edit: change the template or the thresholds and re-run.\n")
    return header + yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=1000,
                              allow_unicode=True)


def alert_templates(source_dir: Path = SOURCE_DIR) -> dict[str, dict]:
    """{alert name: its template} over every template file."""
    return {rule["alert"]: rule for source in sorted(source_dir.glob("*.yml"))
            for group in yaml.safe_load(source.read_text())["groups"] for rule in group["rules"] if "alert" in rule}


def render_all(source_dir: Path = SOURCE_DIR, thresholds_path: Path = THRESHOLDS) -> dict[str, str]:
    """{rule file name: text} for every template; fails on thresholds that no template uses."""
    thresholds, settings = load_thresholds(thresholds_path)
    windows = load_windows(thresholds_path)
    sources = sorted(source_dir.glob("*.yml"))
    outputs = {f"{s.stem}.rules.yml": render(s, thresholds, settings, windows) for s in sources}
    unused = set(thresholds) - set(alert_templates(source_dir))
    if unused:
        raise TemplateError(f"{thresholds_path.name} has entries for no alert: {sorted(unused)}")
    unread = {name for name in windows if not any(f"${{{name}" in s.read_text() for s in sources)}
    if unread:
        raise TemplateError(f"{thresholds_path.name} has windows no template reads: {sorted(unread)}")
    return outputs


def stale(rules_dir: Path = RULES_DIR, source_dir: Path = SOURCE_DIR,
          thresholds_path: Path = THRESHOLDS) -> list[str]:
    """Rule files that differ from their rendering, and rendered-looking files with no template."""
    rendered = render_all(source_dir, thresholds_path)
    orphans = {path.name for path in rules_dir.glob("*.rules.yml")} - set(rendered)
    return sorted(orphans | {name for name, text in rendered.items()
                             if not (rules_dir / name).is_file() or (rules_dir / name).read_text() != text})


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (PromQL reads better that way)."""


def _represent_str(dumper: yaml.SafeDumper, text: str):
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rules.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale rule files")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"rules/{name} is stale: run `python -m rules.build`", file=sys.stderr)
        return 1 if names else 0
    for name, text in render_all().items():
        (RULES_DIR / name).write_text(text)
        print(f"wrote rules/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
