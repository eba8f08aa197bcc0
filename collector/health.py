"""A small HTTP endpoint for Kubernetes probes: /healthz (alive) and /readyz (exports succeed)."""

import contextlib
import socket
import socketserver
import threading
import time

from collector.config import HealthConfig
from collector.http11 import ProtocolError, read_head
from collector.telemetry import AgentTelemetry


class Readiness:
    """Ready while the last successful export is recent (a new agent gets the same grace period) and no fatal
    fault stops the agent."""

    def __init__(self, telemetry: AgentTelemetry, window: float, clock=time.monotonic):
        self.telemetry, self.window, self.clock = telemetry, window, clock
        self.started = clock()

    def check(self) -> tuple[bool, str]:
        if self.telemetry.fatal:
            return False, self.telemetry.fatal
        last = self.telemetry.last_export_success
        if last is None:
            waited = self.clock() - self.started
            return waited < self.window, f"no successful export yet ({waited:.0f}s since start)"
        age = self.clock() - last
        return age < self.window, f"last successful export {age:.0f}s ago"


LISTEN_VARIABLE = "HOSTAGENT_HEALTH__LISTEN"


# Not http.server: it imports http.client, which imports ssl (4 MiB of RSS, collector/http11.py), and its bind looks
# the server's own address up in reverse DNS, which can hang a start-up on a slow resolver.
class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET  # listen: "[::]:13134"
        super().__init__(address, handler)


class HealthServer:
    def __init__(self, config: HealthConfig, readiness: Readiness):
        host, _, port = config.listen.rpartition(":")
        try:
            self.server = _Server((host.strip("[]"), int(port)), _handler(readiness))
        except OSError as error:
            message = (f"health endpoint {config.listen}: {error.strerror}; choose another address "
                       f"with health.listen in the config file or {LISTEN_VARIABLE}=HOST:PORT")
            raise OSError(error.errno, message) from error
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, name="health", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> None:
        self.thread.start()

    def _serve(self) -> None:
        # Not serve_forever: it wakes every 0.5 s to look for a shutdown request, 0.1 ms of CPU per second for
        # nothing. Here the thread sleeps until a probe connects or `stop` shuts the listening socket.
        while not self.stopping:
            self.server.handle_request()

    def stop(self) -> None:
        self.stopping = True
        if self.thread.is_alive():
            self.server.socket.shutdown(socket.SHUT_RDWR)  # wakes the accept (Linux), which then fails
            self.thread.join()
        self.server.server_close()


PROBE_TIMEOUT = 5.0  # seconds a client may take to send its request: one that connects and says nothing is let go
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _handler(readiness: Readiness):
    class Handler(socketserver.StreamRequestHandler):
        timeout = PROBE_TIMEOUT

        def handle(self):
            try:
                request_line, _ = read_head(self.rfile)
            except (OSError, ProtocolError):  # gone, silent or not HTTP: nobody to answer
                return
            method, path, version = (request_line.split() + ["", "", ""])[:3]
            if not version.startswith("HTTP/1."):
                self._reply(400, "not an HTTP/1.x request line")
            elif method != "GET":
                self._reply(405, "only GET; try /healthz or /readyz")
            elif path == "/healthz":
                self._reply(200, "ok")
            elif path == "/readyz":
                ready, reason = readiness.check()
                self._reply(200 if ready else 503, reason)
            else:
                self._reply(404, "not found; try /healthz or /readyz")

        def _reply(self, status: int, text: str):
            body = (text + "\n").encode()
            head = (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            with contextlib.suppress(OSError):  # the prober hung up: nobody to answer, nothing to report
                self.wfile.write(head.encode() + body)

    return Handler
