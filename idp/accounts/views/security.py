"""Second factors in the account console: set up an authenticator app, recovery codes."""

from __future__ import annotations

import segno
from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from idp.accounts import events, factors, services
from idp.accounts.forms import ConfirmForm, TotpConfirmForm
from idp.accounts.views import bp
from idp.accounts.views.common import client_address, recent_login_required, safe_next
from idp.errors import DomainError
from idp.store import get_store
from idp.timeutil import utcnow


def _record(event: str) -> None:
    events.record(g.identity.id, event, now=utcnow(), address=client_address(),
                  user_agent=request.user_agent.string)


@bp.route("/account/security/totp", methods=["GET", "POST"])
@recent_login_required
def totp_enrol():
    identity = g.identity
    next_url = safe_next(request.values.get("next"))
    if factors.has_totp(identity.id):
        return redirect(url_for("accounts.account"))
    form = TotpConfirmForm()
    cfg = current_app.config
    secret = factors.pending_secret(identity.id, config=cfg)
    if secret is None or request.method == "GET" and request.args.get("restart"):
        secret = factors.start_enrolment(identity.id, config=cfg, now=utcnow())
    status = 200
    if form.validate_on_submit():
        try:
            ok = factors.confirm_enrolment(get_store(), identity.id, form.code.data, config=cfg, now=utcnow())
        except DomainError as exc:
            form.code.errors = [exc.message]
            ok, status = False, exc.status
        if ok:
            codes = factors.new_recovery_codes(identity.id, now=utcnow())
            _record("totp_enabled")
            return render_template("accounts/recovery_codes.html", codes=codes, next=next_url), 200
        if not form.code.errors:
            form.code.errors = [_l("This code is not valid. Check the time on your phone and try again.")]
            status = 400
    elif form.is_submitted():
        status = 400
    uri = factors.provisioning_uri(secret, identity.primary_identifier.value if identity.primary_identifier else str(identity.id))
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render_template("accounts/totp_enrol.html", form=form, qr=qr, secret=grouped, next=next_url), status


@bp.post("/account/security/recovery-codes")
@recent_login_required
def regenerate_recovery_codes():
    if not ConfirmForm().validate_on_submit() or not factors.has_totp(g.identity.id):
        return redirect(url_for("accounts.account"))
    codes = factors.new_recovery_codes(g.identity.id, now=utcnow())
    _record("recovery_codes_regenerated")
    return render_template("accounts/recovery_codes.html", codes=codes, next=None)


@bp.post("/account/security/totp/remove")
@recent_login_required
def totp_remove():
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("accounts.account"))
    if services.roles_of(g.identity.id):
        # Officers and administrators always keep two factors; a reset goes through an officer.
        flash(_l("Officers and administrators must keep an authenticator app. Ask a superadmin to reset it."), "error")
        return redirect(url_for("accounts.security"))
    factors.remove_totp(g.identity.id)
    _record("totp_removed")
    flash(_l("The authenticator app was removed. Your account is now protected by your password only."), "info")
    return redirect(url_for("accounts.account"))
