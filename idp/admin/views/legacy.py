"""The legacy conflict queue, and the legacy mapping progress as JSON."""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l

from idp.accounts.models import Role
from idp.admin import services
from idp.admin.decorators import READ_IDENTITIES, WRITE_IDENTITIES, require_role
from idp.admin.forms import LegacyDecisionForm
from idp.admin.views import Page, address, bp, officer_id, page_arg
from idp.errors import DomainError
from idp.extensions import db
from idp.identity.services import resolve
from idp.legacy import services as legacy_services
from idp.legacy.models import LinkState
from idp.timeutil import utcnow

PER_PAGE = 25


@bp.get("/legacy/conflicts")
@require_role(*READ_IDENTITIES)
def legacy_conflicts():
    rows, total = legacy_services.conflict_queue(page=page_arg(), per_page=PER_PAGE)
    candidates = {a.id: resolve(a.candidate_identity_id) for a in rows}
    return render_template("admin/legacy_queue.html", rows=rows, candidates=candidates,
                           page=Page(page_arg(), PER_PAGE, total))


def _render(account, form, status=200):
    candidate = resolve(account.candidate_identity_id)
    return render_template(
        "admin/legacy_conflict.html", account=account, candidate=candidate, form=form,
        differences=services.legacy_differences(account, candidate),
        waiting=account.link_state == LinkState.CONFLICT,
    ), status


@bp.get("/legacy/conflicts/<int:account_id>")
@require_role(*READ_IDENTITIES)
def legacy_conflict(account_id):
    account = legacy_services.get_account(account_id)
    if account is None:
        abort(404)
    return _render(account, LegacyDecisionForm(formdata=None))


@bp.post("/legacy/conflicts/<int:account_id>")
@require_role(*WRITE_IDENTITIES)
def legacy_decide(account_id):
    account = legacy_services.get_account(account_id)
    if account is None:
        abort(404)
    form = LegacyDecisionForm()
    if not form.validate_on_submit():
        return _render(account, form, 400)
    try:
        services.decide_conflict(account.id, form.decision.data, officer_id=officer_id(),
                                 reason=form.reason.data, address=address(), now=utcnow())
    except DomainError as exc:
        db.session.rollback()
        form.form_errors.append(exc.message)
        return _render(legacy_services.get_account(account_id), form, exc.status)
    if form.decision.data == "link":
        flash(_l("The old account is linked to the identity."), "success")
    else:
        flash(_l("The old account was rejected for this identity."), "success")
    return redirect(url_for("admin.legacy_conflicts"))


@bp.get("/api/legacy/progress")
@require_role(Role.IDENTITY_OFFICER)
def legacy_progress_api():
    """Per legacy system: accounts imported, per link state, share mapped, last import."""
    response = jsonify(systems=services.legacy_progress())
    response.headers["Cache-Control"] = "no-store"
    return response
