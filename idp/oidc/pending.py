"""Pending authorization requests, kept in the shared store while login and consent run.

The browser carries only a short random identifier, so the flow survives a switch of instance
and a long request never has to travel through the login page.
"""

from __future__ import annotations

import json
import secrets
import time

from flask import current_app

from idp.store import get_store


def _key(req_id: str) -> str:
    return "authreq:" + req_id


def save(params: dict) -> str:
    req_id = secrets.token_urlsafe(16)
    record = {"params": params, "created_at": int(time.time())}
    get_store().set(_key(req_id), json.dumps(record), current_app.config["AUTH_REQUEST_TTL"])
    return req_id


def load(req_id: str | None) -> dict | None:
    if not req_id or len(req_id) > 64:
        return None
    raw = get_store().get(_key(req_id))
    return json.loads(raw) if raw else None


def drop(req_id: str) -> None:
    get_store().delete(_key(req_id))


def update(req_id: str, **fields) -> bool:
    """Add fields to a pending request (e.g. the business chosen), keeping its expiry."""
    record = load(req_id)
    if record is None:
        return False
    store = get_store()
    ttl = store.ttl(_key(req_id))
    if not ttl or ttl <= 0:
        return False  # expired meanwhile
    record.update(fields)
    store.set(_key(req_id), json.dumps(record), ttl)
    return True
