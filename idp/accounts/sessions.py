"""SSO sessions, kept in the shared store so every instance sees them.

Two identifiers: the cookie holds a random secret (256 bits), stored only as its SHA-256
(`sso-cookie:<digest>` -> public id), so a read of the store hands out no usable cookie; the
session itself lives under its public id (`sso:<public id>`), which is the `sid` claim RPs see.
A login always issues a new cookie secret; when the same person logs in again in the same
browser, the public id is kept so the systems sharing the session keep their `sid`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field

from blinker import Namespace
from flask import current_app, g, request

from idp.store import Store, get_store

# Sent when an SSO session ends (logout, timeout, "end all sessions"), so the protocol layer
# can tell the relying parties without this package knowing about them.
_signals = Namespace()
session_ended = _signals.signal("sso-session-ended")

# Don't rewrite the session on every request: last_seen moves at most this often.
TOUCH_EVERY = 60


@dataclass
class SsoSession:
    public_id: str  # the `sid` claim
    identity_id: str
    auth_time: int
    created_at: int
    last_seen: int
    amr: list[str] = field(default_factory=list)
    acr: str = "urn:eid:loa:low"
    # Shown to the person in their list of sessions.
    address: str = ""
    user_agent: str = ""
    # The cookie secret; set only when just issued or read from the request, never stored.
    sid: str = field(default="", compare=False)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("sid")
        return json.dumps(data, separators=(",", ":"))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(public_id: str) -> str:
    return "sso:" + public_id


def _cookie_key(secret: str) -> str:
    return "sso-cookie:" + digest(secret)


def _index(identity_id: str) -> str:
    return "sso-by-identity:" + identity_id


def _ttl(sess: SsoSession, now: int, absolute: int) -> int:
    return max(1, sess.created_at + absolute - now)


def _issue_cookie(store: Store, sess: SsoSession, ttl: int) -> None:
    sess.sid = secrets.token_urlsafe(32)
    store.set(_cookie_key(sess.sid), sess.public_id, ttl)


def create_session(
    store: Store, identity_id: str, *, now: int, amr: list[str], acr: str, absolute: int,
    address: str = "", user_agent: str = "",
) -> SsoSession:
    sess = SsoSession(
        public_id=secrets.token_hex(16),
        identity_id=str(identity_id),
        auth_time=now,
        created_at=now,
        last_seen=now,
        amr=list(amr),
        acr=acr,
        address=address[:64],
        user_agent=user_agent[:200],
    )
    store.set(_key(sess.public_id), sess.to_json(), absolute)
    store.set_add(_index(sess.identity_id), sess.public_id, absolute)
    _issue_cookie(store, sess, absolute)
    return sess


def reauthenticate(store: Store, sess: SsoSession, *, amr: list[str], acr: str, now: int, absolute: int) -> SsoSession:
    """The same person logged in again: new factors, new auth_time, a new cookie secret."""
    if sess.sid:
        store.delete(_cookie_key(sess.sid))
    sess.amr, sess.acr, sess.auth_time, sess.last_seen = list(amr), acr, now, now
    store.set(_key(sess.public_id), sess.to_json(), _ttl(sess, now, absolute))
    _issue_cookie(store, sess, _ttl(sess, now, absolute))
    return sess


def load_session(store: Store, secret: str, *, now: int, idle: int, absolute: int) -> SsoSession | None:
    """The live session for a cookie secret, or None once it is idle or too old (then it ends)."""
    if not secret or len(secret) > 100:
        return None
    public_id = store.get(_cookie_key(secret))
    raw = store.get(_key(public_id)) if public_id else None
    if raw is None:
        return None
    sess = SsoSession(**json.loads(raw), sid=secret)
    if now - sess.last_seen > idle or now - sess.created_at > absolute:
        end_session(store, sess, reason="timeout")
        return None
    if now - sess.last_seen >= TOUCH_EVERY:
        sess.last_seen = now
        store.set(_key(sess.public_id), sess.to_json(), _ttl(sess, now, absolute))
    return sess


def step_up(store: Store, sess: SsoSession, *, amr: list[str], acr: str, now: int, absolute: int) -> SsoSession:
    """Add factors proven now to the live session (same sid: RPs keep their session id)."""
    sess.amr = sorted(set(sess.amr) | set(amr))
    sess.acr = acr
    sess.auth_time = now
    sess.last_seen = now
    store.set(_key(sess.public_id), sess.to_json(), _ttl(sess, now, absolute))
    return sess


def is_recent(sess: SsoSession | None, *, now: int, max_age: int) -> bool:
    """True when the person authenticated at most max_age seconds ago."""
    return sess is not None and now - sess.auth_time <= max_age


def sessions_of(store: Store, identity_id: str) -> list[dict]:
    """The live sessions of an identity, for the person's own list (no cookie values)."""
    out = []
    for public_id in store.set_members(_index(str(identity_id))):
        raw = store.get("sso:" + public_id)
        if raw:
            out.append({"public_id": public_id, **json.loads(raw)})
    return sorted(out, key=lambda s: s["last_seen"], reverse=True)


def end_session(store: Store, sess: SsoSession, *, reason: str = "logout") -> None:
    if sess.sid:
        store.delete(_cookie_key(sess.sid))
    end_session_by_digest(store, sess.identity_id, sess.public_id, reason=reason)


def end_session_by_digest(store: Store, identity_id: str, public_id: str, *, reason: str) -> None:
    """End the session named by its public id; its cookie maps to nothing any more."""
    store.delete(_key(public_id))
    store.set_remove(_index(identity_id), public_id)
    session_ended.send(current_app._get_current_object(), identity_id=identity_id, sid=public_id, reason=reason)


def identity_of_session(store: Store, public_id: str) -> str | None:
    """The identity of a live session named by its public id (the `sid` claim)."""
    raw = store.get("sso:" + public_id)
    return json.loads(raw)["identity_id"] if raw else None


def session_digests(store: Store, identity_id: str) -> set[str]:
    return store.set_members(_index(str(identity_id)))


def end_all_sessions(store: Store, identity_id: str, *, reason: str = "end_all") -> int:
    """End every SSO session of an identity (all instances see it at once)."""
    digests = store.set_members(_index(str(identity_id)))
    for d in digests:
        end_session_by_digest(store, str(identity_id), d, reason=reason)
    store.delete(_index(str(identity_id)))
    return len(digests)


def cookie_name() -> str:
    return "__Host-idp_sid" if current_app.config["SESSION_COOKIE_SECURE"] else "idp_sid"


def load_current_session() -> None:
    """before_request: put the browser's SSO session (or None) on g.sso."""
    g.sso = None
    if request.endpoint == "static":
        return
    sid = request.cookies.get(cookie_name())
    if sid:
        cfg = current_app.config
        g.sso = load_session(
            get_store(),
            sid,
            now=int(time.time()),
            idle=cfg["SESSION_IDLE_TIMEOUT"],
            absolute=cfg["SESSION_ABSOLUTE_TIMEOUT"],
        )


def set_cookie(response, sess: SsoSession) -> None:
    response.set_cookie(
        cookie_name(),
        sess.sid,
        httponly=True,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        samesite="Lax",
        path="/",
    )


def clear_cookie(response) -> None:
    response.delete_cookie(
        cookie_name(), path="/", secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax"
    )


def apply_cookie_changes(response):
    """after_request: drop the SSO cookie when the session ended during this request."""
    if g.get("clear_sso_cookie"):
        clear_cookie(response)
    return response
