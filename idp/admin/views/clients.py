"""Relying parties: register, edit, rotate the secret, disable and enable, recent usage."""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l

from idp import audit
from idp.admin import services
from idp.admin.decorators import READ_CLIENTS, WRITE_CLIENTS, require_role
from idp.admin.forms import ClientForm, ClientStatusForm, ConfirmForm
from idp.admin.views import Page, address, bp, officer_id, page_arg
from idp.clients import services as client_services
from idp.clients.models import Client
from idp.errors import DomainError, InvalidFields
from idp.extensions import db
from idp.timeutil import utcnow

PER_PAGE = 25
USAGE_DAYS = 30


def _get(client_id: str) -> Client:
    client = client_services.get_client(client_id)
    if client is None:
        abort(404)
    return client


def _record(action: str, client_id: str, **details) -> None:
    audit.record(action, actor=officer_id(), target_type="client", target_id=client_id,
                 address=address(), details=details or None, now=utcnow())
    db.session.commit()


def _errors(form, exc: DomainError) -> None:
    errors = exc.errors if isinstance(exc, InvalidFields) else {exc.field: exc.message}
    for name, message in errors.items():
        field = getattr(form, name or "", None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, message]
        else:
            form.form_errors.append(message)


def _secret_page(client: Client, secret: str, *, new: bool):
    """The only time the secret is shown; never cached."""
    g.no_store = True
    return render_template("admin/client_secret.html", client=client, secret=secret, new=new)


@bp.get("/clients")
@require_role(*READ_CLIENTS)
def clients():
    everything = client_services.list_clients()
    number = page_arg()
    page = Page(number, PER_PAGE, len(everything))
    rows = everything[(number - 1) * PER_PAGE:number * PER_PAGE]
    usage = services.client_usage(since=services.days_back(utcnow(), USAGE_DAYS))
    return render_template("admin/clients.html", rows=rows, page=page, usage=usage, days=USAGE_DAYS)


@bp.route("/clients/new", methods=["GET", "POST"])
@require_role(*WRITE_CLIENTS)
def client_new():
    form = ClientForm()
    if not form.is_submitted():
        form.grant_types.data = ["authorization_code", "refresh_token"]
        form.scopes.data = ["openid", "profile"]
    status = 200
    if form.validate_on_submit():
        values = form.values()
        try:
            client, secret = client_services.create_client(config=current_app.config, now=utcnow(), **values)
        except DomainError as exc:
            db.session.rollback()
            _errors(form, exc)
            status = exc.status
        else:
            _record("client.created", client.client_id, name=client.name,
                    redirect_uris=list(client.redirect_uris))
            if secret:
                return _secret_page(client, secret, new=True)
            flash(_l("The relying party is registered."), "success")
            return redirect(url_for("admin.client", client_id=client.client_id))
    elif form.is_submitted():
        status = 400
    return render_template("admin/client_form.html", form=form, client=None), status


@bp.get("/clients/<client_id>")
@require_role(*READ_CLIENTS)
def client(client_id):
    return _client_page(_get(client_id))


def _client_page(record: Client, *, status_form=None, status: int = 200):
    since = services.days_back(utcnow(), USAGE_DAYS)
    usage = services.client_usage(since=since).get(record.client_id, {"tokens": 0, "logins": 0})
    per_day = services.logins_per_day(since=since, days=USAGE_DAYS).get(record.client_id, [0] * USAGE_DAYS)
    entries, total = audit.search(target_type="client", target_id=record.client_id, page=page_arg(), per_page=20)
    _, recent_total = audit.search(target_type="client", target_id=record.client_id, since=since, per_page=1)
    return render_template(
        "admin/client.html", client=record, usage=usage, per_day=per_day, days=USAGE_DAYS,
        entries=entries, page=Page(page_arg(), 20, total), recent_total=recent_total,
        status_form=status_form or ClientStatusForm(formdata=None), confirm=ConfirmForm(formdata=None),
        uses_secret=client_services.uses_secret(record),
    ), status


@bp.route("/clients/<client_id>/edit", methods=["GET", "POST"])
@require_role(*WRITE_CLIENTS)
def client_edit(client_id):
    record = _get(client_id)
    form = ClientForm()
    status = 200
    if not form.is_submitted():
        form.fill(record)
    elif form.validate_on_submit():
        values = form.values()
        before = {name: getattr(record, name) for name in values}
        try:
            client_services.update_client(record, now=utcnow(), **values)
        except DomainError as exc:
            db.session.rollback()
            _errors(form, exc)
            status = exc.status
        else:
            changed = sorted(name for name in values if getattr(record, name) != before[name])
            _record("client.updated", record.client_id, fields=changed)
            flash(_l("The registration is saved."), "success")
            return redirect(url_for("admin.client", client_id=record.client_id))
    else:
        status = 400
    return render_template("admin/client_form.html", form=form, client=record), status


@bp.post("/clients/<client_id>/rotate")
@require_role(*WRITE_CLIENTS)
def client_rotate(client_id):
    record = _get(client_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        secret = client_services.rotate_secret(record, config=current_app.config, now=utcnow())
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("admin.client", client_id=record.client_id))
    _record("client.secret_rotated", record.client_id)
    return _secret_page(record, secret, new=False)


@bp.post("/clients/<client_id>/disable")
@require_role(*WRITE_CLIENTS)
def client_disable(client_id):
    record = _get(client_id)
    form = ClientStatusForm()
    if not form.validate_on_submit() or not (form.reason.data or "").strip():
        if not form.reason.errors:
            form.reason.errors = [_l("Give the reason for disabling this relying party.")]
        return _client_page(record, status_form=form, status=400)
    client_services.disable_client(record, now=utcnow())
    _record("client.disabled", record.client_id, reason=" ".join(form.reason.data.split()))
    flash(_l("The relying party is disabled: it can no longer log anyone in or use its tokens."), "success")
    return redirect(url_for("admin.client", client_id=record.client_id))


@bp.post("/clients/<client_id>/enable")
@require_role(*WRITE_CLIENTS)
def client_enable(client_id):
    record = _get(client_id)
    form = ClientStatusForm()
    if not form.validate_on_submit():
        abort(400)
    client_services.enable_client(record, now=utcnow())
    reason = " ".join((form.reason.data or "").split())
    _record("client.enabled", record.client_id, **({"reason": reason} if reason else {}))
    flash(_l("The relying party is enabled again."), "success")
    return redirect(url_for("admin.client", client_id=record.client_id))
