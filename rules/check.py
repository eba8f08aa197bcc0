"""Check the rule files and run their unit tests on both backends' rule engines.

    python -m rules.check        promtool check rules, vmalert -dryRun, promtool test rules, vmalert-tool unittest

The unit tests are written once, in promtool's format (rules/tests/*.test.yml), with `${runbooks}`
and `${grafana}` standing for the link bases of rules/thresholds.yml. Each tool gets a rendered copy:
vmalert-tool reads the same format except that expression tests are called `metricsql_expr_test`;
both tools resolve rule files relative to the test file, so the copies name them by absolute path.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from pipeline.backends import MissingBackend, binary
from pipeline.services import port_is_free
from rules.build import load_thresholds, substitute

# vmalert-tool 1.112 serves its embedded VictoriaMetrics on :8880, a fixed address (vmalert's default
# port), and keeps its data under $TMPDIR/vmalert-unittest: runs are serialised and get their own TMPDIR.
VMALERT_TOOL_PORT = 8880
VMALERT_TOOL_LOCK = Path(tempfile.gettempdir()) / "hostagent-vmalert-tool.lock"
RULES_DIR = Path(__file__).resolve().parent
RULE_FILES = sorted(RULES_DIR.glob("*.rules.yml"))
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.test.yml"))


def run(argv: list, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(arg) for arg in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def promtool_check(rule_files: list[Path] = RULE_FILES) -> subprocess.CompletedProcess:
    return run([binary("promtool"), "check", "rules", *rule_files])


def vmalert_check(rule_files: list[Path] = RULE_FILES) -> subprocess.CompletedProcess:
    return run([binary("vmalert"), "-dryRun", "-loggerLevel=ERROR", *(f"-rule={path}" for path in rule_files)])


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


@contextmanager
def vmalert_tool_slot(timeout: float = 120.0) -> Iterator[None]:
    """Hold the machine-wide lock for vmalert-tool and wait until nothing else listens on its port."""
    with open(VMALERT_TOOL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deadline = time.monotonic() + timeout
        while not port_is_free(VMALERT_TOOL_PORT, "0.0.0.0"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"vmalert-tool needs port {VMALERT_TOOL_PORT} (fixed in vmalert-tool), and "
                                   "another process listens there: stop it (e.g. the `make run` stack's vmalert)")
            time.sleep(1)
        yield


def vmalert_test(test_file: Path, work_dir: Path) -> subprocess.CompletedProcess:
    # Alerts get no `alertgroup` label, as in Prometheus, so the expected labels are the same.
    rendered = render_test(test_file, work_dir, "metricsql_expr_test")
    with vmalert_tool_slot():
        return run([binary("vmalert-tool"), "unittest", "--disableAlertgroupLabel", "--files", rendered],
                   cwd=work_dir, env={**os.environ, "TMPDIR": str(work_dir)})


def main() -> int:
    try:
        for name in ("promtool", "vmalert", "vmalert-tool"):
            binary(name)
    except MissingBackend as missing:
        print(missing, file=sys.stderr)
        return 2
    results = [("promtool check rules", promtool_check()), ("vmalert -dryRun", vmalert_check())]
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
