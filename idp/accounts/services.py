"""Registration and password login. Services take plain values and never read the request."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l

from idp.accounts import factors, passwords, throttle
from idp.accounts.models import PasswordCredential, Role, RoleGrant
from idp.errors import DomainError, InvalidFields, ValidationError
from idp.extensions import db
from idp.identity import services as identity_services
from idp.identity.models import Identity, IdentityStatus
from idp.store import Store

ACR_LOW = "urn:eid:loa:low"


class LoginFailed(DomainError):
    code = "login_failed"
    status = 401


class AccountUnavailable(DomainError):
    code = "account_unavailable"
    status = 403


def register_citizen(
    *,
    personal_number: str,
    full_name: str,
    birth_date: date | None,
    gender: str | None,
    phone: str | None,
    email: str | None,
    password: str,
    config,
    now: datetime,
) -> Identity:
    """Create a level-1 citizen identity with a password, or raise naming every bad field."""
    errors: dict = {}
    if not phone and not email:
        errors["phone"] = _l("Enter a phone number or an e-mail address.")
    try:
        identity = identity_services.create_citizen(
            personal_number=personal_number,
            full_name=full_name,
            birth_date=birth_date,
            gender=gender,
            phone=phone,
            email=email,
            now=now,
        )
    except InvalidFields as exc:
        db.session.rollback()
        errors = {**exc.errors, **errors}
        # Check the password too, so the person sees every problem at once.
        _check_password(errors, password, config, [personal_number, phone or "", full_name])
        raise InvalidFields(errors) from None
    _check_password(errors, password, config, identity_services.personal_values(identity))
    if errors:
        db.session.rollback()
        raise InvalidFields(errors)
    db.session.add(
        PasswordCredential(
            identity_id=identity.id,
            hash=passwords.hash_password(password, config),
            created_at=now,
            updated_at=now,
        )
    )
    db.session.commit()
    return identity


def _check_password(errors: dict, password: str, config, personal: list[str]) -> None:
    try:
        passwords.check_password_policy(
            password or "", config=config, has_second_factor=False, personal_values=personal
        )
    except ValidationError as exc:
        errors["password"] = exc.message


def set_password(identity: Identity, password: str, *, config, now: datetime) -> None:
    """Set a new password (policy checked); unlocks the factor."""
    passwords.check_password_policy(
        password,
        config=config,
        has_second_factor=factors.has_totp(identity.id),
        personal_values=identity_services.personal_values(identity),
    )
    cred = db.session.get(PasswordCredential, identity.id)
    if cred is None:
        cred = PasswordCredential(identity_id=identity.id, created_at=now)
        db.session.add(cred)
    cred.hash = passwords.hash_password(password, config)
    cred.updated_at = now
    cred.failed_count = 0
    cred.locked_at = None
    db.session.commit()


def login_key(login: str) -> str:
    kind, value = identity_services.normalize_login(login)
    return f"{kind}:{value}"


class FactorLocked(DomainError):
    code = "factor_locked"
    status = 403


def _locked_error() -> FactorLocked:
    # The same words whether or not the account exists.
    return FactorLocked(
        _l("Too many failed attempts: logging in with this password is blocked. "
           "Reset your password to unblock it, or ask a one-stop office for help."),
        field="login",
    )


def authenticate(store: Store, *, login: str, password: str, address: str, config, now: datetime) -> Identity:
    """Check a password login; throttled per account and per address through the store.

    The same LoginFailed is raised for an unknown account and a wrong password, after the
    same amount of hashing work. LOGIN_LOCK_AFTER consecutive failures lock the password
    (in SQL for a known account; an unknown one answers the same from the store's count).
    """
    key = login_key(login)
    throttle.before_attempt(store, login_key=key, address=address, config=config)
    identity = identity_services.find_for_login(login)
    cred = db.session.get(PasswordCredential, identity.id) if identity is not None else None
    if cred is not None and cred.locked_at is not None:
        passwords.burn_verify(password or "", config)
        raise _locked_error()
    if cred is None and throttle.consecutive_failures(store, login_key=key) >= config["LOGIN_LOCK_AFTER"]:
        passwords.burn_verify(password or "", config)
        raise _locked_error()
    if cred is None:
        passwords.burn_verify(password or "", config)
        ok, new_hash = False, None
    else:
        ok, new_hash = passwords.verify_password(cred.hash, password or "", config)
    if not ok:
        consecutive = throttle.after_failure(store, login_key=key, address=address, config=config)
        if cred is not None:
            cred.failed_count = (cred.failed_count or 0) + 1
            if cred.failed_count >= config["LOGIN_LOCK_AFTER"]:
                cred.locked_at = now
            db.session.commit()
            if cred.locked_at is not None:
                raise _locked_error()
        elif consecutive >= config["LOGIN_LOCK_AFTER"]:
            # The failure that locks a known account answers the same for an unknown one.
            raise _locked_error()
        raise LoginFailed(_l("The login details are incorrect."), field="login")
    throttle.after_success(store, login_key=key)
    if identity.status != IdentityStatus.ACTIVE:
        raise AccountUnavailable(
            _l("This account is locked or disabled. Please contact a one-stop office for help.")
        )
    if new_hash or cred.failed_count:
        # Parameters changed since this hash was made: upgrade it in place. A success resets the count.
        if new_hash:
            cred.hash = new_hash
            cred.updated_at = now
        cred.failed_count = 0
        db.session.commit()
    return identity


def unlock_password(identity_id, *, now: datetime) -> None:
    """After a proven reset: the password factor works again."""
    cred = db.session.get(PasswordCredential, identity_id)
    if cred is not None:
        cred.failed_count = 0
        cred.locked_at = None
        db.session.commit()


def grant_role(identity: Identity, role: Role, *, granted_by: str, now: datetime) -> None:
    if db.session.get(RoleGrant, (identity.id, role)) is None:
        db.session.add(RoleGrant(identity_id=identity.id, role=role, granted_at=now, granted_by=granted_by))
        db.session.commit()


def roles_of(identity_id) -> set[Role]:
    return {g.role for g in db.session.query(RoleGrant).filter_by(identity_id=identity_id)}
