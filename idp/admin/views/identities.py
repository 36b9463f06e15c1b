"""Identities: search, the record of one identity, and the officers' actions on it."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from idp import audit
from idp.accounts import sessions as sso
from idp.accounts.services import roles_of
from idp.admin import services
from idp.admin.decorators import READ_IDENTITIES, WRITE_IDENTITIES, require_role
from idp.admin.forms import (
    EVIDENCE_LABELS,
    MergeFindForm,
    MergeForm,
    PersonalNumberForm,
    ReasonForm,
    SearchForm,
    VerificationForm,
)
from idp.admin.views import Page, address, bp, officer_id, page_arg
from idp.errors import DomainError
from idp.extensions import db
from idp.identity.models import Identity, IdentityStatus
from idp.identity.services import resolve
from idp.legacy import services as legacy_services
from idp.oidc.consent import active_consents
from idp.store import get_store
from idp.timeutil import utcnow

PER_PAGE = 25
TRAIL_PER_PAGE = 20

# The actions on the record page: endpoint -> (button label, message once done).
ACTIONS = {
    "lock": (_l("Lock the identity"), _l("The identity is locked and all its sessions ended.")),
    "unlock": (_l("Unlock the identity"), _l("The identity is unlocked.")),
    "end_sessions": (_l("End all sessions"), _l("All sessions of this identity were ended.")),
    "reset_factors": (_l("Reset second factors"),
                      _l("The authenticator app and recovery codes were removed.")),
}


def _get(identity_id) -> Identity:
    identity = db.session.get(Identity, identity_id)
    if identity is None:
        abort(404)
    return identity


@bp.get("/identities")
@require_role(*READ_IDENTITIES)
def identities():
    form = SearchForm(request.args)
    result, page = None, None
    if form.q.data and form.validate():
        result = services.search_identities(form.q.data, page=page_arg(), per_page=PER_PAGE)
        page = Page(page_arg(), PER_PAGE, result.total, result.capped)
    return render_template("admin/identities.html", form=form, result=result, page=page)


def _detail(identity: Identity, *, failed: str | None = None, form=None, status: int = 200):
    """The record of one identity; `failed` names the action form that needs correcting."""
    forms = {name: ReasonForm(formdata=None) for name in ACTIONS}
    if failed:
        forms[failed] = form
    trail_page = page_arg()
    trail, trail_total = audit.search(involving=str(identity.id), page=trail_page,
                                      per_page=TRAIL_PER_PAGE)
    merges = services.merges_of(identity.id)
    others = {m.survivor_id for m in merges} | {m.merged_id for m in merges}
    people = {i.id: i for i in db.session.query(Identity).filter(Identity.id.in_(others))} if others else {}
    consents = active_consents(identity.id)
    client_names = services.client_names()
    context = dict(
        identity=identity,
        survivor=resolve(identity.id) if identity.status == IdentityStatus.MERGED else None,
        identifiers=sorted(identity.identifiers, key=lambda i: (i.valid_to is None, i.valid_from), reverse=True),
        verifications=services.verifications_of(identity.id),
        upstream=services.upstream_evidence(identity.id),
        evidence_labels=EVIDENCE_LABELS,
        factors=services.factor_summary(identity.id),
        sessions=sso.sessions_of(get_store(), str(identity.id)),
        consents=consents,
        client_names=client_names,
        legacy_links=legacy_services.linked_accounts(identity.id),
        legacy_pending=legacy_services.pending_conflicts_for(identity.id),
        representations=services.representations(identity, now=utcnow()),
        roles=sorted(str(r) for r in roles_of(identity.id)),
        merges=merges,
        people=people,
        trail=trail,
        trail_page=Page(trail_page, TRAIL_PER_PAGE, trail_total),
        forms=forms,
        actions=ACTIONS,
        failed=failed,
    )
    return render_template("admin/identity.html", **context), status


@bp.get("/identities/<uuid:identity_id>")
@require_role(*READ_IDENTITIES)
def identity(identity_id):
    record = _get(identity_id)
    audit.record("admin.identity.viewed", actor=officer_id(), target_type="identity",
                 target_id=record.id, address=address(), now=utcnow())
    db.session.commit()
    return _detail(record)


def _run(identity_id, name: str, call):
    record = _get(identity_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _detail(record, failed=name, form=form, status=400)
    try:
        call(record, form.reason.data)
    except DomainError as exc:
        db.session.rollback()
        _field_error(form, exc)
        return _detail(_get(identity_id), failed=name, form=form, status=exc.status)
    flash(ACTIONS[name][1], "success")
    return redirect(url_for("admin.identity", identity_id=record.id))


@bp.post("/identities/<uuid:identity_id>/lock")
@require_role(*WRITE_IDENTITIES)
def lock(identity_id):
    return _run(identity_id, "lock", lambda record, reason: services.lock_identity(
        get_store(), record.id, officer_id=officer_id(), reason=reason, address=address(), now=utcnow()))


@bp.post("/identities/<uuid:identity_id>/unlock")
@require_role(*WRITE_IDENTITIES)
def unlock(identity_id):
    return _run(identity_id, "unlock", lambda record, reason: services.unlock_identity(
        record.id, officer_id=officer_id(), reason=reason, address=address(), now=utcnow()))


@bp.post("/identities/<uuid:identity_id>/sessions/end")
@require_role(*WRITE_IDENTITIES)
def end_sessions(identity_id):
    return _run(identity_id, "end_sessions", lambda record, reason: services.end_sessions(
        get_store(), record.id, officer_id=officer_id(), reason=reason, address=address(), now=utcnow()))


@bp.post("/identities/<uuid:identity_id>/factors/reset")
@require_role(*WRITE_IDENTITIES)
def reset_factors(identity_id):
    return _run(identity_id, "reset_factors", lambda record, reason: services.reset_second_factors(
        record.id, officer_id=officer_id(), reason=reason, address=address(), now=utcnow()))


def _field_error(form, exc: DomainError) -> None:
    field = getattr(form, exc.field or "", None)
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, exc.message] if isinstance(field.errors, list) else [exc.message]
    else:
        form.form_errors.append(exc.message)


@bp.route("/identities/<uuid:identity_id>/verify", methods=["GET", "POST"])
@require_role(*WRITE_IDENTITIES)
def verify(identity_id):
    record = _get(identity_id)
    form = VerificationForm()
    status = 200
    if form.validate_on_submit():
        try:
            services.record_verification(
                record.id, officer_id=officer_id(), evidence_type=form.evidence_type.data,
                document_number=form.document_number.data, reason=form.reason.data,
                address=address(), now=utcnow())
        except DomainError as exc:
            db.session.rollback()
            _field_error(form, exc)
            status = exc.status
        else:
            flash(_l("The in-person verification is recorded: the identity is now at level 2."), "success")
            return redirect(url_for("admin.identity", identity_id=record.id))
    elif form.is_submitted():
        status = 400
    return render_template("admin/verify.html", form=form, identity=_get(identity_id)), status


@bp.route("/identities/<uuid:identity_id>/personal-number", methods=["GET", "POST"])
@require_role(*WRITE_IDENTITIES)
def personal_number(identity_id):
    record = _get(identity_id)
    form = PersonalNumberForm()
    status = 200
    if form.validate_on_submit():
        try:
            services.correct_personal_number(
                record.id, form.personal_number.data, officer_id=officer_id(),
                reason=form.reason.data, address=address(), now=utcnow())
        except DomainError as exc:
            db.session.rollback()
            _field_error(form, exc)
            status = exc.status
        else:
            flash(_l("The personal number is corrected; the previous one is kept in the history."), "success")
            return redirect(url_for("admin.identity", identity_id=record.id))
    elif form.is_submitted():
        status = 400
    return render_template("admin/personal_number.html", form=form, identity=_get(identity_id)), status


def _find_other(text: str, survivor: Identity) -> Identity | None:
    try:
        return db.session.get(Identity, uuid.UUID(text.strip()))
    except ValueError:
        pass
    found = services.search_identities(text, per_page=5)
    if found.kind != "number":
        return None
    candidates = [i for i in found.items if i.id != survivor.id and i.status != IdentityStatus.MERGED]
    return candidates[0] if len(candidates) == 1 else None


@bp.route("/identities/<uuid:identity_id>/merge", methods=["GET", "POST"])
@require_role(*WRITE_IDENTITIES)
def merge(identity_id):
    """Merge a duplicate into this identity (this one survives): find, compare, confirm."""
    survivor = _get(identity_id)
    find = MergeFindForm(request.args)
    form = MergeForm()
    other, problems, status = None, [], 200
    if request.method == "POST":
        other = db.session.get(Identity, _parse_uuid(form.other_id.data))
        if other is None:
            abort(400)
        if form.validate_on_submit():
            try:
                services.merge_identities(survivor.id, other.id, officer_id=officer_id(),
                                          reason=form.reason.data, config=current_app.config,
                                          address=address(), now=utcnow())
            except DomainError as exc:
                db.session.rollback()
                _field_error(form, exc)
                status = exc.status
            else:
                flash(_l("The duplicate was merged into this identity."), "success")
                return redirect(url_for("admin.identity", identity_id=survivor.id))
        else:
            status = 400
        survivor, other = _get(identity_id), _get(other.id)
    elif find.other.data:
        other = _find_other(find.other.data, survivor)
        if other is None:
            find.other.errors = [_l("No single identity matches this; use its internal id.")]
            status = 404
        else:
            form.other_id.data = str(other.id)
    if other is not None:
        problems = services.merge_preview(survivor.id, other.id)
    return render_template("admin/merge.html", survivor=survivor, other=other, find=find, form=form,
                           problems=problems), status


def _parse_uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        abort(400)
