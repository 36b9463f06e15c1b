"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the tests."""

from __future__ import annotations

import email
import logging
import re
import socket
import threading
import time
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from idp.accounts import mail


def enable_loggers(*names: str) -> None:
    """Alembic's fileConfig (run by the `migrated` fixture) disables the loggers that existed."""
    for name in names:
        logging.getLogger(name).disabled = False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """aiosmtpd handler: parsed messages in arrival order."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.envelopes: list = []
        self._cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        with self._cond:
            self.envelopes.append(envelope)
            self.messages.append(msg)
            self._cond.notify_all()
        return "250 Message accepted"

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """At least count messages; fails after timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {count} message(s), got {len(self.messages)}"
                self._cond.wait(left)
            return list(self.messages)

    def settled(self) -> list[EmailMessage]:
        """Everything the app queued has been tried: what arrived."""
        assert mail.wait_for_pending(10)
        with self._cond:
            return list(self.messages)

    def clear(self) -> None:
        assert mail.wait_for_pending(10)
        with self._cond:
            self.messages.clear()
            self.envelopes.clear()


class SmtpServer:
    def __init__(self):
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        mail.wait_for_pending(10)
        self.controller.stop()

    def app_config(self) -> dict:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": self.port, "SMTP_STARTTLS": False}


def body(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def link_in(msg: EmailMessage, path: str) -> str:
    """The path and query of the first link to path in the message (the host is the issuer)."""
    match = re.search(r"https?://[^/\s]+(" + re.escape(path) + r"\?token=[A-Za-z0-9_\-]+)", body(msg))
    assert match, f"no {path} link in:\n{body(msg)}"
    return match.group(1)
