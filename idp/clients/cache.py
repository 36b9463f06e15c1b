"""A per-process cache of registered clients for the protocol's hot paths.

Every token, introspection and userinfo request authenticates a client; reading its row
through the ORM was the largest single cost of those requests. The cache keeps a read-only
snapshot of each client per application and checks it against one version token in the
shared store on every lookup, so a change made by any process (disable, secret rotation,
new redirect URI) is seen by every process on its next request. The token is random, not a
counter, so a store that was emptied can never make an old snapshot look current again.
"""

from __future__ import annotations

import secrets
import threading
import time
from types import MappingProxyType

from flask import current_app, g
from sqlalchemy import select

from idp.clients.models import Client, ClientRules
from idp.extensions import db
from idp.store import get_store

VERSION_KEY = "clients:version"
# The version token outlives any cache entry; when it expires a new one is drawn.
VERSION_TTL = 30 * 24 * 3600
# Bounds how long a snapshot can outlive a change whose version bump was lost.
MAX_AGE = 300
# From the table, not the mapper: asking the mapper at import time would configure every
# mapper before all models are imported.
_COLUMNS = tuple(column.key for column in Client.__table__.columns)


class ClientSnapshot(ClientRules):
    """The registered values of a client, as plain attributes (no session, never expired)."""

    __slots__ = _COLUMNS

    def __init__(self, row: Client):
        for name in _COLUMNS:
            value = getattr(row, name)
            if isinstance(value, list):
                value = tuple(value)  # shared between threads: immutable
            elif isinstance(value, dict):
                value = MappingProxyType(dict(value))
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("a client snapshot is read-only; change clients through idp.clients.services")


class _Cache:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[str, float, ClientSnapshot | None]] = {}


def _cache() -> _Cache:
    cache = current_app.extensions.get("client_cache")
    if cache is None:
        cache = current_app.extensions.setdefault("client_cache", _Cache())
    return cache


def _version() -> str:
    # Asked once per request: a request sees one consistent registry.
    version = g.get("_client_version")
    if version is None:
        store = get_store()
        version = store.get(VERSION_KEY)
        if version is None:
            store.set_if_absent(VERSION_KEY, secrets.token_hex(16), VERSION_TTL)
            version = store.get(VERSION_KEY)
        if version is None:  # expired between the two calls: do not cache on a guess
            version = ""
        g._client_version = version
    return version


def lookup(client_id: str) -> ClientSnapshot | None:
    """The client's snapshot, or None when no client has that id (active or not)."""
    version = _version()  # before the row: a row read after it is at least that new
    cache = _cache()
    entry = cache.entries.get(client_id)
    if entry is not None and version and entry[0] == version and time.monotonic() - entry[1] < MAX_AGE:
        return entry[2]
    row = db.session.scalar(select(Client).where(Client.client_id == client_id))
    snapshot = ClientSnapshot(row) if row is not None else None
    if version:
        with cache.lock:
            if len(cache.entries) > 10_000:  # unknown ids are cached too: bound them
                cache.entries.clear()
            cache.entries[client_id] = (version, time.monotonic(), snapshot)
    return snapshot


def changed() -> None:
    """Every process reloads its snapshots on its next lookup.

    Called before a change is committed (a store that cannot be told refuses the change,
    so nothing changes unseen) and again after it (a process that reloaded in between read
    the old row under the new token).
    """
    get_store().set(VERSION_KEY, secrets.token_hex(16), VERSION_TTL)
    g.pop("_client_version", None)


def commit_change() -> None:
    """Commit a change to clients with the version bumped on both sides."""
    changed()
    db.session.commit()
    changed()
