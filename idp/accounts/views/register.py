"""Citizen self-registration."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from idp.accounts import recovery, services
from idp.accounts.forms import RegisterForm
from idp.accounts.views import bp
from idp.accounts.views.common import form_errors
from idp.errors import DomainError, InvalidFields
from idp.store import get_store
from idp.timeutil import utcnow


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            services.throttle.count_registration(
                get_store(), address=request.remote_addr or "unknown", config=current_app.config
            )
            identity = services.register_citizen(
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
            form_errors(form, exc.errors)
            return render_template("accounts/register.html", form=form), 400
        except DomainError as exc:
            form.form_errors.append(exc.message)
            return render_template("accounts/register.html", form=form), exc.status
        flash(_l("Your account has been created. You can now log in."), "success")
        # Prove the e-mail address (if any) before it is used for recovery or alerts.
        recovery.start_email_verification(get_store(), identity, config=current_app.config,
                                          now=utcnow(), lang=str(get_locale()))
        return redirect(url_for("accounts.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/register.html", form=form), status
