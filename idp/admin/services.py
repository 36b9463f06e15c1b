"""Rules of the admin console: identity search, officers' actions on identities, merges,
legacy conflicts, usage figures.

Services take plain values (ids, the officer's id, the remote address, `now`) and never read
flask.request. Each action writes its audit entry in the same transaction and commits; work on
the shared store comes after the commit (on SQLite the embedded store is another connection).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, exists, func, literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, selectinload

from idp import audit
from idp.accounts import factors
from idp.accounts import sessions as sso
from idp.accounts.models import (
    PasswordCredential,
    RecoveryCode,
    TotpCredential,
)
from idp.admin.models import EVIDENCE_TYPES, IdentityMerge, IdentityVerification
from idp.business import representation as business_representation
from idp.clients.models import Client
from idp.crypto import SecretBox
from idp.errors import Conflict, ValidationError
from idp.extensions import db
from idp.identity import names, validators
from idp.identity.models import (
    Identifier,
    IdentifierType,
    Identity,
    IdentityKind,
    IdentityStatus,
)
from idp.identity.services import resolve
from idp.legacy import services as legacy_services
from idp.legacy.models import LegacyAccount, LegacySystem, LinkState
from idp.oidc.models import RefreshToken
from idp.store import Store

# A name search counts its matches up to this many; the page then says "more than".
COUNT_CAP = 1000
MAX_PER_PAGE = 100
REASON_MAX = 500

# --- identity search -------------------------------------------------------------------------


@dataclass
class SearchResult:
    kind: str  # "number", "phone", "email", "name" or "" (nothing to search)
    items: list[Identity]
    total: int
    capped: bool  # total is a lower bound (more than COUNT_CAP matches)


_NUMBER = re.compile(r"^[0-9]{9,13}$")
_BRANCH = re.compile(r"^([0-9]{10})-?([0-9]{3})$")
# Characters LIKE would treat as wildcards or escapes; never in a search key of a valid name.
_LIKE_SPECIAL = str.maketrans("", "", "%_\\")


def _number_candidates(text: str) -> list[str]:
    """The stored forms a typed identifier may have (12-digit number, CMND, tax code)."""
    compact = re.sub(r"[\s.]", "", text)
    values = set()
    branch = _BRANCH.match(compact)
    if branch:
        values.add(f"{branch.group(1)}-{branch.group(2)}")
    digits = compact.replace("-", "")
    if _NUMBER.match(digits):
        values.add(digits)
    return sorted(values)


def _phone(text: str) -> str | None:
    try:
        return validators.phone(text)
    except ValidationError:
        return None


def _paged(stmt, page: int, per_page: int):
    # The result page shows each identity's number: one query for all of them.
    return stmt.options(selectinload(Identity.identifiers)).limit(per_page).offset((page - 1) * per_page)


def search_identities(query: str, *, page: int = 1, per_page: int = 25) -> SearchResult:
    """Find identities by personal number, tax code or any identifier (exact, history too),
    phone (normalized), e-mail (lower-case) or name (accent-insensitive prefix)."""
    text = (query or "").strip()[:200]
    page, per_page = max(1, int(page)), max(1, min(int(per_page), MAX_PER_PAGE))
    if not text:
        return SearchResult("", [], 0, False)
    numbers = _number_candidates(text)
    if "@" in text:
        try:
            address = validators.email(text)
        except ValidationError:
            address = text.lower()
        return _exact("email", Identity.email == address, page, per_page)
    if numbers or text.startswith("+"):
        # Digits: an identifier value, or a phone number written without its +84.
        phone = _phone(text)
        ids = set()
        if numbers:
            ids.update(db.session.scalars(
                select(Identifier.identity_id).where(Identifier.value.in_(numbers)).limit(MAX_PER_PAGE)
            ))
        if phone:
            ids.update(db.session.scalars(select(Identity.id).where(Identity.phone == phone)))
        kind = "number" if numbers else "phone"
        return _exact(kind, Identity.id.in_(ids), page, per_page) if ids else SearchResult(kind, [], 0, False)
    key = names.search_key(text).translate(_LIKE_SPECIAL).strip()
    if not key:
        return SearchResult("name", [], 0, False)
    return _by_name(key, page, per_page)


def _exact(kind: str, condition, page: int, per_page: int) -> SearchResult:
    total = db.session.scalar(select(func.count()).select_from(Identity).where(condition))
    items = db.session.scalars(
        _paged(select(Identity).where(condition).order_by(Identity.name_search, Identity.id), page, per_page)
    ).all()
    return SearchResult(kind, list(items), total, False)


def _by_name(key: str, page: int, per_page: int) -> SearchResult:
    if db.session.get_bind().dialect.name == "postgresql":
        # LIKE 'key%' and ORDER BY ... USING ~<~ both use the text_pattern_ops index
        # (ix_identities_name_search_prefix): the page comes off the index in order.
        condition = Identity.name_search.like(key + "%")
        order = [literal_column("identities.name_search USING ~<~"), Identity.id]
    else:
        # SQLite: a range on the BINARY-collated index is exactly the prefix.
        upper = key[:-1] + chr(ord(key[-1]) + 1)
        condition = (Identity.name_search >= key) & (Identity.name_search < upper)
        order = [Identity.name_search, Identity.id]
    # Pages go as far as the count does (OFFSET is not free): beyond, a longer prefix helps.
    page = min(page, max(1, -(-COUNT_CAP // per_page)))
    limited = select(Identity.id).where(condition).limit(COUNT_CAP + 1).subquery()
    total = db.session.scalar(select(func.count()).select_from(limited))
    items = db.session.scalars(_paged(select(Identity).where(condition).order_by(*order), page, per_page)).all()
    return SearchResult("name", list(items), min(total, COUNT_CAP), total > COUNT_CAP)


# --- helpers of the actions ------------------------------------------------------------------


def _reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if not text:
        raise ValidationError(_l("Give the reason for this action."), field="reason")
    if len(text) > REASON_MAX:
        raise ValidationError(_l("The reason must have at most 500 characters."), field="reason")
    return text


def _identity(identity_id, *, lock: bool = False) -> Identity:
    identity = db.session.get(Identity, _uuid(identity_id), with_for_update=lock or None)
    if identity is None:
        raise ValidationError(_l("This identity does not exist."), field="identity")
    return identity


def _uuid(value) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(_l("This identity does not exist."), field="identity") from None


def _not_self(identity: Identity, officer_id) -> None:
    # Separation of duties: an officer never acts on their own identity.
    if identity.id == _uuid(officer_id):
        raise ValidationError(_l("You cannot do this to your own identity; ask another officer."),
                              field="identity")


def _not_merged(identity: Identity) -> None:
    if identity.status == IdentityStatus.MERGED:
        raise ValidationError(_l("This identity was merged into another one; act on that one."),
                              field="identity")


def _record(action: str, *, officer_id, identity_id, address, now, **details) -> None:
    audit.record(action, actor=_uuid(officer_id), target_type="identity", target_id=identity_id,
                 address=address, details=details or None, now=now)


# --- lock, unlock, sessions, factors ---------------------------------------------------------


def lock_identity(store: Store, identity_id, *, officer_id, reason: str, address: str | None,
                  now: datetime) -> int:
    """Lock the identity (no login, no tokens) and end all its sessions; returns how many."""
    reason = _reason(reason)
    identity = _identity(identity_id, lock=True)
    _not_self(identity, officer_id)
    _not_merged(identity)
    if identity.status == IdentityStatus.LOCKED:
        raise ValidationError(_l("This identity is already locked."), field="identity")
    identity.status = IdentityStatus.LOCKED
    identity.updated_at = now
    _record("admin.identity.locked", officer_id=officer_id, identity_id=identity.id,
            address=address, now=now, reason=reason)
    db.session.commit()
    return end_sessions(store, identity.id, officer_id=officer_id, reason=reason, address=address,
                        now=now)


def unlock_identity(identity_id, *, officer_id, reason: str, address: str | None,
                    now: datetime) -> None:
    reason = _reason(reason)
    identity = _identity(identity_id, lock=True)
    _not_self(identity, officer_id)
    if identity.status != IdentityStatus.LOCKED:
        raise ValidationError(_l("This identity is not locked."), field="identity")
    identity.status = IdentityStatus.ACTIVE
    identity.updated_at = now
    _record("admin.identity.unlocked", officer_id=officer_id, identity_id=identity.id,
            address=address, now=now, reason=reason)
    db.session.commit()


def end_sessions(store: Store, identity_id, *, officer_id, reason: str, address: str | None,
                 now: datetime) -> int:
    """End every SSO session of the identity (single logout follows); returns how many."""
    reason = _reason(reason)
    identity = _identity(identity_id)
    db.session.commit()  # nothing open while the store writes
    count = sso.end_all_sessions(store, str(identity.id), reason="admin")
    _record("admin.sessions.ended", officer_id=officer_id, identity_id=identity.id,
            address=address, now=now, count=count, reason=reason)
    db.session.commit()
    return count


def reset_second_factors(identity_id, *, officer_id, reason: str, address: str | None,
                         now: datetime) -> bool:
    """Remove the authenticator app and recovery codes (the person enrols again)."""
    reason = _reason(reason)
    identity = _identity(identity_id)
    _not_self(identity, officer_id)
    had = factors.totp_credential(identity.id) is not None
    factors.remove_totp(identity.id)  # commits
    _record("factor.totp_removed", officer_id=officer_id, identity_id=identity.id,
            address=address, now=now, by="officer", had_app=had, reason=reason)
    db.session.commit()
    return had


# --- in-person verification ------------------------------------------------------------------


def record_verification(identity_id, *, officer_id, evidence_type: str, document_number: str,
                        reason: str, address: str | None, now: datetime) -> IdentityVerification:
    """An officer saw the person and the document: the identity becomes level 2."""
    reason = _reason(reason)
    identity = _identity(identity_id, lock=True)
    _not_self(identity, officer_id)
    _not_merged(identity)
    if identity.kind != IdentityKind.CITIZEN:
        raise ValidationError(_l("Only a citizen's identity is verified in person."), field="identity")
    if evidence_type not in EVIDENCE_TYPES:
        raise ValidationError(_l("Choose the document shown."), field="evidence_type")
    number = _document_number(identity, evidence_type, document_number, now)
    row = IdentityVerification(identity_id=identity.id, level=2, evidence_type=evidence_type,
                               document_number=number, officer_id=_uuid(officer_id),
                               verified_at=now, note=reason)
    db.session.add(row)
    previous = identity.assurance_level
    identity.assurance_level = 2
    identity.updated_at = now
    db.session.flush()
    _record("admin.identity.verified", officer_id=officer_id, identity_id=identity.id,
            address=address, now=now, fields=["assurance_level"], change="in_person_verification",
            level_before=previous, level=2, evidence_type=evidence_type, verification=row.id,
            reason=reason)
    db.session.commit()
    return row


def _document_number(identity: Identity, evidence_type: str, value: str, now: datetime) -> str:
    field = "document_number"
    try:
        if evidence_type in ("chip_citizen_id", "citizen_id"):
            number = validators.personal_number(value or "", birth_date=identity.birth_date,
                                                gender=identity.gender, today=now.date())
            current = identity.primary_identifier
            if current is not None and current.type == IdentifierType.PERSONAL_NUMBER \
                    and current.value != number:
                raise ValidationError(
                    _l("The card's number differs from the personal number on record. "
                       "Correct the personal number first if the card is right."), field=field)
            return number
        if evidence_type == "identity_card":
            return validators.legacy_id_number(value or "")
        return validators.passport_number(value or "")
    except ValidationError as exc:
        raise ValidationError(exc.message, field=field) from None


# --- personal number correction --------------------------------------------------------------


def correct_personal_number(identity_id, new_number: str, *, officer_id, reason: str,
                            address: str | None, now: datetime) -> Identifier:
    """Close the current personal number (kept as history) and make new_number current."""
    reason = _reason(reason)
    identity = _identity(identity_id, lock=True)
    _not_self(identity, officer_id)
    _not_merged(identity)
    if identity.kind != IdentityKind.CITIZEN:
        raise ValidationError(_l("Only a citizen has a personal number."), field="personal_number")
    number = validators.personal_number(new_number or "", birth_date=identity.birth_date,
                                        gender=identity.gender, today=now.date())
    current = [i for i in identity.current_identifiers if i.type == IdentifierType.PERSONAL_NUMBER]
    if any(i.value == number for i in current):
        raise ValidationError(_l("This is already the identity's personal number."),
                              field="personal_number")
    taken = db.session.scalar(
        select(Identifier.identity_id).where(
            Identifier.type == IdentifierType.PERSONAL_NUMBER, Identifier.value == number,
            Identifier.valid_to.is_(None))
    )
    if taken is not None:
        raise Conflict(_l("Another identity holds this personal number. If they are the same "
                          "person, merge the two identities."), field="personal_number")
    primary = identity.primary_identifier
    was_primary = not current or primary is None or primary in current
    for row in current:
        row.valid_to = now
        row.change_reason = ("corrected: " + reason)[:200]
    db.session.flush()  # frees the one-current-primary index before the new row
    new = Identifier(identity_id=identity.id, type=IdentifierType.PERSONAL_NUMBER, value=number,
                     is_primary=was_primary, valid_from=now)
    db.session.add(new)
    identity.updated_at = now
    db.session.flush()
    _record("admin.identifier.corrected", officer_id=officer_id, identity_id=identity.id,
            address=address, now=now, fields=["personal_number"], change="correction",
            reason=reason)
    db.session.commit()
    return new


# --- merge -----------------------------------------------------------------------------------

# Rows that are history of the merged identity and stay with it.
_KEEP_WITH_TOMBSTONE = {("identifiers", "identity_id"), ("identity_merges", "survivor_id"),
                        ("identity_merges", "merged_id"), ("identity_merges", "officer_id"),
                        ("identities", "id")}
# Handled one by one before the sweep: secrets bound to the identity, or a choice to record.
_EXPLICIT = {("password_credentials", "identity_id"), ("totp_credentials", "identity_id"),
             ("recovery_codes", "identity_id")}


def _identity_references() -> list[tuple]:
    """Every (table, column) whose foreign key names identities.id, from the metadata."""
    out = []
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            for fk in column.foreign_keys:
                if fk.target_fullname == "identities.id":
                    out.append((table, column))
    return out


def _snapshot(identity: Identity) -> dict:
    return {
        "id": str(identity.id), "kind": str(identity.kind), "full_name": identity.full_name,
        "birth_date": identity.birth_date.isoformat() if identity.birth_date else None,
        "gender": str(identity.gender) if identity.gender else None,
        "phone": identity.phone, "email": identity.email, "status": str(identity.status),
        "assurance_level": identity.assurance_level,
        "created_at": identity.created_at.isoformat(),
        "identifiers": [
            {"type": str(i.type), "value": i.value, "primary": i.is_primary,
             "valid_from": i.valid_from.isoformat(),
             "valid_to": i.valid_to.isoformat() if i.valid_to else None,
             "change_reason": i.change_reason}
            for i in identity.identifiers
        ],
    }


def merge_preview(survivor_id, merged_id) -> list[str]:
    """Why these two cannot be merged (empty when they can); no change is made."""
    problems = []
    survivor, merged = db.session.get(Identity, _uuid(survivor_id)), db.session.get(Identity, _uuid(merged_id))
    if survivor is None or merged is None:
        return [str(_l("This identity does not exist."))]
    if survivor.id == merged.id:
        problems.append(str(_l("An identity cannot be merged with itself.")))
    if IdentityStatus.MERGED in (survivor.status, merged.status):
        problems.append(str(_l("One of the identities was already merged into another one.")))
    if survivor.kind != merged.kind:
        problems.append(str(_l("A citizen and a business cannot be merged.")))
    return problems


def merge_identities(survivor_id, merged_id, *, officer_id, reason: str, config,
                     address: str | None, now: datetime) -> IdentityMerge:
    """Make merged_id a tombstone of survivor_id; everything it held moves to the survivor.

    Credentials: the survivor's are kept when both have one (a TOTP secret is re-sealed for
    the survivor, recovery codes of the duplicate are dropped: their digests name it). Legacy
    links, consents, refresh tokens, pairwise subjects, role grants, account events and every
    other row referring to it move; its identifiers are closed ("merged into <id>") and copied
    to the survivor as history. Tokens and `sub` values issued for it resolve to the survivor
    (idp.identity.services.resolve). Its SSO sessions are left to expire: ending them would
    revoke the refresh tokens that now belong to the survivor.
    """
    reason = _reason(reason)
    problems = merge_preview(survivor_id, merged_id)
    if problems:
        raise ValidationError(problems[0], field="identity")
    # Lock both rows in a fixed order (two officers merging crosswise cannot deadlock).
    first, second = sorted([_uuid(survivor_id), _uuid(merged_id)])
    _identity(first, lock=True)
    _identity(second, lock=True)
    survivor, merged = _identity(survivor_id), _identity(merged_id)
    _not_self(survivor, officer_id)
    _not_self(merged, officer_id)
    snapshot = {"survivor": _snapshot(survivor), "merged": _snapshot(merged), "moved": {},
                "kept": {}}
    moved, kept = snapshot["moved"], snapshot["kept"]
    s_id, m_id = survivor.id, merged.id

    # Credentials (Core statements: the ORM would rekey objects in its identity map).
    pwd = PasswordCredential.__table__
    has_own = db.session.scalar(select(pwd.c.identity_id).where(pwd.c.identity_id == s_id))
    if has_own is None and db.session.scalar(select(pwd.c.identity_id).where(pwd.c.identity_id == m_id)):
        db.session.execute(update(pwd).where(pwd.c.identity_id == m_id).values(identity_id=s_id))
        kept["password"] = "merged"
    else:
        db.session.execute(delete(pwd).where(pwd.c.identity_id == m_id))
        kept["password"] = "survivor" if has_own is not None else "none"
    kept["totp"] = _merge_totp(s_id, m_id, config)
    codes = RecoveryCode.__table__
    db.session.execute(delete(codes).where(codes.c.identity_id == m_id))

    # Contacts are unique: the survivor takes those it lacks, the tombstone keeps none.
    for contact in ("phone", "email"):
        value, verified = getattr(merged, contact), getattr(merged, contact + "_verified_at")
        setattr(merged, contact, None)
        setattr(merged, contact + "_verified_at", None)
        if value and not getattr(survivor, contact):
            db.session.flush()
            setattr(survivor, contact, value)
            setattr(survivor, contact + "_verified_at", verified)
            kept[contact] = "merged"
    db.session.flush()

    # Identifiers: closed on the tombstone (frees the unique index), copied as history.
    for row in list(merged.identifiers):
        if row.valid_to is None:
            row.valid_to = now
            row.change_reason = f"merged into {s_id}"
    db.session.flush()
    for row in list(merged.identifiers):
        db.session.add(Identifier(identity_id=s_id, type=row.type, value=row.value,
                                  is_primary=row.is_primary, valid_from=row.valid_from,
                                  valid_to=row.valid_to, change_reason=f"merged from {m_id}"))

    db.session.flush()
    # Everything else that names the duplicate: consents, refresh tokens, pairwise subjects,
    # account events, legacy accounts, upstream links, verifications, earlier merges into it.
    for table, column in _identity_references():
        key = (table.name, column.name)
        if key in _KEEP_WITH_TOMBSTONE or key in _EXPLICIT:
            continue
        if column.primary_key:
            # The survivor's row wins where both have one (a role, a known device, ...).
            dropped = _drop_overlap(table, column, s_id, m_id)
            if dropped:
                kept[f"{table.name}.{column.name}"] = "survivor"
        stmt = update(table).where(column == m_id).values({column.name: s_id})
        if key == ("identities", "merged_into_id"):
            stmt = stmt.where(table.c.id != m_id)
        try:
            count = db.session.execute(stmt).rowcount
        except IntegrityError:
            db.session.rollback()
            raise Conflict(_l("Both identities hold records of the same kind that cannot be "
                              "combined (%(what)s); end one of them, then merge.", what=table.name),
                           field="identity") from None
        if count:
            moved[f"{table.name}.{column.name}"] = count

    survivor.assurance_level = max(survivor.assurance_level, merged.assurance_level)
    survivor.updated_at = now
    merged.status = IdentityStatus.MERGED
    merged.merged_into_id = s_id
    merged.updated_at = now
    record = IdentityMerge(survivor_id=s_id, merged_id=m_id, officer_id=_uuid(officer_id),
                           reason=reason, at=now, snapshot=snapshot)
    db.session.add(record)
    db.session.flush()
    db.session.expire_all()  # Core statements above changed rows the session may hold
    _record("admin.identity.merged", officer_id=officer_id, identity_id=s_id, address=address,
            now=now, merged=str(m_id), merge=record.id, reason=reason,
            moved=sorted([name, count] for name, count in moved.items()))
    _record("admin.identity.updated", officer_id=officer_id, identity_id=m_id, address=address,
            now=now, fields=["status", "merged_into_id"], change="merged", merged_into=str(s_id),
            merge=record.id, reason=reason)
    db.session.commit()
    return record


def _drop_overlap(table, column, s_id, m_id) -> int:
    """Delete the duplicate's rows whose primary key would collide once moved."""
    others = [c for c in table.primary_key.columns if c is not column]
    theirs = table.alias("theirs")
    match = [theirs.c[column.name] == s_id] + [theirs.c[c.name] == c for c in others]
    return db.session.execute(delete(table).where(column == m_id, exists().where(*match))).rowcount


def _merge_totp(s_id, m_id, config) -> str:
    """Keep the survivor's authenticator; else re-seal the duplicate's for the survivor."""
    table = TotpCredential.__table__
    rows = {r.identity_id: r for r in db.session.execute(
        select(table).where(table.c.identity_id.in_([s_id, m_id])))}
    mine, theirs = rows.get(s_id), rows.get(m_id)
    db.session.execute(delete(table).where(table.c.identity_id == m_id))
    if theirs is None or theirs.confirmed_at is None:
        return "survivor" if mine is not None else "none"
    if mine is not None and mine.confirmed_at is not None:
        return "survivor"
    box = SecretBox(config["KEY_ENCRYPTION_KEY"])
    # The sealed secret is bound to its identity (factors._context): open and seal again.
    secret = box.decrypt(theirs.secret_encrypted, context=f"totp:{m_id}")
    db.session.execute(delete(table).where(table.c.identity_id == s_id))
    db.session.execute(table.insert().values(
        identity_id=s_id, secret_encrypted=box.encrypt(secret, context=f"totp:{s_id}"),
        created_at=theirs.created_at, confirmed_at=theirs.confirmed_at, failed_count=0))
    return "merged"


def merges_of(identity_id) -> list[IdentityMerge]:
    ident = _uuid(identity_id)
    return list(db.session.scalars(
        select(IdentityMerge).where((IdentityMerge.survivor_id == ident) | (IdentityMerge.merged_id == ident))
        .order_by(IdentityMerge.at.desc())
    ))


def verifications_of(identity_id) -> list[IdentityVerification]:
    return list(db.session.scalars(
        select(IdentityVerification).where(IdentityVerification.identity_id == _uuid(identity_id))
        .order_by(IdentityVerification.verified_at.desc())
    ))


def upstream_evidence(identity_id) -> list[dict]:
    """Level-2 evidence from an upstream e-ID (federation's table, read by name only: the
    console may not import idp.federation)."""
    table = db.metadata.tables.get("upstream_links")
    if table is None or "verified_level" not in table.c:
        return []
    rows = db.session.execute(
        select(table.c.provider_slug, table.c.verified_level, table.c.verified_acr, table.c.verified_at)
        .where(table.c.identity_id == _uuid(identity_id), table.c.verified_level.is_not(None))
    )
    return [dict(r._mapping) for r in rows]


def representations(identity: Identity, *, now: datetime) -> list[dict]:
    """The businesses a citizen represents, or the people who represent a business (open
    representations, from idp.business)."""
    if identity.kind == IdentityKind.BUSINESS:
        rows, other = business_representation.open_of_business(identity.id), "representative"
    else:
        rows, other = business_representation.open_of_person(identity.id), "business"
    return [{"other": getattr(r, other), "role": str(r.role), "valid_from": r.valid_from,
             "valid_to": r.valid_to, "client_ids": r.client_ids, "scopes": r.scopes,
             "current": business_representation.is_current(r, now=now)} for r in rows]


def factor_summary(identity_id) -> dict:
    """Which factors exist (never a secret or a hash)."""
    ident = _uuid(identity_id)
    password = db.session.get(PasswordCredential, ident)
    totp = db.session.get(TotpCredential, ident)
    return {
        "password": password is not None,
        "password_locked": bool(password and password.locked_at),
        "totp": bool(totp and totp.confirmed_at),
        "recovery_codes": factors.remaining_recovery_codes(ident),
    }


# --- legacy conflicts ------------------------------------------------------------------------


def legacy_differences(account: LegacyAccount, identity: Identity | None) -> list[dict]:
    """Field by field: the legacy value, the identity's, and whether they differ."""
    if identity is None:
        return []
    current = {i.type: i.value for i in identity.current_identifiers}
    rows = [
        ("full_name", _l("Full name"), account.full_name, identity.full_name,
         (account.full_name or "") != identity.full_name),
        ("birth_date", _l("Date of birth"), account.birth_date, identity.birth_date,
         account.birth_date is not None and account.birth_date != identity.birth_date),
        ("personal_number", _l("Personal number"), account.personal_number,
         current.get(IdentifierType.PERSONAL_NUMBER),
         bool(account.personal_number) and account.personal_number != current.get(IdentifierType.PERSONAL_NUMBER)),
        ("id_number", _l("Old ID card number (CMND)"), account.id_number,
         current.get(IdentifierType.LEGACY_ID_NUMBER),
         bool(account.id_number and current.get(IdentifierType.LEGACY_ID_NUMBER))
         and account.id_number != current.get(IdentifierType.LEGACY_ID_NUMBER)),
        ("gender", _l("Gender"), account.gender, str(identity.gender) if identity.gender else None,
         bool(account.gender) and account.gender != (str(identity.gender) if identity.gender else None)),
        ("phone", _l("Phone number"), account.phone, identity.phone,
         bool(account.phone and identity.phone) and account.phone != identity.phone),
        ("email", _l("E-mail"), account.email, identity.email,
         bool(account.email and identity.email) and account.email.lower() != identity.email),
    ]
    out = []
    for key, label, legacy, mine, differs in rows:
        # Same letters, other accents or case: shown apart from a real difference.
        accents_only = (key == "full_name" and differs and legacy is not None
                        and names.search_key(legacy) == identity.name_search)
        out.append({"field": key, "label": label, "legacy": legacy, "identity": mine,
                    "differs": differs, "accents_only": accents_only})
    return out


def decide_conflict(account_id: int, decision: str, *, officer_id, reason: str,
                    address: str | None, now: datetime) -> LegacyAccount:
    """An officer links a conflicting legacy account to its candidate identity, or rejects it."""
    reason = _reason(reason)
    account = legacy_services.get_account(int(account_id))
    if account is None or account.link_state != LinkState.CONFLICT:
        raise ValidationError(_l("This old account is no longer waiting for a decision."), field="account")
    candidate = resolve(account.candidate_identity_id)
    if candidate is None:
        raise ValidationError(_l("The candidate identity no longer exists."), field="account")
    details = {"system": account.system.slug, "legacy_id": account.legacy_user_id,
               "decision": decision, "reason": reason}
    if decision == "link":
        if candidate.status != IdentityStatus.ACTIVE and candidate.status != IdentityStatus.LOCKED:
            raise ValidationError(_l("The candidate identity cannot be linked."), field="account")
        legacy_services.link(account, candidate.id, by=str(officer_id), now=now,
                             state=LinkState.CLAIMED.value, force=True)
        action = "legacy.linked"
    elif decision == "reject":
        legacy_services.link(account, candidate.id, by=str(officer_id), now=now,
                             state=LinkState.REJECTED.value, reason=reason)
        action = "legacy.rejected"
    else:
        raise ValidationError(_l("Choose to link or to reject."), field="decision")
    audit.record(action, actor=_uuid(officer_id), target_type="identity", target_id=candidate.id,
                 address=address, details=details, now=now)
    db.session.commit()
    return account


# --- relying parties and the dashboard -------------------------------------------------------


def client_usage(*, since: datetime) -> dict[str, dict]:
    """Per client since `since`: refresh tokens issued, and sign-ins (new token families)."""
    first = aliased(RefreshToken)
    issued = dict(db.session.execute(
        select(RefreshToken.client_id, func.count()).where(RefreshToken.issued_at >= since)
        .group_by(RefreshToken.client_id)).all())
    started = dict(db.session.execute(
        select(RefreshToken.client_id, func.count()).where(
            RefreshToken.issued_at >= since,
            ~exists().where(first.family_id == RefreshToken.family_id, first.id < RefreshToken.id))
        .group_by(RefreshToken.client_id)).all())
    return {cid: {"tokens": issued.get(cid, 0), "logins": started.get(cid, 0)}
            for cid in set(issued) | set(started)}


def logins_per_day(*, since: datetime, days: int) -> dict[str, list[int]]:
    """Sign-ins per relying party per day (a new refresh-token family is a code redemption),
    `days` values from since's day on."""
    first = aliased(RefreshToken)
    day = func.date(RefreshToken.issued_at)
    rows = db.session.execute(
        select(RefreshToken.client_id, day, func.count()).where(
            RefreshToken.issued_at >= since,
            ~exists().where(first.family_id == RefreshToken.family_id, first.id < RefreshToken.id))
        .group_by(RefreshToken.client_id, day)).all()
    start = since.date()
    out: dict[str, list[int]] = {}
    for client_id, when, count in rows:
        when = when if isinstance(when, date) else date.fromisoformat(str(when)[:10])
        index = (when - start).days
        if 0 <= index < days:
            out.setdefault(client_id, [0] * days)[index] += count
    return out


def client_names() -> dict[str, str]:
    return dict(db.session.execute(select(Client.client_id, Client.name)).all())


def identity_counts() -> dict:
    """Identities (not merged) by kind and assurance level, and the share of citizens verified."""
    rows = db.session.execute(
        select(Identity.kind, Identity.assurance_level, func.count())
        .where(Identity.status != IdentityStatus.MERGED)
        .group_by(Identity.kind, Identity.assurance_level)).all()
    counts = {(str(kind), int(level)): n for kind, level, n in rows}
    citizens = sum(n for (kind, _), n in counts.items() if kind == IdentityKind.CITIZEN)
    verified = counts.get((IdentityKind.CITIZEN.value, 2), 0)
    return {"by_kind_level": counts, "citizens": citizens, "verified": verified,
            "verified_share": verified / citizens if citizens else 0.0,
            "total": sum(counts.values())}


def legacy_progress() -> list[dict]:
    """idp.legacy.services.report(), for the dashboard and the JSON API."""
    return legacy_services.report()


def legacy_system_names() -> dict[str, str]:
    return dict(db.session.execute(select(LegacySystem.slug, LegacySystem.name)).all())


def days_back(now: datetime, days: int) -> datetime:
    """Midnight (UTC) `days - 1` days before now: a window of `days` whole days with today."""
    return datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time())
