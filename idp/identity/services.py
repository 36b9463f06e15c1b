"""Rules of the unified identity: creation, lookup by login identifier."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.errors import Conflict, InvalidFields, ValidationError
from idp.extensions import db
from idp.identity import names, validators
from idp.identity.models import (
    Identifier,
    IdentifierType,
    Identity,
    IdentityKind,
    IdentityStatus,
)

_DIGITS = re.compile(r"^[0-9]{12}$")


def _collect(errors: dict, field: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValidationError as exc:
        errors.setdefault(exc.field or field, exc.message)
        return None


def create_citizen(
    *,
    personal_number: str,
    full_name: str,
    birth_date: date | None,
    gender: str | None,
    phone: str | None = None,
    email: str | None = None,
    now: datetime,
    assurance_level: int = 1,
) -> Identity:
    """Validate every field, then add a citizen identity (flushed, not committed).

    Raises InvalidFields naming every bad field, or Conflict when an identifier is taken.
    """
    today = now.date()
    errors: dict = {}
    if birth_date is None:
        errors["birth_date"] = _l("Enter your date of birth.")
    else:
        _collect(errors, "birth_date", validators.birth_date, birth_date, today=today)
    gender_value = _collect(errors, "gender", validators.gender, gender or "")
    number = _collect(
        errors,
        "personal_number",
        validators.personal_number,
        personal_number or "",
        birth_date=birth_date if "birth_date" not in errors else None,
        gender=gender_value,
        today=today,
    )
    name = _collect(errors, "full_name", names.normalize_name, full_name or "")
    phone_value = _collect(errors, "phone", validators.phone, phone) if phone else None
    email_value = _collect(errors, "email", validators.email, email) if email else None
    if errors:
        raise InvalidFields(errors)

    _ensure_free(IdentifierType.PERSONAL_NUMBER, number, phone_value, email_value)
    identity = Identity(
        kind=IdentityKind.CITIZEN,
        full_name=name,
        name_search=names.search_key(name),
        birth_date=birth_date,
        gender=gender_value,
        phone=phone_value,
        email=email_value,
        status=IdentityStatus.ACTIVE,
        assurance_level=assurance_level,
        created_at=now,
        updated_at=now,
    )
    identity.identifiers.append(
        Identifier(
            type=IdentifierType.PERSONAL_NUMBER, value=number, is_primary=True, valid_from=now
        )
    )
    db.session.add(identity)
    try:
        db.session.flush()
    except IntegrityError:
        # A concurrent registration won the race; the database had the last word.
        db.session.rollback()
        raise Conflict(_taken_message("personal_number"), field="personal_number") from None
    return identity


def _taken_message(field: str):
    # The same wording whatever is taken, so the page is no oracle for who is registered.
    return _l(
        "This %(what)s cannot be used to register. If it is yours, log in or recover your "
        "account, or ask a one-stop office for help.",
        what=_FIELD_NAMES[field],
    )


_FIELD_NAMES = {
    "personal_number": _l("personal number"),
    "phone": _l("phone number"),
    "email": _l("e-mail address"),
}


def _ensure_free(id_type, number, phone, email) -> None:
    errors = {}
    if identity_by_identifier(id_type, number) is not None:
        errors["personal_number"] = _taken_message("personal_number")
    if phone and db.session.scalar(select(Identity.id).where(Identity.phone == phone)):
        errors["phone"] = _taken_message("phone")
    if email and db.session.scalar(select(Identity.id).where(Identity.email == email)):
        errors["email"] = _taken_message("email")
    if errors:
        raise InvalidFields(errors)


def identity_by_identifier(id_type: IdentifierType, value: str) -> Identity | None:
    return db.session.scalar(
        select(Identity)
        .join(Identifier)
        .where(Identifier.type == id_type, Identifier.value == value, Identifier.valid_to.is_(None))
    )


def normalize_login(login: str) -> tuple[str, str]:
    """Classify what a person typed to log in: ('personal_number'|'email'|'phone'|'unknown', value)."""
    text = (login or "").strip()
    compact = re.sub(r"[\s.\-]", "", text)
    if _DIGITS.match(compact):
        return "personal_number", compact
    if "@" in text:
        return "email", text.lower()
    try:
        return "phone", validators.phone(text)
    except ValidationError:
        return "unknown", text.lower()


def find_for_login(login: str) -> Identity | None:
    """The identity a login identifier names, or None (never says why)."""
    kind, value = normalize_login(login)
    if kind == "personal_number":
        return identity_by_identifier(IdentifierType.PERSONAL_NUMBER, value)
    if kind == "email":
        return db.session.scalar(select(Identity).where(Identity.email == value))
    if kind == "phone":
        return db.session.scalar(select(Identity).where(Identity.phone == value))
    return None


def get_identity(identity_id) -> Identity | None:
    return db.session.get(Identity, identity_id)


def personal_values(identity: Identity) -> list[str]:
    """Values a password must not contain: identifiers, phone, name."""
    values = [i.value for i in identity.identifiers]
    if identity.phone:
        values.append(identity.phone)
    values.append(identity.full_name)
    return values


# Longer chains than this are a data fault (merges flatten them), never followed forever.
MAX_MERGE_CHAIN = 16


def resolve(identity_id) -> Identity | None:
    """The identity an id names, following merges (merged_into_id) to the survivor.

    None when the id is unknown or the chain is broken. Tokens and `sub` values issued for an
    identity that was merged away resolve to the survivor through this.
    """
    if identity_id is None:
        return None
    if not isinstance(identity_id, uuid.UUID):
        try:
            identity_id = uuid.UUID(str(identity_id))
        except ValueError:
            return None
    identity = db.session.get(Identity, identity_id)
    for _ in range(MAX_MERGE_CHAIN):
        if identity is None or identity.status != IdentityStatus.MERGED:
            return identity
        identity = db.session.get(Identity, identity.merged_into_id)
    return None
