"""The citizen's account console: profile, security, sessions, activity, "download my data".

Every page needs a login; every change needs a recent one (REAUTH_MAX_AGE). What the person
sees of a session or an event never includes a cookie value, a hash or a secret.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField
from wtforms.validators import InputRequired, Length

from idp.accounts import events, factors, passwords, services, sessions
from idp.accounts.forms import ConfirmForm
from idp.accounts.models import KnownDevice, PasswordCredential
from idp.accounts.views import bp
from idp.accounts.views.common import client_address, login_required, recent_login_required
from idp.errors import Throttled, ValidationError
from idp.extensions import db
from idp.store import get_store
from idp.timeutil import utcnow

# Public ids of sessions are 32 hex characters (sessions.create_session).
_PUBLIC_ID = re.compile(r"^[0-9a-f]{32}$")


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[InputRequired(_l("Enter your current password.")), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        _l("New password"),
        validators=[InputRequired(_l("Choose a new password.")), Length(max=1024)],
        render_kw={"autocomplete": "new-password"},
    )
    end_other_sessions = BooleanField(_l("Log out my other devices"), default=True)


# --- words for the person -----------------------------------------------------------------

EVENT_WORDS = {
    "login": _l("Logged in"),
    "login_failed": _l("Failed login attempt"),
    "login_new_device": _l("Login from a new device"),
    "logout": _l("Logged out"),
    "step_up": _l("Confirmed with a second factor"),
    "second_factor_failed": _l("Wrong code from the authenticator app"),
    "password_changed": _l("Password changed"),
    "password_reset": _l("Password reset"),
    "totp_enabled": _l("Authenticator app set up"),
    "totp_removed": _l("Authenticator app removed"),
    "recovery_codes_regenerated": _l("New recovery codes created"),
    "session_ended": _l("A session on another device was ended"),
    "sessions_ended": _l("All other sessions were ended"),
    "data_exported": _l("Your data was downloaded"),
}

# Events that change how the account is protected: highlighted in the activity list.
SECURITY_EVENTS = {"password_changed", "password_reset", "totp_enabled", "totp_removed",
                   "recovery_codes_regenerated", "login_new_device", "session_ended", "sessions_ended"}

_BROWSERS = (  # order matters: most user agents also name the engines they imitate
    ("coc_coc_browser", "Cốc Cốc"),
    ("Zalo", "Zalo"),
    ("SamsungBrowser", "Samsung Internet"),
    ("Edg", "Microsoft Edge"),
    ("OPR/", "Opera"),
    ("Opera", "Opera"),
    ("Firefox/", "Firefox"),
    ("FxiOS", "Firefox"),
    ("CriOS", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def describe_user_agent(user_agent: str | None) -> str:
    """"Chrome on Android": a browser and a system in words, never the raw string."""
    ua = user_agent or ""
    browser = next((name for token, name in _BROWSERS if token in ua), None)
    system = next((name for token, name in _SYSTEMS if token in ua), None)
    if browser and system:
        return str(_l("%(browser)s on %(system)s", browser=browser, system=system))
    if browser or system:
        return browser or system
    return str(_l("Unknown browser"))


def _when(value) -> str:
    """A stored UTC time (naive datetime or epoch seconds) in the person's time zone."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return format_datetime(value, "dd/MM/yyyy HH:mm")


def _record(event: str, **detail) -> None:
    events.record(g.identity.id, event, now=utcnow(), address=client_address(),
                  user_agent=request.user_agent.string, detail=detail or None)


# --- profile -------------------------------------------------------------------------------

@bp.get("/account/profile")
@login_required
def profile():
    identity = g.identity
    return render_template(
        "accounts/profile.html",
        identity=identity,
        identifiers=sorted(identity.identifiers, key=lambda i: i.valid_from, reverse=True),
        when=_when,
    )


# --- security: password, authenticator app, recovery codes ---------------------------------

def _security_page(form: PasswordChangeForm | None = None):
    identity = g.identity
    totp = factors.totp_credential(identity.id)
    has_totp = totp is not None and totp.confirmed_at is not None
    cred = db.session.get(PasswordCredential, identity.id)
    cfg = current_app.config
    min_length = cfg["PASSWORD_MIN_LENGTH_MULTI_FACTOR" if has_totp else "PASSWORD_MIN_LENGTH_SINGLE_FACTOR"]
    return render_template(
        "accounts/security.html",
        form=form or PasswordChangeForm(formdata=None),
        confirm_form=ConfirmForm(),
        has_password=cred is not None,
        password_updated=_when(cred.updated_at) if cred is not None else "",
        has_totp=has_totp,
        totp_since=_when(totp.confirmed_at) if has_totp else "",
        remaining_codes=factors.remaining_recovery_codes(identity.id) if has_totp else 0,
        total_codes=factors.RECOVERY_CODE_COUNT,
        min_length=min_length,
        is_officer=bool(services.roles_of(identity.id)),
    )


@bp.get("/account/security")
@login_required
def security():
    return _security_page()


@bp.get("/account/security/password")
@login_required
def change_password_page():
    # The address a "log in again" comes back to after an expired form: the form itself.
    return redirect(url_for("accounts.security") + "#change-password")


def _password_attempt_key(identity_id) -> str:
    return f"throttle:password-change:{identity_id}"


def _count_password_attempt(store, identity_id, config) -> None:
    """The current password is checked at most LOGIN_THROTTLE_PER_ACCOUNT times per window."""
    key = _password_attempt_key(identity_id)
    window = config["LOGIN_THROTTLE_WINDOW"]
    if store.incr(key, window) > config["LOGIN_THROTTLE_PER_ACCOUNT"]:
        retry = store.ttl(key) or window
        raise Throttled(
            _l("Too many failed attempts. Please try again in %(minutes)d minutes.",
               minutes=max(1, (retry + 59) // 60)),
            retry_after=retry,
            field="current_password",
        )


@bp.post("/account/security/password")
@recent_login_required
def change_password():
    identity = g.identity
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return _security_page(form), 400
    cfg = current_app.config
    store = get_store()
    try:
        _count_password_attempt(store, identity.id, cfg)
    except Throttled as exc:
        form.current_password.errors = [exc.message]
        response = current_app.make_response((_security_page(form), 429))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    cred = db.session.get(PasswordCredential, identity.id)
    ok = False
    if cred is None:
        passwords.burn_verify(form.current_password.data, cfg)
    else:
        ok, _ = passwords.verify_password(cred.hash, form.current_password.data, cfg)
    if not ok:
        form.current_password.errors = [_l("This is not your current password.")]
        return _security_page(form), 400
    if passwords.normalize_password(form.new_password.data) == passwords.normalize_password(
        form.current_password.data
    ):
        form.new_password.errors = [_l("Choose a password different from the current one.")]
        return _security_page(form), 400
    try:
        services.set_password(identity, form.new_password.data, config=cfg, now=utcnow())
    except ValidationError as exc:
        form.new_password.errors = [exc.message]
        return _security_page(form), 400
    store.delete(_password_attempt_key(identity.id))
    ended = _end_other_sessions(store) if form.end_other_sessions.data else 0
    _record("password_changed", other_sessions_ended=ended)
    flash(_l("Your password has been changed."), "success")
    return redirect(url_for("accounts.security"))


# --- sessions ------------------------------------------------------------------------------

@bp.get("/account/sessions")
@login_required
def session_list():
    rows = []
    for item in sessions.sessions_of(get_store(), str(g.identity.id)):
        rows.append({
            "public_id": item["public_id"],
            "current": item["public_id"] == g.sso.public_id,
            "device": describe_user_agent(item.get("user_agent")),
            "address": item.get("address") or "",
            "created": _when(item.get("created_at")),
            "last_seen": _when(item.get("last_seen")),
            "two_factors": "mfa" in (item.get("amr") or []),
        })
    rows.sort(key=lambda r: not r["current"])
    return render_template("accounts/sessions.html", rows=rows, form=ConfirmForm(),
                           others=sum(1 for r in rows if not r["current"]))


def _end_other_sessions(store) -> int:
    identity_id = str(g.identity.id)
    ended = 0
    for item in sessions.sessions_of(store, identity_id):
        if item["public_id"] != g.sso.public_id:
            sessions.end_session_by_digest(store, identity_id, item["public_id"], reason="ended_by_person")
            ended += 1
    return ended


@bp.post("/account/sessions/<public_id>/end")
@recent_login_required
def session_end(public_id: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    store = get_store()
    identity_id = str(g.identity.id)
    # Only the person's own sessions: the public id must name a live session of this identity.
    if (not _PUBLIC_ID.match(public_id) or public_id == g.sso.public_id
            or sessions.identity_of_session(store, public_id) != identity_id):
        abort(404)
    device = next((describe_user_agent(s.get("user_agent")) for s in sessions.sessions_of(store, identity_id)
                   if s["public_id"] == public_id), "")
    sessions.end_session_by_digest(store, identity_id, public_id, reason="ended_by_person")
    _record("session_ended", device=device)
    flash(_l("That session has been ended: the device is logged out."), "success")
    return redirect(url_for("accounts.session_list"))


@bp.post("/account/sessions/end-others")
@recent_login_required
def session_end_others():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    ended = _end_other_sessions(get_store())
    if ended:
        _record("sessions_ended", count=ended)
    flash(_l("Your other devices have been logged out."), "success")
    return redirect(url_for("accounts.session_list"))


# --- activity ------------------------------------------------------------------------------

@bp.get("/account/activity")
@login_required
def activity():
    rows = [
        {
            "when": _when(item.at),
            "what": EVENT_WORDS.get(item.event, item.event),
            "security": item.event in SECURITY_EVENTS,
            "failed": item.event.endswith("_failed"),
            "client_id": item.client_id or "",
            "address": item.address or "",
            "device": describe_user_agent(item.user_agent) if item.user_agent else "",
        }
        for item in events.recent(g.identity.id, limit=100)
    ]
    return render_template("accounts/activity.html", rows=rows,
                           days=current_app.config["LOGIN_HISTORY_DAYS"])


# --- download my data ----------------------------------------------------------------------

def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def personal_data(identity, store) -> dict:
    """What the accounts and identity packages hold about a person; no secret, no hash."""
    cred = db.session.get(PasswordCredential, identity.id)
    totp = factors.totp_credential(identity.id)
    devices = db.session.query(KnownDevice).filter_by(identity_id=identity.id).order_by(KnownDevice.first_seen)
    return {
        "format": "eid-personal-data/1",
        "exported_at": _iso(utcnow()),
        "identity": {
            "id": str(identity.id),
            "kind": identity.kind.value,
            "full_name": identity.full_name,
            "birth_date": _iso(identity.birth_date),
            "gender": identity.gender.value if identity.gender else None,
            "phone": identity.phone,
            "phone_verified_at": _iso(identity.phone_verified_at),
            "email": identity.email,
            "email_verified_at": _iso(identity.email_verified_at),
            "status": identity.status.value,
            "assurance_level": identity.assurance_level,
            "created_at": _iso(identity.created_at),
            "updated_at": _iso(identity.updated_at),
        },
        # Every identifier the identity had; closed ones (valid_to set) are the history.
        "identifiers": [
            {
                "type": item.type.value,
                "value": item.value,
                "primary": item.is_primary,
                "valid_from": _iso(item.valid_from),
                "valid_to": _iso(item.valid_to),
                "change_reason": item.change_reason,
            }
            for item in sorted(identity.identifiers, key=lambda i: i.valid_from)
        ],
        "authentication": {
            "password": {
                "set": cred is not None,
                "updated_at": _iso(cred.updated_at) if cred else None,
                "blocked": bool(cred and cred.locked_at),
            },
            "authenticator_app": {
                "set_up": bool(totp and totp.confirmed_at),
                "since": _iso(totp.confirmed_at) if totp and totp.confirmed_at else None,
            },
            "recovery_codes_remaining": factors.remaining_recovery_codes(identity.id),
        },
        "roles": sorted(role.value for role in services.roles_of(identity.id)),
        "sessions": [
            {
                "created_at": _iso(item.get("created_at")),
                "last_seen": _iso(item.get("last_seen")),
                "authenticated_at": _iso(item.get("auth_time")),
                "methods": item.get("amr") or [],
                "level": item.get("acr"),
                "address": item.get("address") or None,
                "user_agent": item.get("user_agent") or None,
            }
            for item in sessions.sessions_of(store, str(identity.id))
        ],
        "devices": [{"first_seen": _iso(d.first_seen), "last_seen": _iso(d.last_seen)} for d in devices],
        "events": [
            {
                "at": _iso(item.at),
                "event": item.event,
                "client_id": item.client_id,
                "address": item.address,
                "user_agent": item.user_agent,
                "detail": item.detail,
            }
            for item in reversed(events.recent(identity.id, limit=None))
        ],
        # Consents live with the protocol layer: they are listed, and can be withdrawn, there.
        "consents": {"see": url_for("oidc.connections", _external=True)},
    }


@bp.get("/account/data.json")
@recent_login_required
def data_export():
    identity = g.identity
    _record("data_exported")
    body = json.dumps(personal_data(identity, get_store()), ensure_ascii=False, indent=2)
    response = current_app.response_class(body, mimetype="application/json")
    filename = f"du-lieu-ca-nhan-{utcnow():%Y%m%d}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
