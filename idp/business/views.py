"""The account console's "my businesses": who represents the businesses I represent, granting
and revoking authorizations (legal representatives), and asking to register a business.

Every page needs a login; every change needs a recent one (REAUTH_MAX_AGE).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice

from idp.accounts.views.common import client_address, login_required, recent_login_required
from idp.business import representation, services
from idp.business.forms import (
    LEGAL_FORM_LABELS,
    SCOPE_LABELS,
    GrantForm,
    RegisterBusinessForm,
    RevokeForm,
)
from idp.business.models import RepresentationRole
from idp.clients import services as client_services
from idp.errors import DomainError, InvalidFields
from idp.identity import services as identity_services
from idp.identity.models import IdentifierType
from idp.timeutil import utcnow

bp = Blueprint("business", __name__)


def _local_day_start(day: date) -> datetime:
    """The start of a day in the provider's time zone, as naive UTC."""
    zone = ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Ho_Chi_Minh"))
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _clients_for_business():
    """The relying parties that may ask for business context (allowed the business scope)."""
    return [c for c in client_services.list_clients() if c.active and "business" in (c.scopes or [])]


def _grant_form(formdata) -> GrantForm:
    form = GrantForm(formdata=formdata)
    form.client_ids.choices = [SelectChoice(c.client_id, c.name) for c in _clients_for_business()]
    return form


def _page(*, grant_forms=None, status=200):
    person = g.identity
    now = utcnow()
    rows = []
    for rep in representation.open_of_person(person.id):
        business, profile = services.get_business(rep.business_id) or (rep.business, None)
        legal = rep.role == RepresentationRole.LEGAL_REPRESENTATIVE and representation.usable(rep, now=now)
        others = []
        if legal:
            others = [(other, representation.state(other, now=now))
                      for other in representation.open_of_business(business.id)
                      if other.representative_id != person.id]
        rows.append({
            "rep": rep, "business": business, "profile": profile,
            "tax_code": services.tax_code_of(business),
            "state": representation.state(rep, now=now),
            "legal": legal, "others": others,
            "grant_form": (grant_forms or {}).get(str(business.id)) or (_grant_form(formdata=None) if legal else None),
        })
    clients = {c.client_id: c.name for c in client_services.list_clients()}
    return render_template(
        "business/businesses.html", rows=rows, revoke_form=RevokeForm(formdata=None),
        requests=services.requests_of(person.id), clients=clients, scope_labels=SCOPE_LABELS,
        legal_form_labels=LEGAL_FORM_LABELS, can_register=person.assurance_level >= 2,
    ), status


@bp.get("/account/businesses")
@login_required
def businesses():
    return _page()


@bp.post("/account/businesses/<uuid:business_id>/grant")
@recent_login_required
def grant(business_id: uuid.UUID):
    person = g.identity
    now = utcnow()
    if not representation.is_legal_representative(person.id, business_id, now=now):
        abort(403)
    form = _grant_form(formdata=request.form)
    if form.validate_on_submit():
        number = "".join(ch for ch in form.personal_number.data if ch.isdigit())
        grantee = identity_services.identity_by_identifier(IdentifierType.PERSONAL_NUMBER, number)
        valid_from = _local_day_start(form.valid_from.data) if form.valid_from.data else now
        valid_to = (_local_day_start(form.valid_to.data + timedelta(days=1))
                    if form.valid_to.data else None)
        if grantee is None:
            form.personal_number.errors = [_l("No account has this personal number: the person "
                                              "must register first.")]
        else:
            try:
                representation.grant(
                    business_id=business_id, representative_id=grantee.id, now=now,
                    by=str(person.id), client_ids=form.client_ids.data or None,
                    scopes=form.scopes.data or None, valid_from=valid_from, valid_to=valid_to,
                    address=client_address())
            except InvalidFields as exc:
                _form_errors(form, exc.errors)
            except DomainError as exc:
                _form_errors(form, {exc.field or "personal_number": exc.message})
            else:
                flash(_l("%(name)s may now act for the business within the limits you set.",
                         name=grantee.full_name), "success")
                return redirect(url_for("business.businesses"))
    return _page(grant_forms={str(business_id): form}, status=400)


def _form_errors(form, errors: dict) -> None:
    for name, message in errors.items():
        target = getattr(form, name, None) if name in form else form.personal_number
        target.errors = [*list(target.errors or []), message]


@bp.post("/account/businesses/representations/<int:representation_id>/revoke")
@recent_login_required
def revoke(representation_id: int):
    person = g.identity
    form = RevokeForm()
    if not form.validate_on_submit():
        abort(400)
    rep = representation.get(representation_id)
    if rep is None:
        abort(404)
    try:
        representation.revoke(representation_id, now=utcnow(), by=str(person.id),
                              reason=form.reason.data or None, address=client_address())
    except DomainError:
        abort(403)
    flash(_l("The authorization was revoked: the systems where it was used have been told."), "success")
    return redirect(url_for("business.businesses"))


@bp.route("/account/businesses/register", methods=["GET", "POST"])
@login_required
def register():
    person = g.identity
    if person.assurance_level < 2:
        return render_template("business/register.html", form=None, allowed=False), 403
    form = RegisterBusinessForm()
    if form.validate_on_submit():
        try:
            services.request_registration(
                requester_id=person.id, tax_code=form.tax_code.data, name=form.name.data,
                legal_form=form.legal_form.data, address=form.address.data, now=utcnow(),
                remote_addr=client_address())
        except InvalidFields as exc:
            for name, message in exc.errors.items():
                field = getattr(form, name, None) if name in form else form.tax_code
                field.errors = [*list(field.errors or []), message]
        except DomainError as exc:
            field = getattr(form, exc.field, None) if exc.field in form else form.tax_code
            field.errors = [*list(field.errors or []), exc.message]
        else:
            flash(_l("Your request was sent. An officer will check it against the business "
                     "registry and decide."), "success")
            return redirect(url_for("business.businesses"))
    return render_template("business/register.html", form=form, allowed=True), (
        400 if request.method == "POST" else 200)
