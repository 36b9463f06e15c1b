"""Login, logout, registration and the citizen's own account page."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import lazy_gettext as _l

from idp.accounts import services, sessions
from idp.accounts.forms import LoginForm, LogoutForm, RegisterForm
from idp.errors import DomainError, InvalidFields
from idp.identity import services as identity_services
from idp.store import get_store
from idp.timeutil import utcnow

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str | None:
    """Only local paths: never an open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def _form_errors(form, errors: dict) -> None:
    for name, message in errors.items():
        field = getattr(form, name, None) or form.password
        field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]


def _reset_browser_session() -> None:
    # Drop everything tied to the previous login but keep the chosen language.
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


@bp.get("/")
def index():
    return render_template("accounts/index.html", identity=_current_identity())


def _current_identity():
    if g.get("sso") is None:
        return None
    return identity_services.get_identity(_uuid(g.sso.identity_id))


def _uuid(value):
    import uuid

    return uuid.UUID(value)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET" and request.args.get("login_hint"):
        form.login.data = request.args["login_hint"][:254]
    if form.validate_on_submit():
        store = get_store()
        try:
            identity = services.authenticate(
                store,
                login=form.login.data,
                password=form.password.data,
                address=request.remote_addr or "unknown",
                config=current_app.config,
                now=utcnow(),
            )
        except DomainError as exc:
            form.form_errors.append(exc.message)
            return render_template("accounts/login.html", form=form, next=next_url), exc.status
        # A new session identifier at every login; the old one (if any) ends.
        if g.sso is not None:
            sessions.end_session(store, g.sso)
        _reset_browser_session()
        sess = sessions.create_session(
            store,
            str(identity.id),
            now=int(time.time()),
            amr=["pwd"],
            acr=services.ACR_LOW,
            absolute=current_app.config["SESSION_ABSOLUTE_TIMEOUT"],
        )
        response = redirect(next_url or url_for("accounts.account"))
        sessions.set_cookie(response, sess)
        return response
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/login.html", form=form, next=next_url), status


@bp.post("/logout")
def logout():
    form = LogoutForm()
    if not form.validate_on_submit():
        return render_template("errors/error.html", status=400, message=_l("Logout could not be confirmed. Please try again.")), 400
    if g.sso is not None:
        sessions.end_session(get_store(), g.sso)
    _reset_browser_session()
    flash(_l("You have been logged out."), "info")
    response = redirect(url_for("accounts.index"))
    sessions.clear_cookie(response)
    return response


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            services.throttle.count_registration(
                get_store(), address=request.remote_addr or "unknown", config=current_app.config
            )
            services.register_citizen(
                personal_number=form.personal_number.data,
                full_name=form.full_name.data,
                birth_date=form.birth_date.data,
                gender=form.gender.data,
                phone=form.phone.data or None,
                email=form.email.data or None,
                password=form.password.data,
                config=current_app.config,
                now=utcnow(),
            )
        except InvalidFields as exc:
            _form_errors(form, exc.errors)
            return render_template("accounts/register.html", form=form), 400
        except DomainError as exc:
            form.form_errors.append(exc.message)
            return render_template("accounts/register.html", form=form), exc.status
        flash(_l("Your account has been created. You can now log in."), "success")
        return redirect(url_for("accounts.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/register.html", form=form), status


@bp.get("/account")
def account():
    identity = _current_identity()
    if identity is None:
        return redirect(url_for("accounts.login", next=request.path))
    g.no_store = True
    return render_template(
        "accounts/account.html", identity=identity, sso=g.sso, logout_form=LogoutForm()
    )


@bp.get("/lang/<code>")
def set_language(code: str):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(_safe_next(request.args.get("next")) or url_for("accounts.index"))
