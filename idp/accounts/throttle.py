"""Failed-login throttling (NIST SP 800-63B-4 §3.2.2) in the shared store.

Per account (known or not, keyed by a digest of the normalized login, so answers never tell
whether an account exists): attempts per window are counted before the password is checked,
so parallel guesses cannot slip past; consecutive failures bring growing delays. Per source
address: failures per window, against password spraying. The durable lock of a known account's
password after LOGIN_LOCK_AFTER consecutive failures lives in SQL (accounts.services).
"""

from __future__ import annotations

import hashlib

from flask_babel import lazy_gettext as _l

from idp.errors import Throttled
from idp.store import Store

# Consecutive failures are remembered this long without a success (seconds).
CONSECUTIVE_MEMORY = 7 * 86400


def _digest(login_key: str) -> str:
    return hashlib.sha256(login_key.encode()).hexdigest()


def _account_key(login_key: str) -> str:
    return "throttle:login:account:" + _digest(login_key)


def _failures_key(login_key: str) -> str:
    return "throttle:login:failures:" + _digest(login_key)


def _wait_key(login_key: str) -> str:
    return "throttle:login:wait:" + _digest(login_key)


def _address_key(address: str) -> str:
    return "throttle:login:address:" + address


def _refuse(store: Store, key: str, window: int) -> Throttled:
    retry = store.ttl(key) or window
    minutes = max(1, (retry + 59) // 60)
    return Throttled(
        _l("Too many failed attempts. Please try again in %(minutes)d minutes.", minutes=minutes),
        retry_after=retry,
    )


def before_attempt(store: Store, *, login_key: str, address: str, config) -> None:
    """Refuse when a limit is reached; count this attempt against the account."""
    window = config["LOGIN_THROTTLE_WINDOW"]
    address_key = _address_key(address)
    failures = store.get(address_key)
    if failures is not None and int(failures) >= config["LOGIN_THROTTLE_PER_ADDRESS"]:
        raise _refuse(store, address_key, window)
    if store.get(_wait_key(login_key)) is not None:
        raise _refuse(store, _wait_key(login_key), window)
    # Counted before the password is checked: parallel guesses cannot slip past the limit.
    account_key = _account_key(login_key)
    if store.incr(account_key, window) > config["LOGIN_THROTTLE_PER_ACCOUNT"]:
        raise _refuse(store, account_key, window)


def after_failure(store: Store, *, login_key: str, address: str, config) -> int:
    """Record a failure; returns the consecutive failures of this account (known or not)."""
    store.incr(_address_key(address), config["LOGIN_THROTTLE_WINDOW"])
    consecutive = store.incr(_failures_key(login_key), CONSECUTIVE_MEMORY)
    start = config["LOGIN_DELAY_AFTER"]
    if consecutive >= start:
        # 2 s, 4 s, 8 s ... up to LOGIN_DELAY_MAX between attempts.
        delay = min(2 ** (consecutive - start + 1), config["LOGIN_DELAY_MAX"])
        store.set(_wait_key(login_key), "1", delay)
    return consecutive


def consecutive_failures(store: Store, *, login_key: str) -> int:
    value = store.get(_failures_key(login_key))
    return int(value) if value else 0


def after_success(store: Store, *, login_key: str) -> None:
    store.delete(_account_key(login_key))
    store.delete(_failures_key(login_key))
    store.delete(_wait_key(login_key))


def count_registration(store: Store, *, address: str, config) -> None:
    """Registration attempts per source address; limits enumeration through the form."""
    window = config["LOGIN_THROTTLE_WINDOW"]
    key = "throttle:register:address:" + address
    if store.incr(key, window) > config["REGISTER_THROTTLE_PER_ADDRESS"]:
        raise _refuse(store, key, window)
