"""SSO sessions, kept in the shared store so every instance sees them.

The cookie holds a random identifier (256 bits); the store key is its SHA-256, so a read of
the store does not hand out usable session identifiers.
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
    sid: str
    identity_id: str
    auth_time: int
    created_at: int
    last_seen: int
    amr: list[str] = field(default_factory=list)
    acr: str = "urn:eid:loa:low"

    @property
    def public_id(self) -> str:
        """The `sid` claim: the store key's digest, never the cookie value."""
        return digest(self.sid)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("sid")
        return json.dumps(data, separators=(",", ":"))


def digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _key(sid: str) -> str:
    return "sso:" + digest(sid)


def _index(identity_id: str) -> str:
    return "sso-by-identity:" + identity_id


def create_session(
    store: Store, identity_id: str, *, now: int, amr: list[str], acr: str, absolute: int
) -> SsoSession:
    sess = SsoSession(
        sid=secrets.token_urlsafe(32),
        identity_id=str(identity_id),
        auth_time=now,
        created_at=now,
        last_seen=now,
        amr=list(amr),
        acr=acr,
    )
    store.set(_key(sess.sid), sess.to_json(), absolute)
    store.set_add(_index(sess.identity_id), digest(sess.sid), absolute)
    return sess


def load_session(store: Store, sid: str, *, now: int, idle: int, absolute: int) -> SsoSession | None:
    """The live session for sid, or None once it is idle or too old (then it is ended)."""
    if not sid or len(sid) > 100:
        return None
    raw = store.get(_key(sid))
    if raw is None:
        return None
    sess = SsoSession(sid=sid, **json.loads(raw))
    if now - sess.last_seen > idle or now - sess.created_at > absolute:
        end_session(store, sess, reason="timeout")
        return None
    if now - sess.last_seen >= TOUCH_EVERY:
        sess.last_seen = now
        store.set(_key(sid), sess.to_json(), max(1, sess.created_at + absolute - now))
    return sess


def end_session(store: Store, sess: SsoSession, *, reason: str = "logout") -> None:
    end_session_by_digest(store, sess.identity_id, sess.public_id, reason=reason)


def end_session_by_digest(store: Store, identity_id: str, public_id: str, *, reason: str) -> None:
    store.delete("sso:" + public_id)
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
