"""Account recovery (forgotten password) and contact verification pages.

/recover always answers the same way (a neutral page that also takes an SMS code), whether
or not the account exists and whichever channel was used. /recover/reset takes its token only
when the whole form succeeds.
"""

from __future__ import annotations

import time

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length, Optional

from idp.accounts import recovery
from idp.accounts.forms import ConfirmForm
from idp.accounts.views import bp
from idp.accounts.views.common import (
    client_address,
    form_errors,
    login_required,
    reset_browser_session,
)
from idp.errors import DomainError, InvalidFields
from idp.store import get_store
from idp.timeutil import utcnow

# How long the browser remembers what was typed on /recover, for the SMS code page (seconds).
PENDING_RECOVERY_TTL = 900


class RecoverForm(FlaskForm):
    login = StringField(
        _l("Personal number, phone number or e-mail"),
        validators=[InputRequired(_l("Enter your personal number, phone number or e-mail.")), Length(max=254)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )


class ResetForm(FlaskForm):
    password = PasswordField(
        _l("New password"),
        validators=[InputRequired(_l("Choose a new password.")), Length(max=1024)],
        render_kw={"autocomplete": "new-password"},
    )
    code = StringField(
        _l("Code from your authenticator app, or a recovery code"),
        validators=[Optional(), Length(max=32)],
        render_kw={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"},
    )


class SmsCodeForm(FlaskForm):
    code = StringField(
        _l("The 6-digit code from the SMS"),
        validators=[InputRequired(_l("Enter the code.")), Length(max=12)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


def _lang() -> str:
    return str(get_locale())


def _result(title, message, *, status: int, link=None, link_text=None):
    return render_template("accounts/verify_result.html", title=title, message=message, link=link,
                           link_text=link_text, ok=status < 400), status


def _invalid_reset_link():
    return _result(
        _l("This link cannot be used"),
        _l("This link is not valid: it has expired or has already been used. You can ask for a new one."),
        status=400, link=url_for("accounts.recover"), link_text=_l("Ask for a new link"),
    )


# --- forgotten password ---------------------------------------------------------------------

@bp.route("/recover", methods=["GET", "POST"])
def recover():
    form = RecoverForm()
    if form.validate_on_submit():
        try:
            recovery.request_reset(get_store(), form.login.data, config=current_app.config, now=utcnow(),
                                   address=client_address(), lang=_lang())
        except DomainError as exc:
            form.login.errors = [exc.message]
            return render_template("accounts/recover.html", form=form), exc.status
        # The same next page whatever happened: it never says whether the account exists.
        session["recover"] = {"login": form.login.data.strip()[:254], "at": int(time.time())}
        return redirect(url_for("accounts.recover_code"), 303)
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/recover.html", form=form), status


def _pending_recovery() -> dict | None:
    pending = session.get("recover")
    if not pending or int(time.time()) - pending.get("at", 0) > PENDING_RECOVERY_TTL:
        session.pop("recover", None)
        return None
    return pending


@bp.route("/recover/code", methods=["GET", "POST"])
def recover_code():
    pending = _pending_recovery()
    if pending is None:
        return redirect(url_for("accounts.recover"))
    form = SmsCodeForm()
    if form.validate_on_submit():
        try:
            token = recovery.verify_reset_code(get_store(), pending["login"], form.code.data,
                                               config=current_app.config, now=utcnow())
        except DomainError as exc:
            form.code.errors = [exc.message]
            return render_template("accounts/recover_code.html", form=form), exc.status
        if token:
            session.pop("recover", None)
            return redirect(url_for("accounts.recover_reset", token=token), 303)
        form.code.errors = [_l("This code is not valid or has expired. Check the SMS, or ask for a new code.")]
        return render_template("accounts/recover_code.html", form=form), 400
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/recover_code.html", form=form), status


@bp.route("/recover/reset", methods=["GET", "POST"])
def recover_reset():
    g.no_store = True  # the token is in the URL
    token = request.args.get("token", "")
    store = get_store()
    ticket = recovery.check_reset_token(store, token, now=utcnow())
    if ticket is None:
        return _invalid_reset_link()
    form = ResetForm()
    status = 200
    if form.validate_on_submit():
        try:
            identity = recovery.complete_reset(
                store, token, password=form.password.data, second_factor=form.code.data,
                config=current_app.config, now=utcnow(), address=client_address(),
                user_agent=request.user_agent.string or "",
            )
        except recovery.InvalidLink:
            return _invalid_reset_link()
        except InvalidFields as exc:
            form_errors(form, exc.errors)
            status = exc.status
        except DomainError as exc:
            form_errors(form, {exc.field or "password": exc.message})
            status = exc.status
        else:
            if g.sso is not None and g.sso.identity_id == str(identity.id):
                g.clear_sso_cookie = True
                reset_browser_session()
            flash(_l("Your password has been changed and every session was logged out. "
                     "Log in with your new password."), "success")
            return redirect(url_for("accounts.login"), 303)
    elif form.is_submitted():
        status = 400
    return render_template("accounts/reset.html", form=form, token=token,
                           needs_code=ticket.needs_second_factor), status


# --- contact verification -------------------------------------------------------------------

@bp.get("/verify-email")
def verify_email():
    g.no_store = True
    identity = recovery.confirm_email(get_store(), request.args.get("token"), now=utcnow(),
                                      address=client_address())
    if identity is None:
        return _result(
            _l("This link cannot be used"),
            _l("This confirmation link is not valid: it has expired or has already been used. "
               "Log in and ask for a new one from your account."),
            status=400, link=url_for("accounts.contact"), link_text=_l("Contact details"),
        )
    return _result(_l("E-mail address confirmed"),
                   _l("Thank you: your e-mail address %(email)s is confirmed.", email=identity.email),
                   status=200, link=url_for("accounts.account"), link_text=_l("My account"))


def _contact_page(*, code_form=None, status: int = 200):
    return render_template("accounts/contact.html", identity=g.identity, send_form=ConfirmForm(),
                           code_form=code_form or SmsCodeForm(formdata=None)), status


@bp.get("/account/contact")
@login_required
def contact():
    return _contact_page()


@bp.post("/account/contact/email/verify")
@login_required
def email_verify_send():
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("accounts.contact"))
    identity = g.identity
    if identity.email and identity.email_verified_at is None:
        if recovery.start_email_verification(get_store(), identity, config=current_app.config,
                                             now=utcnow(), lang=_lang()):
            flash(_l("We sent a confirmation link to %(email)s. Open it to confirm the address.",
                     email=identity.email), "success")
        else:
            flash(_l("We could not send a new link now. Please try again later."), "error")
    return redirect(url_for("accounts.contact"), 303)


@bp.post("/account/contact/phone/verify")
@login_required
def phone_verify():
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("accounts.contact"))
    identity = g.identity
    try:
        sent = recovery.start_phone_verification(get_store(), identity, config=current_app.config,
                                                 now=utcnow(), lang=_lang())
    except DomainError as exc:
        form = SmsCodeForm(formdata=None)
        form.code.errors = [exc.message]
        return _contact_page(code_form=form, status=exc.status)
    if sent:
        flash(_l("We sent a 6-digit code by SMS to %(phone)s. Enter it below.", phone=identity.phone), "success")
    elif identity.phone and identity.phone_verified_at is None:
        flash(_l("We could not send the SMS now. Please try again later."), "error")
    return redirect(url_for("accounts.contact"), 303)


@bp.post("/account/contact/phone/confirm")
@login_required
def phone_confirm():
    form = SmsCodeForm()
    if not form.validate_on_submit():
        return _contact_page(code_form=form, status=400)
    try:
        ok = recovery.confirm_phone(get_store(), g.identity, form.code.data, config=current_app.config,
                                    now=utcnow(), address=client_address())
    except DomainError as exc:
        form.code.errors = [exc.message]
        return _contact_page(code_form=form, status=exc.status)
    if not ok:
        form.code.errors = [_l("This code is not valid or has expired. Check the SMS, or ask for a new code.")]
        return _contact_page(code_form=form, status=400)
    flash(_l("Your phone number is confirmed."), "success")
    return redirect(url_for("accounts.account"), 303)
