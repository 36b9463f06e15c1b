"""Rules of legacy systems and accounts: registration, lookup, password check, linking, report.

Services take plain values (`now`, ids) and never read the request: the CLI, the login flow
and the admin console share them. Writes are flushed, not committed: the caller commits.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from idp.errors import Conflict, InvalidFields, ValidationError
from idp.extensions import db
from idp.legacy import hashes, importer, linking
from idp.legacy.models import (
    LINKED_STATES,
    ExportEncoding,
    LegacyAccount,
    LegacyImportRun,
    LegacySystem,
    LinkState,
)

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_TEXT_LENGTH = 200

# Re-exported so callers need one module.
import_file = importer.import_file
load_mapping = importer.load_mapping
ImportFailed = importer.ImportFailed


# --- systems ------------------------------------------------------------------------------------


def _system_fields(
    *, name, agency, hash_scheme, salt_position, encoding, client_id, errors: dict
) -> dict:
    values = {}
    for field_name, value in (("name", name), ("agency", agency)):
        text = unicodedata.normalize("NFC", (value or "").strip())
        if not text:
            errors[field_name] = _l("This field is required.")
        elif len(text) > MAX_TEXT_LENGTH:
            errors[field_name] = _l("At most %(n)d characters.", n=MAX_TEXT_LENGTH)
        values[field_name] = text
    if hash_scheme not in hashes.SCHEMES:
        errors["hash_scheme"] = _l(
            "Unknown hash scheme; one of: %(s)s.", s=", ".join(hashes.SCHEMES)
        )
    elif hashes.SCHEMES[hash_scheme].needs_salt_position and salt_position not in hashes.SALT_POSITIONS:
        errors["salt_position"] = _l("This scheme needs the salt position: before or after.")
    if salt_position is not None and salt_position not in hashes.SALT_POSITIONS:
        errors["salt_position"] = _l("The salt position is before or after.")
    if encoding not in {e.value for e in ExportEncoding}:
        errors["encoding"] = _l("The encoding is utf-8 or cp1258.")
    values.update(
        hash_scheme=hash_scheme,
        salt_position=salt_position,
        encoding=encoding,
        client_id=client_id or None,
    )
    return values


def create_system(
    *,
    slug: str,
    name: str,
    agency: str,
    hash_scheme: str,
    salt_position: str | None = None,
    encoding: str = ExportEncoding.UTF8.value,
    client_id: str | None = None,
    now: datetime,
) -> LegacySystem:
    """Register a legacy system (flushed). Raises InvalidFields or Conflict (slug taken)."""
    errors: dict = {}
    if not _SLUG.match(slug or ""):
        errors["slug"] = _l(
            "The slug has 1 to 64 lower-case letters, digits, hyphens or underscores."
        )
    values = _system_fields(
        name=name, agency=agency, hash_scheme=hash_scheme, salt_position=salt_position,
        encoding=encoding, client_id=client_id, errors=errors,
    )
    if errors:
        raise InvalidFields(errors)
    if get_system(slug) is not None:
        raise Conflict(_l("A legacy system with this slug exists."), field="slug")
    system = LegacySystem(slug=slug, created_at=now, updated_at=now, **values)
    db.session.add(system)
    db.session.flush()
    return system


def update_system(system: LegacySystem, *, now: datetime, **changes) -> LegacySystem:
    """Change a system's name, agency, hash scheme, salt position, encoding or client."""
    current = {
        "name": system.name,
        "agency": system.agency,
        "hash_scheme": system.hash_scheme,
        "salt_position": system.salt_position,
        "encoding": str(system.encoding),
        "client_id": system.client_id,
    }
    unknown = set(changes) - set(current)
    if unknown:
        raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")
    current.update(changes)
    errors: dict = {}
    values = _system_fields(**current, errors=errors)
    if errors:
        raise InvalidFields(errors)
    for key, value in values.items():
        setattr(system, key, value)
    system.updated_at = now
    db.session.flush()
    return system


def get_system(slug: str) -> LegacySystem | None:
    return db.session.scalar(select(LegacySystem).where(LegacySystem.slug == slug))


def list_systems() -> list[LegacySystem]:
    return list(db.session.scalars(select(LegacySystem).order_by(LegacySystem.slug)))


def require_system(slug: str) -> LegacySystem:
    system = get_system(slug)
    if system is None:
        raise ValidationError(_l("No legacy system %(s)s.", s=slug), field="system")
    return system


# --- accounts -----------------------------------------------------------------------------------


def find_legacy_account(system_slug: str, username: str) -> LegacyAccount | None:
    """The account a person names by its old username, or None.

    Case-insensitive (NFC, casefold). When a case-sensitive legacy system had two usernames
    that differ only in case, the exact one is chosen; otherwise None (never a guess).
    """
    text = unicodedata.normalize("NFC", (username or "").strip())
    if not text:
        return None
    system = get_system(system_slug)
    if system is None:
        return None
    candidates = list(
        db.session.scalars(
            select(LegacyAccount)
            .where(
                LegacyAccount.system_id == system.id,
                LegacyAccount.username_key == text.casefold(),
            )
            .limit(10)
        )
    )
    if len(candidates) == 1:
        return candidates[0]
    exact = [a for a in candidates if a.username == text]
    return exact[0] if len(exact) == 1 else None


def get_account(account_id: int) -> LegacyAccount | None:
    return db.session.get(LegacyAccount, account_id)


def verify_legacy_password(account: LegacyAccount, password: str) -> bool:
    """True when password is the account's old password (by its scheme, salt and layout).

    Does not upgrade anything: on success the caller links the account (`link`, state
    claimed) and sets an argon2id password on the identity.
    """
    if account is None or not account.password_hash:
        return False
    system = account.system
    scheme = account.hash_scheme or system.hash_scheme
    return hashes.verify(
        scheme,
        account.password_hash,
        password,
        salt=account.salt,
        salt_position=system.salt_position,
    )


def link(
    account: LegacyAccount,
    identity_id,
    *,
    by: str,
    now: datetime,
    state: str = LinkState.CLAIMED.value,
    reason: str | None = None,
    force: bool = False,
) -> LegacyAccount:
    """Set an account's link state (flushed; the caller commits).

    - claimed / auto_linked: linked to identity_id. Refused (Conflict) when the account is
      already linked to another identity, unless force (an officer's decision).
    - conflict: identity_id is the candidate an officer should look at; reason says why.
    - rejected: an officer decided the account is not identity_id's (kept as candidate);
      reason, if given, replaces the conflict reason.
    - unlinked: back to the queue.
    by: "auto", "claim", or the acting officer's id, as the caller records it.
    """
    state = LinkState(state)
    identity_id = _uuid(identity_id)
    if state in LINKED_STATES:
        if identity_id is None:
            raise ValidationError(_l("A linked account needs an identity."), field="identity_id")
        if account.is_linked and account.identity_id != identity_id and not force:
            raise Conflict(
                _l("This old account is already linked to another identity."), field="account"
            )
        account.identity_id = identity_id
        account.candidate_identity_id = None
        account.conflict_reason = None
        account.linked_by = by
        account.linked_at = now
    else:
        account.identity_id = None
        account.candidate_identity_id = identity_id
        if state == LinkState.CONFLICT:
            account.conflict_reason = reason
        elif state == LinkState.REJECTED:
            # The officer's reason, else the conflict that led to the decision.
            account.conflict_reason = reason or account.conflict_reason
        else:
            account.conflict_reason = None
        decided = state == LinkState.REJECTED
        account.linked_by = by if decided else None
        account.linked_at = now if decided else None
    account.link_state = state
    account.updated_at = now
    db.session.flush()
    return account


def _uuid(value):
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


MAX_PER_PAGE = 100


def conflict_queue(*, page: int = 1, per_page: int = 25) -> tuple[list[LegacyAccount], int]:
    """Accounts waiting for an officer (state conflict), oldest first; (page, total)."""
    page, per_page = max(1, int(page)), max(1, min(int(per_page), MAX_PER_PAGE))
    waiting = LegacyAccount.link_state == LinkState.CONFLICT.value
    total = db.session.scalar(select(func.count()).select_from(LegacyAccount).where(waiting))
    rows = db.session.scalars(
        select(LegacyAccount)
        .where(waiting)
        .order_by(LegacyAccount.updated_at, LegacyAccount.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), total


def pending_conflicts_for(identity_id) -> list[LegacyAccount]:
    """Conflicts whose candidate is this identity (for its page in the console)."""
    return list(
        db.session.scalars(
            select(LegacyAccount)
            .where(
                LegacyAccount.candidate_identity_id == _uuid(identity_id),
                LegacyAccount.link_state == LinkState.CONFLICT.value,
            )
            .order_by(LegacyAccount.id)
        )
    )


def linked_accounts(identity_id, *, client_id: str | None = None) -> list[dict]:
    """The legacy accounts linked to an identity: [{system, client_id, legacy_user_id}].

    With client_id, only those of the system that is that relying party (what a token for it
    may say).
    """
    stmt = (
        select(LegacySystem.slug, LegacySystem.client_id, LegacyAccount.legacy_user_id)
        .join(LegacySystem, LegacySystem.id == LegacyAccount.system_id)
        .where(
            LegacyAccount.identity_id == _uuid(identity_id),
            LegacyAccount.link_state.in_([s.value for s in LINKED_STATES]),
        )
        .order_by(LegacySystem.slug, LegacyAccount.legacy_user_id)
    )
    if client_id is not None:
        stmt = stmt.where(LegacySystem.client_id == client_id)
    return [
        {"system": slug, "client_id": cid, "legacy_user_id": uid}
        for slug, cid, uid in db.session.execute(stmt)
    ]


def link_accounts(
    *, now: datetime, system_slug: str | None = None, batch_size: int = linking.DEFAULT_BATCH_SIZE
) -> dict[str, linking.LinkResult]:
    """Run automatic linking for one system or all; {slug: LinkResult}."""
    systems = [require_system(system_slug)] if system_slug else list_systems()
    return {
        s.slug: linking.link_system(s, now=now, batch_size=batch_size) for s in systems
    }


# --- report -------------------------------------------------------------------------------------


def report() -> list[dict]:
    """Per system: imported, each link state, and the share mapped ((auto + claimed) / imported).

    Also the totals of the system's last import run (rows read, imported, rejected).
    """
    counts: dict[int, dict[str, int]] = {}
    rows = db.session.execute(
        select(LegacyAccount.system_id, LegacyAccount.link_state, func.count())
        .group_by(LegacyAccount.system_id, LegacyAccount.link_state)
    )
    for system_id, state, count in rows:
        counts.setdefault(system_id, {})[str(state)] = count
    last_runs = _last_runs()
    out = []
    for system in list_systems():
        by_state = counts.get(system.id, {})
        imported = sum(by_state.values())
        mapped = by_state.get("auto_linked", 0) + by_state.get("claimed", 0)
        entry = {
            "system": system.slug,
            "name": system.name,
            "imported": imported,
            **{state.value: by_state.get(state.value, 0) for state in LinkState},
            "mapped_share": round(mapped / imported, 4) if imported else 0.0,
            "last_import": last_runs.get(system.id),
        }
        out.append(entry)
    return out


def _last_runs() -> dict[int, dict]:
    latest = (
        select(LegacyImportRun.system_id, func.max(LegacyImportRun.started_at).label("started"))
        .where(LegacyImportRun.finished_at.is_not(None))
        .group_by(LegacyImportRun.system_id)
        .subquery()
    )
    runs = db.session.scalars(
        select(LegacyImportRun).join(
            latest,
            (LegacyImportRun.system_id == latest.c.system_id)
            & (LegacyImportRun.started_at == latest.c.started),
        )
    )
    return {
        r.system_id: {
            "started_at": r.started_at.isoformat(),
            "file": r.file_name,
            "read": r.rows_read,
            "imported": r.rows_imported,
            "rejected": r.rows_rejected,
            "fields_dropped": r.fields_dropped,
        }
        for r in runs
    }
