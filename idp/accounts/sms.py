"""SMS: a sender interface (only a logging backend: no gateway is configured), and one-time codes.

A code is 6 digits, valid at most 10 minutes, and bound to its transaction: the purpose, the
identity and the phone number (or e-mail) it was sent to. The store holds only a keyed digest
(HMAC under SECRET_KEY, so a copy of the store cannot be brute-forced offline over the
million possible codes); a code is taken on use (single use on every instance), and wrong
attempts per transaction are limited, after which the code is burned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from flask_babel import lazy_gettext as _l

from idp.errors import Throttled
from idp.store import Store

log = logging.getLogger(__name__)

CODE_TTL_MAX = 600
DEFAULT_ATTEMPTS = 5


class SmsSender(Protocol):
    def send_sms(self, phone_e164: str, text: str) -> bool:
        """Hand the text to the gateway; True when it was accepted."""


class LogSender:
    """Writes the message to the log instead of sending it (development, tests)."""

    def __init__(self, *, production: bool = False):
        self.production = production

    def send_sms(self, phone_e164: str, text: str) -> bool:
        if self.production:
            # A code is a secret: never into a production log.
            log.error("SMS to …%s not sent: no SMS gateway is configured", phone_e164[-3:])
            return False
        log.info("SMS (not sent, SMS_BACKEND=log) to %s: %s", phone_e164, text)
        return True


def sender_for(config: Mapping) -> SmsSender:
    backend = config.get("SMS_BACKEND") or "log"
    if backend != "log":
        raise ValueError(f"SMS_BACKEND: unknown backend {backend!r} (only 'log' exists)")
    return LogSender(production=config.get("PROFILE") == "production")


def send_sms(phone_e164: str, text: str, *, config: Mapping) -> bool:
    """Send through the configured backend; a failure is logged and answers False."""
    try:
        return sender_for(config).send_sms(phone_e164, text)
    except Exception:
        log.exception("SMS to …%s not sent", phone_e164[-3:])
        return False


# --- one-time codes -------------------------------------------------------------------------

def code_ttl(config: Mapping) -> int:
    return max(1, min(int(config.get("SMS_CODE_TTL") or CODE_TTL_MAX), CODE_TTL_MAX))


def _transaction(purpose: str, identity_id, contact: str) -> str:
    return hashlib.sha256(f"{purpose}|{identity_id}|{contact}".encode()).hexdigest()


def _digest(config: Mapping, transaction: str, code: str) -> str:
    key = str(config["SECRET_KEY"]).encode()
    return hmac.new(key, f"sms-code|{transaction}|{code}".encode(), hashlib.sha256).hexdigest()


def timestamp(now: datetime) -> float:
    """Seconds since the epoch; a naive datetime is UTC (as timeutil.utcnow gives)."""
    return (now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp()


def _keys(transaction: str) -> tuple[str, str]:
    return f"sms-code:{transaction}", f"sms-attempts:{transaction}"


def issue_code(store: Store, *, purpose: str, identity_id, contact: str, config: Mapping,
               now: datetime) -> str:
    """A fresh code for this transaction; the previous one (and its attempt count) is replaced."""
    code = f"{secrets.randbelow(10**6):06d}"
    transaction = _transaction(purpose, identity_id, contact)
    code_key, attempts_key = _keys(transaction)
    ttl = code_ttl(config)
    record = {"d": _digest(config, transaction, code), "exp": timestamp(now) + ttl}
    store.set(code_key, json.dumps(record), ttl)
    store.delete(attempts_key)
    return code


def verify_code(store: Store, *, purpose: str, identity_id, contact: str, code: str,
                config: Mapping, now: datetime) -> bool:
    """True once for the right code of this transaction before it expires.

    Raises Throttled after too many attempts (the code is then burned).
    """
    transaction = _transaction(purpose, identity_id, contact)
    code_key, attempts_key = _keys(transaction)
    ttl = code_ttl(config)
    limit = int(config.get("SMS_CODE_ATTEMPTS") or DEFAULT_ATTEMPTS)
    # Counted before the check, so parallel guesses cannot pass the limit.
    if store.incr(attempts_key, ttl) > limit:
        store.delete(code_key)
        retry = store.ttl(attempts_key) or ttl
        raise Throttled(
            _l("Too many wrong codes. Please ask for a new code."), retry_after=retry, field="code"
        )
    text = (code or "").strip().replace(" ", "")
    if len(text) != 6 or not text.isdigit():
        return False
    raw = store.get(code_key)
    if raw is None:
        return False
    record = json.loads(raw)
    expected = _digest(config, transaction, text)
    if timestamp(now) > record["exp"] or not hmac.compare_digest(record["d"], expected):
        return False
    # Single use: of two concurrent right answers, one takes the code.
    taken = store.take(code_key)
    if taken is None or not hmac.compare_digest(json.loads(taken)["d"], expected):
        return False
    store.delete(attempts_key)
    return True
