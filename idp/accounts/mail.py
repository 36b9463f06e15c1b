"""Outgoing e-mail: SMTP through smtplib, or a logging backend when SMTP_HOST is empty.

Messages are plain text (email.message.EmailMessage), written in the person's language
(Vietnamese by default) by the caller inside `language()`. A failure never becomes a 500:
`deliver` raises MailError, `send` logs it and returns False, `send_later` sends from a small
background pool so that a slow or absent mail server neither delays the page nor shows, by
the time the answer takes, whether a message was sent.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask_babel import force_locale

log = logging.getLogger(__name__)

# Only these keys travel to the background pool (never the whole app config).
_KEYS = ("SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_STARTTLS",
         "SMTP_SSL", "SMTP_TIMEOUT", "MAIL_FROM", "PROFILE")
POOL_SIZE = 2


class MailError(Exception):
    """The message could not be handed to the mail server."""


@contextmanager
def language(lang: str | None, config: Mapping) -> Iterator[str]:
    """Translate the strings built inside this block into lang (the default language if unknown)."""
    languages = config.get("LANGUAGES") or ["vi"]
    chosen = lang if lang in languages else languages[0]
    with force_locale(chosen):
        yield chosen


def build(to: str, subject: str, body: str, *, config: Mapping, lang: str = "vi") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = config["MAIL_FROM"]
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    sender_domain = str(config["MAIL_FROM"]).rsplit("@", 1)[-1].strip(" >") or "localhost"
    msg["Message-ID"] = make_msgid(domain=sender_domain)
    # RFC 3834: automatic messages get no auto-replies.
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    msg["Content-Language"] = lang  # after set_content, which resets the Content-* headers
    return msg


def deliver(msg: EmailMessage, *, config: Mapping) -> None:
    """Send now; raise MailError when the server cannot take it."""
    host = config.get("SMTP_HOST") or ""
    if not host:
        _log_backend(msg, config)
        return
    port = int(config.get("SMTP_PORT") or 587)
    timeout = float(config.get("SMTP_TIMEOUT") or 10)
    try:
        if config.get("SMTP_SSL"):
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if config.get("SMTP_STARTTLS") and not config.get("SMTP_SSL"):
                # Refuses (SMTPNotSupportedError) rather than sending in clear.
                smtp.starttls(context=ssl.create_default_context())
            if config.get("SMTP_USERNAME"):
                smtp.login(config["SMTP_USERNAME"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}") from exc


def send(msg: EmailMessage, *, config: Mapping) -> bool:
    """Send now; True when the server took the message, False (logged) otherwise."""
    try:
        deliver(msg, config=config)
    except MailError as exc:
        log.warning("mail %s not sent: %s", msg["Message-ID"], exc)
        return False
    return True


def _log_backend(msg: EmailMessage, config: Mapping) -> None:
    if config.get("PROFILE") == "production":
        # Links and codes are secrets: never into a production log.
        log.error("mail %s not sent: SMTP_HOST is not set (body withheld)", msg["Message-ID"])
        return
    log.info("mail (SMTP_HOST is empty, not sent)\nTo: %s\nSubject: %s\n\n%s",
             msg["To"], msg["Subject"], msg.get_content())


# --- background sending ---------------------------------------------------------------------

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pending: set[Future] = set()


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _lock:
        # A forked worker does not inherit the parent's threads: start its own pool.
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="mail")
            _pool_pid = os.getpid()
        return _pool


def send_later(msg: EmailMessage, *, config: Mapping) -> None:
    """Queue the message; failures are logged by the worker. Logging backend: right away."""
    settings = {k: config.get(k) for k in _KEYS}
    if not settings["SMTP_HOST"]:
        send(msg, config=settings)
        return
    future = _executor().submit(send, msg, config=settings)
    with _lock:
        _pending.add(future)
    future.add_done_callback(_forget)


def _forget(future: Future) -> None:
    with _lock:
        _pending.discard(future)


def wait_for_pending(timeout: float = 30.0) -> bool:
    """Wait until every queued message was tried (tests, shutdown); True when none is left."""
    with _lock:
        futures = set(_pending)
    if not futures:
        return True
    _done, not_done = wait(futures, timeout=timeout)
    return not not_done
