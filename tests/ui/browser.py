"""Runs tests/ui/browse.mjs: Debian's headless Chromium driven by playwright-core (viewer/node_modules)."""
import json
import os
import subprocess
from pathlib import Path

from pipeline.services import VIEWER_LIBRARIES
from pipeline.testing import unavailable

BROWSE = Path(__file__).with_name("browse.mjs")
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


def require_browser() -> None:
    if not CHROMIUM.is_file() or not (VIEWER_LIBRARIES / "playwright-core").is_dir():
        unavailable(f"{CHROMIUM} or viewer/node_modules missing: run `make chromium viewer`")


def browse(*args: str):
    """browse.mjs's output for these arguments; fails on an error the page threw."""
    done = subprocess.run(["node", str(BROWSE), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["errors"] == [], result["errors"]
    return result["output"]
