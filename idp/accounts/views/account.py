"""The citizen's account console: the home page with its menu (the pages are in console.py)."""

from __future__ import annotations

from flask import g, render_template

from idp.accounts import factors
from idp.accounts.forms import LogoutForm
from idp.accounts.views import bp
from idp.accounts.views.common import login_required


@bp.get("/account")
@login_required
def account():
    identity = g.identity
    return render_template(
        "accounts/account.html",
        identity=identity,
        sso=g.sso,
        logout_form=LogoutForm(),
        has_totp=factors.has_totp(identity.id),
        two_factor_session="mfa" in (g.sso.amr or []),
    )
