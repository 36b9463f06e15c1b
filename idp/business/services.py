"""Rules of business identities: creation by an officer, self-service requests, status.

A business is an `Identity` of kind business keyed by its tax code (`Identifier` of type
tax_code, primary), with a `BusinessProfile`. Services take plain values (`now`, `by`: an audit
actor) and never read the request, so the CLI, the account console and the admin console share
them. Functions that complete an action (create_business, request_registration,
approve_request, reject_request, set_status) record it in the audit log and commit.

The tax code never enters the audit log: a household business's code is a personal number.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp import audit
from idp.business import representation
from idp.business.models import (
    BusinessProfile,
    BusinessRequest,
    BusinessStatus,
    LegalForm,
    RepresentationRole,
    RequestStatus,
)
from idp.errors import Conflict, DomainError, InvalidFields, ValidationError
from idp.extensions import db
from idp.identity import names, validators
from idp.identity.models import (
    Identifier,
    IdentifierType,
    Identity,
    IdentityKind,
    IdentityStatus,
)

# Forms of a dependent unit, whose tax code is the parent's and a 3-digit suffix.
DEPENDENT_FORMS = frozenset(
    {LegalForm.BRANCH, LegalForm.REPRESENTATIVE_OFFICE, LegalForm.BUSINESS_LOCATION}
)
# A 12-digit tax code is a person's number: an individual or a household business.
PERSONAL_CODE_FORMS = frozenset({LegalForm.HOUSEHOLD, LegalForm.OTHER})
# The fields whose verification is recorded.
VERIFIED_FIELDS = ("tax_code", "name", "legal_form", "address", "business_status")
MAX_NAME_LENGTH = 200
MAX_ADDRESS_LENGTH = 500
_SOURCE = re.compile(r"^[a-z][a-z0-9_.:-]{0,39}$")
_LAYOUT = frozenset("\t\n\r\v\f")


# --- field rules ---------------------------------------------------------------------------


def _text(value, *, field: str, maximum: int, missing, too_long) -> str:
    """NFC, single spaces, no control characters; raises ValidationError naming field."""
    text = unicodedata.normalize("NFC", value if isinstance(value, str) else "")
    if any(unicodedata.category(c) == "Cc" and c not in _LAYOUT for c in text):
        raise ValidationError(_l("The text contains control characters."), field=field)
    text = " ".join(text.split())
    if not text:
        raise ValidationError(missing, field=field)
    if len(text) > maximum:
        raise ValidationError(too_long, field=field)
    return text


def business_name(value) -> str:
    """A business's registered name ("CÔNG TY TNHH 3C"): digits and punctuation allowed."""
    return _text(value, field="name", maximum=MAX_NAME_LENGTH,
                 missing=_l("Enter the business's name."),
                 too_long=_l("The business's name must have at most 200 characters."))


def business_address(value) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _text(value, field="address", maximum=MAX_ADDRESS_LENGTH,
                 missing=_l("Enter the address."),
                 too_long=_l("The address must have at most 500 characters."))


def legal_form(value) -> LegalForm:
    try:
        return LegalForm(str(value or "").strip().lower())
    except ValueError:
        raise ValidationError(_l("Choose the legal form of the business."), field="legal_form") from None


def business_status(value) -> BusinessStatus:
    try:
        return BusinessStatus(str(value or "").strip().lower())
    except ValueError:
        raise ValidationError(
            _l("The status must be active, suspended or dissolved."), field="business_status"
        ) from None


def _form_matches_code(code: str, form: LegalForm) -> None:
    digits = code.replace("-", "")
    if len(digits) == 13 and form not in DEPENDENT_FORMS:
        raise ValidationError(
            _l("A 13-digit tax code belongs to a branch, a representative office or a business "
               "location: choose one of these legal forms."),
            field="legal_form",
        )
    if len(digits) != 13 and form in DEPENDENT_FORMS:
        raise ValidationError(
            _l("A branch, a representative office or a business location has a 13-digit tax "
               "code: its parent's 10 digits, a dash and 3 digits."),
            field="tax_code",
        )
    if len(digits) == 12 and form not in PERSONAL_CODE_FORMS:
        raise ValidationError(
            _l("A 12-digit tax code is a personal number: it is used by household businesses."),
            field="legal_form",
        )


def _collect(errors: dict, field: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValidationError as exc:
        errors.setdefault(exc.field or field, exc.message)
        return None


def validate_fields(*, tax_code, name, legal_form_value, address=None, status="active",
                    now: datetime) -> dict:
    """Every field checked at once; raises InvalidFields naming each bad one.

    Returns the canonical values, and the parent identity for a dependent unit.
    """
    errors: dict = {}
    code = _collect(errors, "tax_code", validators.tax_code, tax_code or "", today=now.date())
    clean_name = _collect(errors, "name", business_name, name)
    form = _collect(errors, "legal_form", legal_form, legal_form_value)
    clean_address = _collect(errors, "address", business_address, address)
    clean_status = _collect(errors, "business_status", business_status, status)
    if code and form:
        _collect(errors, "tax_code", _form_matches_code, code, form)
    parent = None
    if code and "tax_code" not in errors:
        parent_code = validators.tax_code_parent(code)
        if parent_code is not None:
            parent = business_by_tax_code(parent_code)
            if parent is None:
                errors["tax_code"] = _l(
                    "The parent business %(parent)s of this branch is not registered: register "
                    "it first.", parent=parent_code)
    if errors:
        raise InvalidFields(errors)
    return {"tax_code": code, "name": clean_name, "legal_form": form,
            "address": clean_address, "business_status": clean_status, "parent": parent}


def _verification(source: str, *, now: datetime, by: str, fields=VERIFIED_FIELDS) -> dict:
    if not _SOURCE.match(source or ""):
        raise ValueError(f"bad verification source {source!r}")
    at = now.replace(microsecond=0).isoformat()
    return {f: {"source": source, "at": at, "by": by} for f in fields}


# --- lookups -------------------------------------------------------------------------------


def business_by_tax_code(code: str) -> Identity | None:
    """The business identity whose current tax code is code (canonical form), or None."""
    return db.session.scalar(
        select(Identity)
        .join(Identifier, Identifier.identity_id == Identity.id)
        .where(
            Identifier.type == IdentifierType.TAX_CODE,
            Identifier.value == code,
            Identifier.valid_to.is_(None),
            Identity.kind == IdentityKind.BUSINESS,
        )
    )


def get_business(business_id) -> tuple[Identity, BusinessProfile] | None:
    """(identity, profile) of a business, or None."""
    try:
        business_id = uuid.UUID(str(business_id))
    except ValueError:
        return None
    identity = db.session.get(Identity, business_id)
    if identity is None or identity.kind != IdentityKind.BUSINESS:
        return None
    profile = db.session.get(BusinessProfile, business_id)
    return (identity, profile) if profile is not None else None


def tax_code_of(identity: Identity) -> str | None:
    primary = identity.primary_identifier
    return primary.value if primary is not None else None


# --- creation ------------------------------------------------------------------------------


def build_business(values: dict, *, now: datetime, by: str, source: str) -> Identity:
    """Add the identity, its tax code and its profile (flushed, not committed)."""
    if business_by_tax_code(values["tax_code"]) is not None:
        raise Conflict(_l("A business with this tax code is already registered."), field="tax_code")
    identity = Identity(
        kind=IdentityKind.BUSINESS,
        full_name=values["name"],
        name_search=names.search_key(values["name"]),
        status=IdentityStatus.ACTIVE,
        # Organizations have no level of assurance; the column keeps its lowest value.
        assurance_level=1,
        created_at=now,
        updated_at=now,
    )
    identity.identifiers.append(
        Identifier(type=IdentifierType.TAX_CODE, value=values["tax_code"], is_primary=True,
                   valid_from=now)
    )
    db.session.add(identity)
    db.session.flush()
    parent = values.get("parent")
    fields = [f for f in VERIFIED_FIELDS if f != "address" or values.get("address")]
    db.session.add(BusinessProfile(
        identity_id=identity.id,
        legal_form=values["legal_form"],
        address=values.get("address"),
        business_status=values.get("business_status") or BusinessStatus.ACTIVE,
        parent_identity_id=parent.id if parent is not None else None,
        verification=_verification(source, now=now, by=by, fields=fields),
        created_at=now,
        updated_at=now,
    ))
    db.session.flush()
    return identity


def _created_entry(identity: Identity, values: dict, *, by: str, source: str, now, address=None):
    parent = values.get("parent")
    audit.record("business.created", actor=by, target_type="business", target_id=identity.id,
                 address=address, now=now,
                 details={"legal_form": str(values["legal_form"]), "source": source,
                          "branch_of": str(parent.id) if parent is not None else None})


def create_business(
    *,
    tax_code: str,
    name: str,
    legal_form: str,
    address: str | None = None,
    status: str = "active",
    legal_representative_id=None,
    now: datetime,
    by: str,
    source: str = "officer",
    reason: str | None = None,
) -> Identity:
    """An officer registers a business (committed); optionally its legal representative.

    Raises InvalidFields naming every bad field (an invalid tax code, a `-000` branch, a branch
    whose parent is not registered), Conflict when the tax code is taken, DomainError when the
    legal representative cannot be one (not a verified, level-2 citizen).
    """
    values = validate_fields(tax_code=tax_code, name=name, legal_form_value=legal_form,
                             address=address, status=status, now=now)
    try:
        identity = build_business(values, now=now, by=by, source=source)
        if legal_representative_id is not None:
            representation.add(
                business=identity, representative_id=legal_representative_id,
                role=RepresentationRole.LEGAL_REPRESENTATIVE, now=now, by=by,
                reason=reason or "registered with the business",
            )
        _created_entry(identity, values, by=by, source=source, now=now)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(_l("A business with this tax code is already registered."),
                       field="tax_code") from None
    except DomainError:
        db.session.rollback()
        raise
    return identity


def set_status(business_id, status: str, *, now: datetime, by: str, reason: str,
               address: str | None = None) -> BusinessProfile:
    """An officer records a change of status (committed). A suspended or dissolved business
    cannot be acted for: the tokens its representatives hold for it are revoked and the
    relying parties told, while the representations stay (a suspension can end)."""
    found = get_business(business_id)
    if found is None:
        raise DomainError(_l("This business does not exist."), field="business")
    identity, profile = found
    new = business_status(status)
    if not (reason or "").strip():
        raise ValidationError(_l("Give the reason for the change."), field="reason")
    old = profile.business_status
    profile.business_status = new
    profile.updated_at = now
    profile.verification = {**(profile.verification or {}),
                            **_verification("officer", now=now, by=by, fields=("business_status",))}
    after_commit = []
    if new != BusinessStatus.ACTIVE and old == BusinessStatus.ACTIVE:
        for rep in representation.open_of_business(identity.id):
            after_commit += representation.end_use(rep, now=now, reason=f"business_{new.value}")
    audit.record("business.status_changed", actor=by, target_type="business", target_id=identity.id,
                 address=address, now=now,
                 details={"from": old.value, "to": new.value, "reason": reason.strip()[:300]})
    db.session.commit()
    representation.run(after_commit)
    return profile


# --- self-service registration -------------------------------------------------------------


def request_registration(*, requester_id, tax_code: str, name: str, legal_form: str,
                         address: str | None = None, now: datetime,
                         remote_addr: str | None = None) -> BusinessRequest:
    """A legal representative asks to register their business (committed); an officer decides.

    The requester must be a verified (level 2) citizen: organization accounts are registered by
    their legal representative with a level-2 account (Decree 69/2024).
    """
    person = db.session.get(Identity, uuid.UUID(str(requester_id)))
    representation.check_can_be_legal_representative(person)
    values = validate_fields(tax_code=tax_code, name=name, legal_form_value=legal_form,
                             address=address, now=now)
    if business_by_tax_code(values["tax_code"]) is not None:
        raise ValidationError(
            _l("This business is already registered. Ask its legal representative to authorize "
               "you, or visit a one-stop office."), field="tax_code")
    pending = db.session.scalar(select(BusinessRequest.id).where(
        BusinessRequest.requester_id == person.id, BusinessRequest.tax_code == values["tax_code"],
        BusinessRequest.status == RequestStatus.PENDING))
    if pending is not None:
        raise Conflict(_l("You have already asked to register this business; an officer will "
                          "decide soon."), field="tax_code")
    item = BusinessRequest(
        requester_id=person.id, tax_code=values["tax_code"], name=values["name"],
        legal_form=values["legal_form"], address=values["address"],
        status=RequestStatus.PENDING, created_at=now,
    )
    db.session.add(item)
    db.session.flush()
    audit.record("business.requested", actor=person.id, target_type="business_request",
                 target_id=item.id, address=remote_addr, now=now,
                 details={"legal_form": str(values["legal_form"])})
    db.session.commit()
    return item


def pending_requests() -> list[BusinessRequest]:
    """Requests waiting for an officer, oldest first (for the admin console)."""
    return list(db.session.scalars(
        select(BusinessRequest).where(BusinessRequest.status == RequestStatus.PENDING)
        .order_by(BusinessRequest.created_at, BusinessRequest.id)))


def requests_of(person_id) -> list[BusinessRequest]:
    return list(db.session.scalars(
        select(BusinessRequest).where(BusinessRequest.requester_id == person_id)
        .order_by(BusinessRequest.created_at.desc())))


def get_request(request_id) -> BusinessRequest | None:
    try:
        return db.session.get(BusinessRequest, int(request_id))
    except (TypeError, ValueError):
        return None


def _pending(request_id) -> BusinessRequest:
    item = get_request(request_id)
    if item is None:
        raise DomainError(_l("This registration request does not exist."), field="request")
    if item.status != RequestStatus.PENDING:
        raise DomainError(_l("This registration request was already decided."), field="request")
    return item


def approve_request(request_id, *, now: datetime, by: str, reason: str | None = None,
                    address: str | None = None) -> Identity:
    """An officer approves a request (committed): the business is created, verified by the
    officer, and the requester becomes its legal representative."""
    item = _pending(request_id)
    values = validate_fields(tax_code=item.tax_code, name=item.name,
                             legal_form_value=item.legal_form, address=item.address, now=now)
    try:
        identity = build_business(values, now=now, by=by, source="request")
        representation.add(
            business=identity, representative_id=item.requester_id,
            role=RepresentationRole.LEGAL_REPRESENTATIVE, now=now, by=by,
            reason=reason or f"registration request {item.id} approved",
        )
        item.status = RequestStatus.APPROVED
        item.decided_at = now
        item.decided_by = by
        item.decision_reason = (reason or "").strip()[:300] or None
        item.business_identity_id = identity.id
        _created_entry(identity, values, by=by, source="request", now=now, address=address)
        audit.record("business.request.approved", actor=by, target_type="business_request",
                     target_id=item.id, address=address, now=now,
                     details={"business": str(identity.id)})
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(_l("A business with this tax code is already registered."),
                       field="tax_code") from None
    except DomainError:
        db.session.rollback()
        raise
    return identity


def reject_request(request_id, *, now: datetime, by: str, reason: str,
                   address: str | None = None) -> BusinessRequest:
    """An officer refuses a request (committed); the reason is shown to the requester."""
    item = _pending(request_id)
    if not (reason or "").strip():
        raise ValidationError(_l("Give the reason for the refusal."), field="reason")
    item.status = RequestStatus.REJECTED
    item.decided_at = now
    item.decided_by = by
    item.decision_reason = reason.strip()[:300]
    audit.record("business.request.rejected", actor=by, target_type="business_request",
                 target_id=item.id, address=address, now=now,
                 details={"reason": item.decision_reason})
    db.session.commit()
    return item
