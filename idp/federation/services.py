"""Rules of the federation upstream: providers as data, and mapping an upstream login onto the
unified identity.

Matching (never by e-mail or phone):
- a known (issuer, sub) logs in as its linked identity;
- otherwise a personal number counts only when the upstream's acr mapping says identity
  level 2 (verified); it links an existing identity when the birth date and the name (compared
  by search key) agree, and goes to the officers' queue when they do not;
- no identity with that number: one is created (level from the acr mapping, no password);
- a number from a level-1 upstream that names an existing identity is never linked: the person
  logs in locally first and links from the account console.
Creating an identity and its link, or a link and the level it raises, is one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.accounts import events
from idp.accounts.models import PasswordCredential
from idp.audit import services as audit
from idp.crypto import SecretBox
from idp.errors import Conflict, DomainError, InvalidFields, ValidationError
from idp.extensions import db
from idp.federation import mapping, upstream
from idp.federation.models import FederationConflict, UpstreamLink, UpstreamProvider
from idp.federation.tokens import ALLOWED_ALGS
from idp.identity import names, validators
from idp.identity import services as identity_services
from idp.identity.models import IdentifierType, Identity, IdentityStatus

# Discovery metadata older than this is fetched again before a login starts.
METADATA_MAX_AGE = 3600
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class FederationRefused(DomainError):
    """The upstream login cannot be used; the message tells the person why."""

    code = "federation_refused"
    status = 403


class ConflictQueued(DomainError):
    """The upstream's verified data disagrees with the identity: queued for an officer."""

    code = "federation_conflict"
    status = 409


class LocalLoginRequired(DomainError):
    """An account with this number exists and nothing verified links it: log in locally first."""

    code = "local_login_required"
    status = 409


@dataclass
class Resolution:
    identity: Identity
    link: UpstreamLink
    created: bool = False
    newly_linked: bool = False
    verified: bool = False


# --- providers -----------------------------------------------------------------------------

def _box(config) -> SecretBox:
    return SecretBox(config["KEY_ENCRYPTION_KEY"])


def _secret_context(slug: str) -> str:
    return f"upstream:{slug}"


def add_provider(*, slug: str, issuer: str, metadata: dict, client_id: str, client_secret: str,
                 scopes: str, claim_mapping: dict, acr_mapping: dict, display_name: str,
                 button_label: str | None = None, position: int = 0, enabled: bool = True,
                 token_auth_method: str = TOKEN_AUTH_METHODS[0], authorize_params: dict | None = None,
                 config, now: datetime) -> UpstreamProvider:
    """Validate and store an upstream provider (its client secret encrypted at rest)."""
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise ValidationError(_l("The slug must be 1 to 40 lower-case letters, digits or hyphens."), field="slug")
    if not display_name or not display_name.strip():
        raise ValidationError(_l("Enter the display name."), field="display_name")
    if not client_id or not client_secret:
        raise ValidationError(_l("Enter the client id and the client secret."), field="client_id")
    if token_auth_method not in TOKEN_AUTH_METHODS:
        raise ValidationError(_l("Unsupported client authentication method."), field="token_auth_method")
    scope_list = scopes.split() if isinstance(scopes, str) else []
    if "openid" not in scope_list:
        raise ValidationError(_l("The scopes must include openid."), field="scopes")
    params = authorize_params or {}
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise ValidationError(_l("Extra authorization parameters must be text values."), field="authorize_params")
    try:
        upstream.check_metadata(metadata, issuer=issuer, allowed_algs=ALLOWED_ALGS)
        claims = mapping.validate_claim_mapping(claim_mapping)
        acrs = mapping.validate_acr_mapping(acr_mapping)
    except upstream.UpstreamError as exc:
        raise ValidationError(str(exc), field="issuer") from None
    except mapping.MappingError as exc:
        raise ValidationError(str(exc), field="mapping") from None
    if get_provider(slug) is not None:
        raise Conflict(_l("An upstream provider with this slug exists."), field="slug")
    if db.session.scalar(select(UpstreamProvider.id).where(UpstreamProvider.issuer == issuer)):
        raise Conflict(_l("An upstream provider with this issuer exists."), field="issuer")
    provider = UpstreamProvider(
        slug=slug,
        display_name=" ".join(display_name.split()),
        button_label=" ".join(button_label.split()) if button_label else None,
        issuer=issuer,
        metadata_json=metadata,
        metadata_fetched_at=now,
        client_id=client_id,
        client_secret_encrypted=_box(config).encrypt(client_secret.encode(), context=_secret_context(slug)),
        token_auth_method=token_auth_method,
        scopes=" ".join(dict.fromkeys(scope_list)),
        authorize_params=params,
        claim_mapping=claims,
        acr_mapping=acrs,
        enabled=enabled,
        position=position,
        created_at=now,
        updated_at=now,
    )
    db.session.add(provider)
    db.session.commit()
    return provider


def client_secret(provider: UpstreamProvider, config) -> str:
    return _box(config).decrypt(provider.client_secret_encrypted, context=_secret_context(provider.slug)).decode()


def get_provider(slug: str) -> UpstreamProvider | None:
    if not isinstance(slug, str) or not _SLUG.match(slug):
        return None
    return db.session.scalar(select(UpstreamProvider).where(UpstreamProvider.slug == slug))


def enabled_provider(slug: str) -> UpstreamProvider | None:
    provider = get_provider(slug)
    return provider if provider is not None and provider.enabled else None


def list_providers() -> list[UpstreamProvider]:
    return list(db.session.scalars(select(UpstreamProvider).order_by(UpstreamProvider.position, UpstreamProvider.id)))


def enabled_providers() -> list[UpstreamProvider]:
    return [p for p in list_providers() if p.enabled]


def set_enabled(provider: UpstreamProvider, enabled: bool, *, now: datetime) -> None:
    provider.enabled = enabled
    provider.updated_at = now
    db.session.commit()


def link_count(provider: UpstreamProvider) -> int:
    return len(list(db.session.scalars(select(UpstreamLink.id).where(UpstreamLink.issuer == provider.issuer))))


def remove_provider(provider: UpstreamProvider) -> None:
    """Remove the configuration; links stay (keyed by issuer) but cannot be used any more."""
    db.session.delete(provider)
    db.session.commit()


def refresh_metadata(provider: UpstreamProvider, *, timeout: float, now: datetime) -> dict:
    meta = upstream.fetch_metadata(provider.issuer, timeout=timeout, allowed_algs=ALLOWED_ALGS)
    provider.metadata_json = meta
    provider.metadata_fetched_at = now
    db.session.commit()
    return meta


def metadata_for(provider: UpstreamProvider, *, timeout: float, now: datetime,
                 max_age: int = METADATA_MAX_AGE) -> dict:
    """The cached metadata, fetched again when stale (raises UpstreamUnavailable/UpstreamError)."""
    if now - provider.metadata_fetched_at > timedelta(seconds=max_age):
        return refresh_metadata(provider, timeout=timeout, now=now)
    return provider.metadata_json


# --- links ---------------------------------------------------------------------------------

def find_link(issuer: str, subject: str) -> UpstreamLink | None:
    return db.session.scalar(select(UpstreamLink).where(UpstreamLink.issuer == issuer, UpstreamLink.subject == subject))


def links_of(identity_id) -> list[UpstreamLink]:
    return list(db.session.scalars(
        select(UpstreamLink).where(UpstreamLink.identity_id == identity_id).order_by(UpstreamLink.linked_at)
    ))


def has_password(identity_id) -> bool:
    return db.session.get(PasswordCredential, identity_id) is not None


def _usable(link: UpstreamLink) -> bool:
    provider = db.session.scalar(select(UpstreamProvider).where(UpstreamProvider.issuer == link.issuer))
    return provider is not None and provider.enabled


def can_unlink(link: UpstreamLink) -> bool:
    """Only while another way to log in remains: a password, or another usable link."""
    if has_password(link.identity_id):
        return True
    return any(other.id != link.id and _usable(other) for other in links_of(link.identity_id))


def unlink(identity_id, link_id: int, *, now: datetime, address: str | None = None) -> str:
    """Remove one of the identity's links; returns the slug of its upstream."""
    link = db.session.get(UpstreamLink, link_id)
    if link is None or link.identity_id != identity_id:
        raise FederationRefused(_l("This linked account does not exist."))
    if not can_unlink(link):
        raise FederationRefused(_l(
            "This is the only way to log in to your account. Set a password or link another "
            "account before you remove it."
        ))
    slug = link.provider_slug
    db.session.delete(link)
    events.record(identity_id, "federation_unlinked", now=now, address=address,
                  detail={"upstream": slug}, commit=False)
    audit.record("federation.unlinked", actor=identity_id, target_type="identity", target_id=identity_id,
                 address=address, details={"provider": slug}, now=now)
    db.session.commit()
    return slug


# --- the officers' queue -------------------------------------------------------------------

def open_conflicts() -> list[FederationConflict]:
    return list(db.session.scalars(
        select(FederationConflict).where(FederationConflict.resolved_at.is_(None)).order_by(FederationConflict.created_at)
    ))


def resolve_conflict(conflict: FederationConflict, *, by: str, resolution: str, now: datetime) -> None:
    conflict.resolved_at, conflict.resolved_by, conflict.resolution = now, by[:200], resolution[:200]
    db.session.commit()


def _queue(provider: UpstreamProvider, person: mapping.UpstreamPerson, *, identity_id, reasons: list[str],
           now: datetime) -> FederationConflict:
    """One open entry per upstream account and reason (a person retrying adds nothing)."""
    reason = ",".join(reasons)[:200]
    existing = db.session.scalar(select(FederationConflict).where(
        FederationConflict.issuer == person.issuer, FederationConflict.subject == person.subject,
        FederationConflict.reason == reason, FederationConflict.resolved_at.is_(None),
    ))
    if existing is not None:
        existing.claims = person.snapshot
        return existing
    row = FederationConflict(
        provider_slug=provider.slug, issuer=person.issuer, subject=person.subject,
        identity_id=identity_id, reason=reason, claims=person.snapshot, created_at=now,
    )
    db.session.add(row)
    return row


# --- an upstream login onto the unified identity ------------------------------------------

def _current_number(identity: Identity) -> str | None:
    for ident in identity.current_identifiers:
        if ident.type == IdentifierType.PERSONAL_NUMBER:
            return ident.value
    return None


def _disagreements(identity: Identity, person: mapping.UpstreamPerson) -> list[str]:
    problems = []
    if identity.birth_date is None or person.birth_date is None:
        problems.append("birth_date_missing")
    elif identity.birth_date != person.birth_date:
        problems.append("birth_date_differs")
    # The search key finds candidates; here it only tolerates accents and case.
    if not person.full_name or names.search_key(identity.full_name) != names.search_key(person.full_name):
        problems.append("name_differs")
    return problems


def _ensure_active(identity: Identity | None) -> Identity:
    if identity is None or identity.status != IdentityStatus.ACTIVE:
        raise FederationRefused(_l("This account cannot be used at the moment. Please contact a one-stop office."))
    return identity


def _is_verified(person: mapping.UpstreamPerson, assurance: mapping.Assurance) -> bool:
    return assurance.identity_level >= 2 and person.personal_number is not None


def _new_link(provider, person, identity, *, now) -> UpstreamLink:
    link = UpstreamLink(issuer=person.issuer, subject=person.subject, identity_id=identity.id,
                        provider_slug=provider.slug, linked_at=now, last_login_at=now)
    db.session.add(link)
    return link


def _record_verification(provider, identity, link, assurance, *, now, address) -> bool:
    """Evidence on the link; raise the identity to level 2. True when this is news."""
    news = link.verified_at is None or identity.assurance_level < 2
    link.verified_level, link.verified_acr, link.verified_at = 2, assurance.upstream_acr, now
    raised = identity.assurance_level < 2
    if raised:
        identity.assurance_level = 2
        identity.updated_at = now
    if news:
        events.record(identity.id, "identity_verified", now=now, address=address, commit=False, detail={
            "upstream": provider.slug, "acr": assurance.upstream_acr, "at": now.isoformat(), "raised": raised,
        })
    return news


def _linked(provider, identity, *, actor, created: bool, verified: bool, now, address) -> None:
    events.record(identity.id, "federation_linked", now=now, address=address, commit=False,
                  detail={"upstream": provider.slug, "verified": verified})
    audit.record("federation.linked", actor=actor, target_type="identity", target_id=identity.id,
                 address=address, now=now,
                 details={"provider": provider.slug, "created": created, "verified": verified})


def _commit_or_retry() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        # Another login of the same person won the race; the next try finds its link.
        db.session.rollback()
        raise FederationRefused(_l("Your login could not be completed. Please try again.")) from None


def resolve_login(provider: UpstreamProvider, person: mapping.UpstreamPerson, assurance: mapping.Assurance,
                  *, now: datetime, address: str | None = None, link_for=None) -> Resolution:
    """The identity an upstream login is, creating or linking it by the rules above.

    link_for: the identity logged in here that asked to link this upstream account.
    Raises FederationRefused, ConflictQueued or LocalLoginRequired (with a message for the person).
    """
    link = find_link(person.issuer, person.subject)
    verified = _is_verified(person, assurance)
    if link_for is not None:
        return _link_for(provider, person, assurance, link, link_for, verified=verified, now=now, address=address)
    if link is not None:
        # An identity merged by an officer logs in as the one it was merged into.
        identity = _ensure_active(identity_services.resolve(link.identity_id))
        if identity.id != link.identity_id:
            link.identity_id = identity.id
        link.last_login_at = now
        news = False
        if verified:
            problems = (["number_mismatch"] if _current_number(identity) != person.personal_number
                        else _disagreements(identity, person))
            if problems:
                # The link stands; the level is not raised until an officer looks.
                _queue(provider, person, identity_id=identity.id, reasons=problems, now=now)
            else:
                news = _record_verification(provider, identity, link, assurance, now=now, address=address)
        db.session.commit()
        return Resolution(identity, link, verified=news)

    if verified:
        identity = identity_services.identity_by_identifier(IdentifierType.PERSONAL_NUMBER, person.personal_number)
        if identity is not None:
            problems = _disagreements(identity, person)
            if problems:
                _queue(provider, person, identity_id=identity.id, reasons=problems, now=now)
                db.session.commit()
                raise ConflictQueued(_conflict_message(provider))
            _ensure_active(identity)
            link = _new_link(provider, person, identity, now=now)
            _record_verification(provider, identity, link, assurance, now=now, address=address)
            _linked(provider, identity, actor=f"federation:{provider.slug}", created=False, verified=True,
                    now=now, address=address)
            _commit_or_retry()
            return Resolution(identity, link, newly_linked=True, verified=True)
        return _create(provider, person, assurance, level=2, now=now, address=address)

    if person.personal_number and identity_services.identity_by_identifier(
            IdentifierType.PERSONAL_NUMBER, person.personal_number) is not None:
        raise LocalLoginRequired(_l(
            "An account with your personal number already exists. Log in to it with your password, "
            "then link %(name)s from your account page.", name=provider.display_name,
        ))
    return _create(provider, person, assurance, level=1, now=now, address=address)


def _conflict_message(provider):
    return _l(
        "The information from %(name)s does not match the account registered with your personal "
        "number. An officer will check it; you can also visit a one-stop office with your identity "
        "card. Until then, log in with your password if you have one.", name=provider.display_name,
    )


def _free(value, validator, column) -> str | None:
    """A contact value to store on a new identity: valid and not someone else's, else dropped."""
    if not value:
        return None
    try:
        value = validator(value)
    except ValidationError:
        return None
    return None if db.session.scalar(select(Identity.id).where(column == value)) else value


def _create(provider, person, assurance, *, level: int, now: datetime, address) -> Resolution:
    if not (person.personal_number and person.full_name and person.birth_date):
        raise FederationRefused(_l(
            "%(name)s did not share your personal number, full name and date of birth, which are "
            "needed to create your account.", name=provider.display_name,
        ))
    gender = person.gender
    if gender is None:
        gender = validators.personal_number_facts(person.personal_number)["gender"]
    try:
        identity = identity_services.create_citizen(
            personal_number=person.personal_number,
            full_name=person.full_name,
            birth_date=person.birth_date,
            gender=gender,
            phone=_free(person.phone, validators.phone, Identity.phone),
            email=_free(person.email, validators.email, Identity.email),
            now=now,
            assurance_level=level,
        )
    except InvalidFields as exc:
        db.session.rollback()
        if level >= 2:
            # Verified data that breaks the format rules is for an officer to look at.
            _queue(provider, person, identity_id=None, reasons=["invalid_claims:" + ",".join(sorted(exc.errors))], now=now)
            db.session.commit()
            raise ConflictQueued(_conflict_message(provider)) from None
        raise FederationRefused(_l(
            "The information from %(name)s cannot be used to create an account: %(problem)s",
            name=provider.display_name, problem=exc.message,
        )) from None
    except Conflict:
        raise FederationRefused(_l("Your login could not be completed. Please try again.")) from None
    link = _new_link(provider, person, identity, now=now)
    if level >= 2:
        _record_verification(provider, identity, link, assurance, now=now, address=address)
    _linked(provider, identity, actor=f"federation:{provider.slug}", created=True, verified=level >= 2,
            now=now, address=address)
    _commit_or_retry()
    return Resolution(identity, link, created=True, newly_linked=True, verified=level >= 2)


def _link_for(provider, person, assurance, link, identity_id, *, verified: bool, now, address) -> Resolution:
    identity = _ensure_active(identity_services.get_identity(identity_id))
    if link is not None:
        if link.identity_id == identity.id:
            return Resolution(identity, link)
        raise FederationRefused(_l("This %(name)s account is already linked to another account.",
                                   name=provider.display_name))
    number = _current_number(identity)
    if person.personal_number and person.personal_number != number:
        if verified:
            _queue(provider, person, identity_id=identity.id, reasons=["number_mismatch"], now=now)
            db.session.commit()
            raise ConflictQueued(_conflict_message(provider))
        raise FederationRefused(_l("The personal number of this %(name)s account is not the one of your account.",
                                   name=provider.display_name))
    if verified:
        problems = _disagreements(identity, person)
        if problems:
            _queue(provider, person, identity_id=identity.id, reasons=problems, now=now)
            db.session.commit()
            raise ConflictQueued(_conflict_message(provider))
    link = _new_link(provider, person, identity, now=now)
    if verified:
        _record_verification(provider, identity, link, assurance, now=now, address=address)
    _linked(provider, identity, actor=identity.id, created=False, verified=verified, now=now, address=address)
    _commit_or_retry()
    return Resolution(identity, link, newly_linked=True, verified=verified)
