"""Old accounts: log in with one and create or confirm the unified identity; claim from the console."""

from __future__ import annotations

import time

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

from idp.accounts.views.common import (
    CARRIED_OVER_LOGIN,
    client_address,
    current_identity,
    finish_login,
    form_errors,
    login_required,
)
from idp.errors import DomainError, InvalidFields
from idp.legacy import claiming, services
from idp.legacy.forms import CompleteIdentityForm, LegacyLoginForm
from idp.store import get_store
from idp.timeutil import utcnow

bp = Blueprint("legacy", __name__)
# A proven old account waits this long for the person to complete their identity.
CLAIM_TTL = 900


def _systems_choices():
    return [("", _l("— choose —"))] + [(s.slug, s.name) for s in services.list_systems()]


def _prove(form):
    return claiming.authenticate(
        get_store(), system_slug=form.system.data, username=form.username.data, password=form.password.data,
        address=client_address(), config=current_app.config,
    )


@bp.route("/legacy/login", methods=["GET", "POST"])
def login():
    form = LegacyLoginForm()
    form.system.choices = _systems_choices()
    if form.validate_on_submit():
        try:
            account = _prove(form)
        except DomainError as exc:
            form.password.errors = [exc.message]
            return render_template("legacy/login.html", form=form), exc.status
        if account.is_linked:
            flash(_l("This old account is already linked to a unified account. Log in with the unified account."), "info")
            return redirect(url_for("accounts.login"))
        session["legacy_claim"] = {"account_id": account.id, "at": int(time.time())}
        return redirect(url_for("legacy.complete"))
    status = 400 if form.is_submitted() else 200
    return render_template("legacy/login.html", form=form), status


def _pending_account():
    pending = session.get("legacy_claim")
    if not pending or int(time.time()) - pending.get("at", 0) > CLAIM_TTL:
        session.pop("legacy_claim", None)
        return None
    return services.get_account(pending["account_id"])


@bp.route("/legacy/complete", methods=["GET", "POST"])
def complete():
    account = _pending_account()
    if account is None:
        return redirect(url_for("legacy.login"))
    identity = current_identity()
    if identity is not None:
        # Logged in meanwhile (the number had an identity): link to it.
        try:
            claiming.claim(account, identity, address=client_address(), now=utcnow())
        except DomainError as exc:
            session.pop("legacy_claim", None)
            flash(exc.message, "error")
            return redirect(url_for("legacy.account_legacy"))
        session.pop("legacy_claim", None)
        flash(_l("Your old account is now linked. Use your unified account from now on."), "success")
        return redirect(url_for("legacy.account_legacy"))
    form = CompleteIdentityForm()
    if request.method == "GET":
        form.full_name.data = account.full_name
        form.birth_date.data = account.birth_date
        form.personal_number.data = account.personal_number
        form.phone.data = account.phone
        form.email.data = account.email
        form.gender.data = account.gender
    if form.validate_on_submit():
        try:
            identity = claiming.create_identity(
                account, personal_number=form.personal_number.data, full_name=form.full_name.data,
                birth_date=form.birth_date.data, gender=form.gender.data, phone=form.phone.data or None,
                email=form.email.data or None, password=form.password.data, address=client_address(),
                config=current_app.config, now=utcnow(),
            )
        except claiming.IdentityExists as exc:
            flash(exc.message, "info")
            return redirect(url_for("accounts.login", next=url_for("legacy.complete")))
        except InvalidFields as exc:
            form_errors(form, exc.errors)
            return render_template("legacy/complete.html", form=form, account=account), 400
        except DomainError as exc:
            form.form_errors.append(exc.message)
            return render_template("legacy/complete.html", form=form, account=account), exc.status
        session.pop("legacy_claim", None)
        response = finish_login(identity, amr=["pwd"], next_url=url_for("legacy.account_legacy"),
                                response_for=lambda url: redirect(url))
        # After the login: it starts a fresh browser session, which would drop an earlier message.
        flash(_l("Your unified account is ready and your old account is linked to it."), "success")
        return response
    status = 400 if form.is_submitted() else 200
    return render_template("legacy/complete.html", form=form, account=account), status


@bp.route("/account/legacy", methods=["GET", "POST"])
@login_required
def account_legacy():
    identity = g.identity
    form = LegacyLoginForm()
    form.system.choices = _systems_choices()
    status = 200
    if form.validate_on_submit():
        try:
            account = _prove(form)
            claiming.claim(account, identity, address=client_address(), now=utcnow())
        except InvalidFields as exc:
            form_errors(form, {"password": exc.errors.get("username")})
            status = 400
        except DomainError as exc:
            form.password.errors = [exc.message]
            status = exc.status
        else:
            flash(_l("The old account is now linked to your unified account."), "success")
            return redirect(url_for("legacy.account_legacy"))
    elif form.is_submitted():
        status = 400
    return render_template(
        "legacy/account.html", form=form,
        linked=services.linked_accounts(identity.id),
        waiting=services.pending_conflicts_for(identity.id),
    ), status


def init_app(app) -> None:
    app.register_blueprint(bp)
    # A proven old account waits through the login of the identity it will be linked to.
    CARRIED_OVER_LOGIN.add("legacy_claim")
