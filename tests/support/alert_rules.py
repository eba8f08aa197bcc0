"""What the alerting rules put on their alerts, read from the rules' unit tests (they expect each alert with all its
labels)."""
from __future__ import annotations

import yaml

from rules.check import TEST_FILES


def alert_labels() -> set[str]:
    """Every label the rules put on an alert."""
    return {label for path in TEST_FILES for group in yaml.safe_load(path.read_text())["tests"]
            for case in group.get("alert_rule_test", []) for expected in case["exp_alerts"]
            for label in expected["exp_labels"]}
