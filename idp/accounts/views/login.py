"""Login (password, then a second factor when the account has one), step-up, logout."""

from __future__ import annotations

import time
import uuid

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l

from idp.accounts import events, factors, services, sessions
from idp.accounts.forms import LoginForm, LogoutForm, SecondFactorForm
from idp.accounts.views import bp
from idp.accounts.views.common import (
    client_address,
    current_identity,
    finish_login,
    reset_browser_session,
    safe_next,
)
from idp.errors import DomainError
from idp.identity import services as identity_services
from idp.store import get_store
from idp.timeutil import utcnow

# A password login waiting for its second factor is abandoned after this many seconds.
PENDING_MFA_TTL = 600


@bp.get("/")
def index():
    return render_template("accounts/index.html", identity=current_identity())


def _go(next_url):
    return redirect(next_url or url_for("accounts.account"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    next_url = safe_next(request.values.get("next"))
    reauth = bool(request.values.get("reauth"))
    if request.method == "GET" and request.args.get("login_hint"):
        form.login.data = request.args["login_hint"][:254]
    if form.validate_on_submit():
        store = get_store()
        try:
            identity = services.authenticate(
                store,
                login=form.login.data,
                password=form.password.data,
                address=client_address(),
                config=current_app.config,
                now=utcnow(),
            )
        except DomainError as exc:
            form.form_errors.append(exc.message)
            _record_failure(form.login.data)
            return (render_template("accounts/login.html", form=form, next=next_url, reauth=reauth), exc.status,
                    _retry_after(exc))
        if factors.has_totp(identity.id):
            # Password proven; the session starts only after the second factor.
            session["mfa"] = {"identity_id": str(identity.id), "at": int(time.time()), "next": next_url}
            return redirect(url_for("accounts.second_factor"))
        response = finish_login(identity, amr=["pwd"], next_url=next_url, response_for=_go)
        if services.roles_of(identity.id):
            # Officers and administrators always use two factors: set one up now.
            flash(_l("Administrators and officers must use two factors. Set up an authenticator app to continue."), "info")
            response.headers["Location"] = url_for("accounts.totp_enrol", next=next_url)
        return response
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/login.html", form=form, next=next_url, reauth=reauth), status


def _retry_after(exc: DomainError) -> dict:
    """A throttled answer says when to come back (RFC 9110 Retry-After, seconds)."""
    retry = getattr(exc, "retry_after", None)
    return {"Retry-After": str(int(retry))} if retry else {}


def _record_failure(login_value: str) -> None:
    identity = identity_services.find_for_login(login_value or "")
    if identity is not None:
        events.record(identity.id, "login_failed", now=utcnow(), address=client_address(),
                      user_agent=request.user_agent.string)


def _pending_mfa():
    pending = session.get("mfa")
    if not pending or int(time.time()) - pending.get("at", 0) > PENDING_MFA_TTL:
        session.pop("mfa", None)
        return None
    return pending


@bp.route("/login/second-factor", methods=["GET", "POST"])
def second_factor():
    pending = _pending_mfa()
    if pending is None:
        return redirect(url_for("accounts.login"))
    identity = identity_services.get_identity(uuid.UUID(pending["identity_id"]))
    form = SecondFactorForm()
    if form.validate_on_submit() and identity is not None:
        store = get_store()
        try:
            proven = factors.verify_second_factor(store, identity.id, form.code.data,
                                                  config=current_app.config, now=utcnow())
        except DomainError as exc:
            form.code.errors = [exc.message]
            return render_template("accounts/second_factor.html", form=form), exc.status, _retry_after(exc)
        if proven:
            session.pop("mfa", None)
            amr = ["pwd", proven, "mfa"]
            if pending.get("step_up") and g.sso is not None and g.sso.identity_id == pending["identity_id"]:
                cfg = current_app.config
                sessions.step_up(store, g.sso, amr=amr, acr=factors.acr_for(identity.assurance_level, amr),
                                 now=int(time.time()), absolute=cfg["SESSION_ABSOLUTE_TIMEOUT"])
                events.record(identity.id, "step_up", now=utcnow(), address=client_address(),
                              user_agent=request.user_agent.string, detail={"amr": amr})
                return _go(pending.get("next"))
            return finish_login(identity, amr=amr, next_url=pending.get("next"), response_for=_go)
        form.code.errors = [_l("This code is not valid. Check the time on your phone and try again.")]
        events.record(identity.id, "second_factor_failed", now=utcnow(), address=client_address(),
                      user_agent=request.user_agent.string)
        return render_template("accounts/second_factor.html", form=form), 401
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/second_factor.html", form=form), status


@bp.get("/login/step-up")
def step_up():
    """The session is too weak for what was asked: add the second factor to it."""
    next_url = safe_next(request.args.get("next"))
    identity = current_identity()
    if identity is None:
        return redirect(url_for("accounts.login", next=next_url))
    if not factors.has_totp(identity.id):
        flash(_l("This service needs two factors. Set up an authenticator app to continue."), "info")
        return redirect(url_for("accounts.totp_enrol", next=next_url))
    session["mfa"] = {"identity_id": str(identity.id), "at": int(time.time()), "next": next_url, "step_up": True}
    return redirect(url_for("accounts.second_factor"))


@bp.post("/logout")
def logout():
    form = LogoutForm()
    if not form.validate_on_submit():
        return render_template("errors/error.html", status=400,
                               message=_l("Logout could not be confirmed. Please try again.")), 400
    if g.sso is not None:
        events.record(uuid.UUID(g.sso.identity_id), "logout", now=utcnow(), address=client_address(),
                      user_agent=request.user_agent.string)
        sessions.end_session(get_store(), g.sso)
    reset_browser_session()
    flash(_l("You have been logged out."), "info")
    response = redirect(url_for("accounts.index"))
    sessions.clear_cookie(response)
    return response


@bp.get("/lang/<code>")
def set_language(code: str):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next")) or url_for("accounts.index"))
