"""Which of our SSO sessions came from which upstream session, in the shared store.

`fed-sess:<our sid>` holds the upstream, its ID token (the id_token_hint of an upstream logout),
the upstream `sid` and `sub`; two index sets map the upstream's sid and sub back to our
sessions for back-channel logout. Everything lives as long as the SSO session can.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from idp.store import Store

STASH_TTL = 600


def _record_key(public_id: str) -> str:
    return "fed-sess:" + public_id


def _index_key(kind: str, issuer: str, value: str) -> str:
    digest = hashlib.sha256(f"{issuer}\n{value}".encode()).hexdigest()
    return f"fed-{kind}:{digest}"


def remember(store: Store, public_id: str, *, slug: str, issuer: str, id_token: str,
             upstream_sid: str | None, subject: str, ttl: int) -> None:
    record = {"slug": slug, "issuer": issuer, "id_token": id_token, "sid": upstream_sid, "sub": subject}
    store.set(_record_key(public_id), json.dumps(record, separators=(",", ":")), ttl)
    if upstream_sid:
        store.set_add(_index_key("usid", issuer, upstream_sid), public_id, ttl)
    store.set_add(_index_key("usub", issuer, subject), public_id, ttl)


def forget(store: Store, public_id: str) -> dict | None:
    """Drop what is known of our session; returns the record, if there was one."""
    raw = store.take(_record_key(public_id))
    if raw is None:
        return None
    record = json.loads(raw)
    if record.get("sid"):
        store.set_remove(_index_key("usid", record["issuer"], record["sid"]), public_id)
    store.set_remove(_index_key("usub", record["issuer"], record["sub"]), public_id)
    return record


def sessions_for(store: Store, issuer: str, *, sid: str | None, sub: str | None) -> set[str]:
    """Our sessions that came from the upstream session (sid) or account (sub) named."""
    if sid:
        found = store.set_members(_index_key("usid", issuer, sid))
        if sub:
            # Both given: both must match (Back-Channel Logout 1.0 §2.4).
            found = {p for p in found if _subject_of(store, p) in (sub, None)}
        return found
    return store.set_members(_index_key("usub", issuer, sub)) if sub else set()


def _subject_of(store: Store, public_id: str) -> str | None:
    raw = store.get(_record_key(public_id))
    return json.loads(raw)["sub"] if raw else None


def stash(store: Store, record: dict) -> str:
    """Keep a logged-out session's upstream record briefly, for the "log out upstream" page."""
    key = secrets.token_urlsafe(24)
    store.set("fed-logout:" + key, json.dumps(record, separators=(",", ":")), STASH_TTL)
    return key


def stashed(store: Store, key) -> dict | None:
    if not isinstance(key, str) or len(key) > 64:
        return None
    raw = store.get("fed-logout:" + key)
    return json.loads(raw) if raw else None
