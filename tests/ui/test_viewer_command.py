"""`python -m viewer` as docs/dashboards.md runs it alone (no browser, no backends)."""
import socket
import subprocess
import sys

from pipeline.services import REPO_ROOT


def test_a_busy_port_is_one_line_naming_it_and_the_option_to_change_it():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "viewer", "--port", str(port),
                               "--prometheus", "http://127.0.0.1:9", "--alertmanager", "http://127.0.0.1:9"],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr == (f"python -m viewer: port {port} is already in use on 127.0.0.1: "
                           f"choose another with --port PORT\n")
    assert done.stdout == ""
