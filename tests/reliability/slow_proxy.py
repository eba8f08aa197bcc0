"""A TCP proxy in front of a gateway that, while `delay` is set, holds every answer back for `delay` seconds:
a gateway answering slower than the agent's timeout, whatever gateway is behind it."""
from __future__ import annotations

import socket
import threading
import time


class SlowProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self.delay:
                    time.sleep(self.delay)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.listener.close()
