"""Check the rule files and run their unit tests on both backends' rule engines.

    python -m rules.check        promtool check rules, promtool test rules, vmalert-tool unittest

The unit tests are written once, in promtool's format (rules/tests/*.test.yml), with `${runbooks}`
and `${grafana}` standing for the link bases of rules/thresholds.yml. Each tool gets a rendered copy:
vmalert-tool reads the same format except that expression tests are called `metricsql_expr_test`,
and it resolves rule files from its working directory (the copies name them by absolute path).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from pipeline.backends import binary
from rules.build import load_thresholds, substitute

RULES_DIR = Path(__file__).resolve().parent
RULE_FILES = sorted(RULES_DIR.glob("*.rules.yml"))
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.test.yml"))


def run(argv: list, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(arg) for arg in argv], cwd=cwd, capture_output=True, text=True, timeout=600)


def promtool_check(rule_files: list[Path] = RULE_FILES) -> subprocess.CompletedProcess:
    return run([binary("promtool"), "check", "rules", *rule_files])


def render_test(test_file: Path, out_dir: Path, expr_key: str) -> Path:
    """A runnable copy of a unit-test file in out_dir: rule files made absolute, the link bases of
    thresholds.yml filled in for `${runbooks}`/`${grafana}`, expression tests named `expr_key`."""
    _, links = load_thresholds()
    document = yaml.safe_load(substitute(test_file.read_text(), links, test_file.name))
    document["rule_files"] = [str((test_file.parent / name).resolve()) for name in document["rule_files"]]
    for group in document["tests"]:
        if "promql_expr_test" in group:
            group[expr_key] = group.pop("promql_expr_test")
    target = out_dir / test_file.name
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def promtool_test(test_file: Path, work_dir: Path) -> subprocess.CompletedProcess:
    rendered = render_test(test_file, work_dir, "promql_expr_test")
    return run([binary("promtool"), "test", "rules", rendered], cwd=work_dir)


def vmalert_test(test_file: Path, work_dir: Path) -> subprocess.CompletedProcess:
    # Alerts get no `alertgroup` label, as in Prometheus, so the expected labels are the same.
    rendered = render_test(test_file, work_dir, "metricsql_expr_test")
    return run([binary("vmalert-tool"), "unittest", "--disableAlertgroupLabel", "--files", rendered],
               cwd=work_dir)


def main() -> int:
    results = [("promtool check rules", promtool_check())]
    with tempfile.TemporaryDirectory(prefix="rules-check-") as work_dir:
        for test_file in TEST_FILES:
            for tool, test in (("promtool test rules", promtool_test), ("vmalert-tool unittest", vmalert_test)):
                with tempfile.TemporaryDirectory(dir=work_dir) as test_dir:
                    results.append((f"{tool} {test_file.name}", test(test_file, Path(test_dir))))
    failed = [name for name, result in results if result.returncode != 0]
    for name, result in results:
        print(f"{'FAIL' if result.returncode else 'ok  '} {name}")
        if result.returncode:
            print(result.stdout + result.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
