"""Local stand-ins for the notification services: an HTTP sink for webhook, Slack and
Discord integrations, and an SMTP sink (aiosmtpd) for email. Both keep what they receive
in an Inbox that tests poll."""
from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from typing import Generic, TypeVar

from aiosmtpd.controller import Controller

from pipeline.http_serving import LocalHttpServer

Item = TypeVar("Item")


class Inbox(Generic[Item]):
    def __init__(self) -> None:
        self._items: list[Item] = []
        self._lock = threading.Lock()

    def put(self, item: Item) -> None:
        with self._lock:
            self._items.append(item)

    def items(self) -> list[Item]:
        with self._lock:
            return list(self._items)

    def first(self, predicate: Callable[[Item], bool]) -> Item | None:
        return next((item for item in self.items() if predicate(item)), None)


@dataclass(frozen=True)
class HttpNotification:
    path: str          # /{receiver}/{integration}, see am_localconfig
    body: dict


class HttpSink(LocalHttpServer):
    """Answers every POST the way Slack does and records the JSON body."""

    def __init__(self) -> None:
        self.inbox: Inbox[HttpNotification] = Inbox()
        inbox = self.inbox

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                inbox.put(HttpNotification(self.path, json.loads(self.rfile.read(length))))
                # Slack's webhook answers "ok" and Alertmanager checks it; every other service takes any 2xx.
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        super().__init__(Handler)


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, subtype: str) -> str:
        return self.message.get_body(preferencelist=(subtype,)).get_content()


class SmtpSink:
    """An SMTP server without TLS or auth that records every message."""

    def __init__(self, port: int) -> None:
        self.inbox: Inbox[Mail] = Inbox()
        self.hostport = f"127.0.0.1:{port}"
        self._controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.inbox.put(Mail(envelope.mail_from, tuple(envelope.rcpt_tos), message))
        return "250 OK"

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()
