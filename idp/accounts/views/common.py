"""Helpers shared by the account pages."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from functools import wraps
from urllib.parse import urlsplit

from flask import current_app, g, redirect, request, session, url_for

from idp.accounts import events, factors, sessions
from idp.accounts.models import KnownDevice
from idp.extensions import db
from idp.identity import services as identity_services
from idp.identity.models import IdentityStatus
from idp.store import get_store
from idp.timeutil import utcnow

DEVICE_COOKIE = "idp_device"
DEVICE_COOKIE_AGE = 400 * 86400


def safe_next(target: str | None) -> str | None:
    """Only local paths: never an open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def form_errors(form, errors: dict) -> None:
    for name, message in errors.items():
        field = getattr(form, name, None) or form.password
        field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]


# Browser-session keys that survive a login: the language, and flows that need a login midway
# (other packages add theirs, e.g. a legacy claim waiting for the person to log in).
CARRIED_OVER_LOGIN = {"lang"}


def reset_browser_session() -> None:
    # Drop everything tied to the previous login but keep the language and flows in progress.
    kept = {key: session[key] for key in CARRIED_OVER_LOGIN if key in session}
    session.clear()
    session.update(kept)


def current_identity():
    """The identity of this browser's live SSO session, or None."""
    if g.get("sso") is None:
        return None
    identity = identity_services.get_identity(uuid.UUID(g.sso.identity_id))
    if identity is None or identity.status != IdentityStatus.ACTIVE:
        return None
    return identity


def _return_path() -> str | None:
    """Where to come back after logging in: this page, or for a form post the page it was on
    (a GET of a POST-only address would answer 405)."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    parts = urlsplit(request.referrer or "")
    if parts.netloc != request.host:
        return None
    return safe_next(parts.path + ("?" + parts.query if parts.query else ""))


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        identity = current_identity()
        if identity is None:
            return redirect(url_for("accounts.login", next=_return_path()))
        g.identity = identity
        g.no_store = True
        return view(*args, **kwargs)

    return wrapper


def recent_login_required(view):
    """Sensitive changes need a login at most REAUTH_MAX_AGE seconds old."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not sessions.is_recent(g.sso, now=int(time.time()), max_age=current_app.config["REAUTH_MAX_AGE"]):
            return redirect(url_for("accounts.login", next=_return_path(), reauth=1))
        return view(*args, **kwargs)

    return wrapper


def client_address() -> str:
    return request.remote_addr or "unknown"


def finish_login(identity, *, amr: list[str], next_url: str | None, response_for):
    """Create the SSO session (new id every time), remember the device, log the event."""
    store = get_store()
    now = int(time.time())
    acr = factors.acr_for(identity.assurance_level, amr)
    absolute = current_app.config["SESSION_ABSOLUTE_TIMEOUT"]
    current = g.get("sso")
    if current is not None and current.identity_id == str(identity.id):
        # The same person again (prompt=login, max_age): refresh the session, keep its sid so
        # the systems that share it stay logged in.
        sess = sessions.reauthenticate(store, current, amr=amr, acr=acr, now=now, absolute=absolute)
    else:
        if current is not None:
            sessions.end_session(store, current, reason="new_login")
        reset_browser_session()
        sess = sessions.create_session(
            store, str(identity.id), now=now, amr=amr, acr=acr, absolute=absolute,
            address=client_address(), user_agent=request.user_agent.string or "",
        )
    device = request.cookies.get(DEVICE_COOKIE) or secrets.token_urlsafe(24)
    new_device = _remember_device(identity.id, device)
    when = utcnow()
    events.record(identity.id, "login", now=when, address=client_address(),
                  user_agent=request.user_agent.string, detail={"amr": amr}, commit=False)
    if new_device:
        events.record(identity.id, "login_new_device", now=when, address=client_address(),
                      user_agent=request.user_agent.string, commit=False)
    db.session.commit()
    response = response_for(next_url)
    sessions.set_cookie(response, sess)
    response.set_cookie(DEVICE_COOKIE, device, max_age=DEVICE_COOKIE_AGE, httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax")
    return response


def _remember_device(identity_id, device: str) -> bool:
    digest = hashlib.sha256(device.encode()).hexdigest()
    now = utcnow()
    row = db.session.get(KnownDevice, (identity_id, digest))
    if row is not None:
        row.last_seen = now
        return False
    first = db.session.query(KnownDevice).filter_by(identity_id=identity_id).first() is None
    db.session.add(KnownDevice(identity_id=identity_id, device_digest=digest, first_seen=now, last_seen=now))
    # The very first device is the one the account was made on: nothing to warn about.
    return not first
