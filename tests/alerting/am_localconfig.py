"""Derive a test Alertmanager config from the real alertmanager/alertmanager.yml.

Every receiver endpoint is pointed at sinks on this machine (HTTP integrations at
`{http_base}/{receiver}/{integration}`, email at a local SMTP server), secret files are
dropped, and the routing timers are shortened. Routes, inhibitions, receivers and
templates stay exactly those of the real file, so a test exercises the shipped config.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER_DIR = REPO_ROOT / "alertmanager"
ALERTMANAGER_YML = ALERTMANAGER_DIR / "alertmanager.yml"

# The field that holds the endpoint of each HTTP integration, and its secret-file twin.
HTTP_ENDPOINTS = {
    "webhook_configs": ("url", "url_file"),
    "slack_configs": ("api_url", "api_url_file"),
    "discord_configs": ("webhook_url", "webhook_url_file"),
}
SECRET_GLOBALS = ("smtp_auth_username", "smtp_auth_password", "smtp_auth_password_file",
                  "slack_api_url", "slack_api_url_file")
FAST_TIMERS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}


def load(path: Path = ALERTMANAGER_YML) -> dict:
    return yaml.safe_load(path.read_text())


def secret_files(node) -> list[str]:
    """Every `*_file` value anywhere in the config."""
    if isinstance(node, list):
        return [path for item in node for path in secret_files(item)]
    if not isinstance(node, dict):
        return []
    own = [value for key, value in node.items() if key.endswith("_file")]
    return own + [path for value in node.values() for path in secret_files(value)]


def local_config(http_base: str, smtp_hostport: str, source: dict | None = None) -> dict:
    """The real config with every notification sent to local sinks and short timers."""
    config = copy.deepcopy(source or load())
    glob = config.setdefault("global", {})
    for key in SECRET_GLOBALS:
        glob.pop(key, None)
    glob.update(smtp_smarthost=smtp_hostport, smtp_require_tls=False)
    config["templates"] = [str(ALERTMANAGER_DIR / pattern) for pattern in config.get("templates", [])]
    for receiver in config["receivers"]:
        _localise_receiver(receiver, http_base)
    _shorten_timers(config["route"], root=True)
    return config


def _localise_receiver(receiver: dict, http_base: str) -> None:
    for kind, integrations in receiver.items():
        if kind == "name":
            continue
        if kind == "email_configs":
            for email in integrations:
                for key in [k for k in email if k.startswith(("smarthost", "auth_", "require_tls"))]:
                    del email[key]
            continue
        if kind not in HTTP_ENDPOINTS:
            raise ValueError(f"receiver {receiver['name']}: no local sink for {kind}; add it to HTTP_ENDPOINTS")
        field, secret_field = HTTP_ENDPOINTS[kind]
        integration = kind.removesuffix("_configs")
        for entry in integrations:
            entry.pop(secret_field, None)
            entry[field] = f"{http_base}/{receiver['name']}/{integration}"


def _shorten_timers(route: dict, root: bool = False) -> None:
    for key, value in FAST_TIMERS.items():
        if root or key in route:
            route[key] = value
    for child in route.get("routes", []):
        _shorten_timers(child)
