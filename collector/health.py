"""A small HTTP endpoint for Kubernetes probes: /healthz (alive) and /readyz (exports succeed)."""

import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from collector.config import HealthConfig
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


class _Server(ThreadingHTTPServer):
    def server_bind(self) -> None:
        # HTTPServer's would look its own address up in reverse DNS (socket.getfqdn) for a name nothing here uses:
        # a start-up that hangs on a slow resolver, and the idna codec loaded (0.4 MiB of RSS).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


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


def _handler(readiness: Readiness):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/healthz":
                self._reply(200, "ok")
            elif self.path == "/readyz":
                ready, reason = readiness.check()
                self._reply(200 if ready else 503, reason)
            else:
                self._reply(404, "not found; try /healthz or /readyz")

        def _reply(self, status, text):
            body = (text + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # probes every few seconds would flood the log
            pass

    return Handler
