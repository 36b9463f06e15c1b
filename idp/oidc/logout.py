"""Logout across systems: which RPs took part in a session, back-channel logout tokens, delivery.

OpenID Connect Back-Channel Logout 1.0. Logout tokens go to an outbox table first, so a
relying party that is down for a while still gets them: delivery has a bounded timeout per
attempt and retries with growing delays, from a worker thread in each web process (rows are
claimed atomically, so several processes never deliver the same token twice at once).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta

import requests
from flask import current_app, g
from joserfc import jwt
from sqlalchemy import select, update

from idp.accounts import sessions as sso
from idp.clients.models import Client
from idp.extensions import db
from idp.oidc import tokens
from idp.oidc.models import LogoutDelivery
from idp.oidc.signing import signing_key_set
from idp.oidc.subjects import issue_subject
from idp.store import get_store
from idp.timeutil import utcnow

log = logging.getLogger(__name__)
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TTL = 120


def _rps_key(sid: str) -> str:
    return "sso-rps:" + sid


def note_client(sid: str, client_id: str) -> None:
    """Record that client received tokens from session sid (for single logout)."""
    get_store().set_add(_rps_key(sid), client_id, current_app.config["SESSION_ABSOLUTE_TIMEOUT"])


def clients_of(sid: str) -> set[str]:
    return get_store().set_members(_rps_key(sid))


def build_logout_token(client: Client, *, sub: str, sid: str | None) -> str:
    now = int(time.time())
    claims = {
        "iss": current_app.config["ISSUER"],
        "aud": client.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": str(uuid.uuid4()),
        "sub": sub,
        "events": {BACKCHANNEL_EVENT: {}},
    }
    if sid:
        claims["sid"] = sid
    alg = client.id_token_signed_response_alg
    return jwt.encode({"alg": alg, "typ": "logout+jwt"}, claims, signing_key_set(alg))


def on_session_ended(app, *, identity_id: str, sid: str, reason: str) -> None:
    """Signal handler: revoke the session's refresh tokens and queue logout tokens."""
    store = get_store()
    client_ids = store.set_members(_rps_key(sid))
    store.delete(_rps_key(sid))
    now = utcnow()
    tokens.revoke_where(now=now, reason=f"session_ended:{reason}", sid=sid, keep_offline=True)
    queued = 0
    for client_id in sorted(client_ids):
        client = db.session.scalar(select(Client).where(Client.client_id == client_id))
        if client is None or not client.backchannel_logout_uri:
            continue
        sub = issue_subject(uuid.UUID(identity_id), client, salt=current_app.config["PAIRWISE_SALT"])
        db.session.add(
            LogoutDelivery(
                client_id=client_id,
                uri=client.backchannel_logout_uri,
                logout_token=build_logout_token(client, sub=sub, sid=sid),
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
        )
        queued += 1
    db.session.commit()
    if queued:
        _kick(app)


def queue_identity_logout(client: Client, identity_id, *, now: datetime, sid: str | None = None) -> bool:
    """Tell one client that the identity's sessions with it (or the one named by sid) are over
    (consent withdrawn; for a business, a representation ended)."""
    if not client.backchannel_logout_uri:
        return False
    sub = issue_subject(identity_id, client, salt=current_app.config["PAIRWISE_SALT"])
    db.session.add(
        LogoutDelivery(
            client_id=client.client_id,
            uri=client.backchannel_logout_uri,
            logout_token=build_logout_token(client, sub=sub, sid=sid),
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )
    return True


def end_browser_session(*, reason: str, sid: str | None = None) -> None:
    """End this browser's SSO session (and the one named by sid, from an id_token_hint)."""
    store = get_store()
    if g.get("sso") is not None:
        sso.end_session(store, g.sso, reason=reason)
        g.clear_sso_cookie = True
    if sid and (g.get("sso") is None or g.sso.public_id != sid):
        identity_id = sso.identity_of_session(store, sid)
        if identity_id:
            sso.end_session_by_digest(store, identity_id, sid, reason=reason)
    g.sso = None


def deliver_due(*, now: datetime | None = None, limit: int = 50, config=None) -> int:
    """Try every due delivery once; returns how many were delivered."""
    config = config or current_app.config
    now = now or utcnow()
    due = list(
        db.session.scalars(
            select(LogoutDelivery)
            .where(
                LogoutDelivery.delivered_at.is_(None),
                LogoutDelivery.gave_up_at.is_(None),
                LogoutDelivery.next_attempt_at <= now,
            )
            .order_by(LogoutDelivery.next_attempt_at)
            .limit(limit)
        )
    )
    delivered = 0
    for item in due:
        # Claim the attempt: only one process moves `attempts` from n to n+1.
        delay = config["BACKCHANNEL_RETRY_DELAY"] * (2 ** item.attempts)
        claimed = db.session.execute(
            update(LogoutDelivery)
            .where(LogoutDelivery.id == item.id, LogoutDelivery.attempts == item.attempts,
                   LogoutDelivery.delivered_at.is_(None))
            .values(attempts=item.attempts + 1, next_attempt_at=now + timedelta(seconds=delay))
        ).rowcount
        db.session.commit()
        if not claimed:
            continue
        error = _post(item.uri, item.logout_token, timeout=config["BACKCHANNEL_TIMEOUT"])
        db.session.refresh(item)
        if error is None:
            item.delivered_at = utcnow()
            item.last_error = None
            delivered += 1
        else:
            item.last_error = error[:300]
            if item.attempts >= config["BACKCHANNEL_MAX_ATTEMPTS"]:
                item.gave_up_at = utcnow()
                log.warning("back-channel logout to %s given up after %d attempts", item.client_id, item.attempts)
        db.session.commit()
    return delivered


def _post(uri: str, logout_token: str, *, timeout: float) -> str | None:
    try:
        # stream=True: only the status matters; a body that trickles in must not hold the worker.
        resp = requests.post(
            uri, data={"logout_token": logout_token}, timeout=timeout, allow_redirects=False,
            stream=True,
        )
    except requests.RequestException as exc:
        return f"{exc.__class__.__name__}: {exc}"
    resp.close()
    if resp.status_code in (200, 204):
        return None
    return f"HTTP {resp.status_code}"


# The worker: one daemon thread per process, woken early when this process queues a token.

def _kick(app) -> None:
    event = app.extensions.get("idp_backchannel_event")
    if event is not None:
        event.set()


def kick() -> None:
    """Wake this process's delivery worker (after queueing outside a session end)."""
    _kick(current_app._get_current_object())


def start_worker(app, *, interval: float = 2.0) -> None:
    if app.extensions.get("idp_backchannel_event") is not None:
        return
    event = threading.Event()
    app.extensions["idp_backchannel_event"] = event

    def run():
        while True:
            event.wait(interval)
            event.clear()
            try:
                with app.app_context():
                    deliver_due()
                    db.session.remove()
            except Exception:  # keep the worker alive; the next round retries
                log.exception("back-channel logout delivery failed")

    threading.Thread(target=run, name="backchannel-logout", daemon=True).start()


def init_app(app) -> None:
    sso.session_ended.connect(on_session_ended, sender=app, weak=False)
    if app.config.get("BACKCHANNEL_WORKER"):
        start_worker(app)
