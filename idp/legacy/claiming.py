"""A person proves an old account by its old password and links it to their unified identity.

Two paths: someone without a unified identity logs in with the old account and creates (or
confirms) their identity; someone with an identity claims the old account from the console.
Both are throttled like every login. A successful claim deletes the legacy hash: from then on
only the argon2id password of the identity exists.
"""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l

from idp import audit
from idp.accounts import passwords, throttle
from idp.accounts import services as account_services
from idp.errors import Conflict, DomainError, InvalidFields
from idp.extensions import db
from idp.identity import names, validators
from idp.identity import services as identity_services
from idp.identity.models import IdentifierType, Identity
from idp.legacy import services
from idp.legacy.models import LegacyAccount, LinkState
from idp.store import Store


class LegacyLoginFailed(DomainError):
    code = "login_failed"
    status = 401


class IdentityExists(DomainError):
    """The personal number already has a unified identity: log in with it to claim."""

    code = "identity_exists"
    status = 409


def _login_key(system_slug: str, username: str) -> str:
    return f"legacy:{system_slug}:{(username or '').strip().casefold()}"


def authenticate(store: Store, *, system_slug: str, username: str, password: str, address: str, config) -> LegacyAccount:
    """The legacy account whose old password this is; the same failure for every other case."""
    key = _login_key(system_slug, username)
    throttle.before_attempt(store, login_key=key, address=address, config=config)
    account = services.find_legacy_account(system_slug, username)
    ok = account is not None and account.password_hash and services.verify_legacy_password(account, password or "")
    if account is None or not account.password_hash:
        passwords.burn_verify(password or "", config)  # same cost as a real check
    if not ok:
        throttle.after_failure(store, login_key=key, address=address, config=config)
        raise LegacyLoginFailed(_l("The old account's username or password is incorrect."), field="username")
    throttle.after_success(store, login_key=key)
    return account


def disagreements(account: LegacyAccount, *, personal_number: str | None, full_name: str | None,
                  birth_date: date | None) -> dict:
    """Fields where the unified identity contradicts what the old system holds."""
    problems = {}
    if account.personal_number and personal_number and account.personal_number != personal_number:
        problems["personal_number"] = _l("The old account holds a different personal number.")
    if account.full_name and full_name and names.search_key(account.full_name) != names.search_key(full_name):
        problems["full_name"] = _l("The old account holds a different name.")
    if account.birth_date and birth_date and account.birth_date != birth_date:
        problems["birth_date"] = _l("The old account holds a different date of birth.")
    return problems


def _primary_number(identity: Identity) -> str | None:
    primary = identity.primary_identifier
    return primary.value if primary is not None and primary.type == IdentifierType.PERSONAL_NUMBER else None


def claim(account: LegacyAccount, identity: Identity, *, address: str | None, now: datetime) -> LegacyAccount:
    """Link a proven old account to the person's identity, or queue it for an officer."""
    if account.is_linked:
        if account.identity_id == identity.id:
            return account
        raise Conflict(_l("This old account is already linked to another identity. Please ask a one-stop office."),
                       field="username")
    problems = disagreements(account, personal_number=_primary_number(identity),
                             full_name=identity.full_name, birth_date=identity.birth_date)
    if problems:
        reason = "; ".join(sorted(problems))
        services.link(account, identity.id, by="claim", now=now, state=LinkState.CONFLICT.value,
                      reason=f"claim: {reason} differs")
        db.session.commit()
        raise InvalidFields({**problems, "username": _l(
            "Your details differ from the old account's. An officer will review the link; you will see it here once decided.")})
    services.link(account, identity.id, by="claim", now=now, state=LinkState.CLAIMED.value)
    # Proven once: the old hash (often unsalted MD5 or SHA-1) is never kept after that.
    account.password_hash = None
    account.salt = None
    audit.record("legacy.linked", actor=str(identity.id), target_type="identity", target_id=str(identity.id),
                 address=address, details={"system": account.system.slug, "legacy_id": account.legacy_user_id,
                                           "by": "claim"}, now=now)
    db.session.commit()
    return account


def create_identity(account: LegacyAccount, *, personal_number: str, full_name: str, birth_date: date | None,
                    gender: str | None, phone: str | None, email: str | None, password: str,
                    address: str | None, config, now: datetime) -> Identity:
    """A person with no unified identity: create it from the proven old account, then link."""
    try:
        number = validators.personal_number(personal_number or "", birth_date=birth_date, gender=gender,
                                            today=now.date())
    except DomainError:
        number = personal_number  # register_citizen reports the exact problem
    problems = disagreements(account, personal_number=number, full_name=full_name, birth_date=birth_date)
    if problems:
        raise InvalidFields(problems)
    if identity_services.identity_by_identifier(IdentifierType.PERSONAL_NUMBER, number) is not None:
        raise IdentityExists(_l("A unified account with this personal number exists. Log in with it to link your old account."),
                             field="personal_number")
    identity = account_services.register_citizen(
        personal_number=personal_number, full_name=full_name, birth_date=birth_date, gender=gender,
        phone=phone, email=email, password=password, config=config, now=now,
    )
    claim(account, identity, address=address, now=now)
    return identity
