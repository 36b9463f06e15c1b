"""Failed-login throttling in the shared store, so the count holds across processes.

Attempts on unknown accounts are counted under the same key shape, so the answer never
tells whether an account exists.
"""

from __future__ import annotations

import hashlib

from flask_babel import lazy_gettext as _l

from idp.errors import Throttled
from idp.store import Store


def _account_key(login_key: str) -> str:
    return "throttle:login:account:" + hashlib.sha256(login_key.encode()).hexdigest()


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
    """Count this attempt against the account; refuse when either limit is reached."""
    window = config["LOGIN_THROTTLE_WINDOW"]
    address_key = _address_key(address)
    failures = store.get(address_key)
    if failures is not None and int(failures) >= config["LOGIN_THROTTLE_PER_ADDRESS"]:
        raise _refuse(store, address_key, window)
    # Counted before the password is checked: parallel guesses cannot slip past the limit.
    account_key = _account_key(login_key)
    if store.incr(account_key, window) > config["LOGIN_THROTTLE_PER_ACCOUNT"]:
        raise _refuse(store, account_key, window)


def after_failure(store: Store, *, address: str, config) -> None:
    store.incr(_address_key(address), config["LOGIN_THROTTLE_WINDOW"])


def after_success(store: Store, *, login_key: str) -> None:
    store.delete(_account_key(login_key))


def count_registration(store: Store, *, address: str, config) -> None:
    """Registration attempts per source address; limits enumeration through the form."""
    window = config["LOGIN_THROTTLE_WINDOW"]
    key = "throttle:register:address:" + address
    if store.incr(key, window) > config["REGISTER_THROTTLE_PER_ADDRESS"]:
        raise _refuse(store, key, window)
