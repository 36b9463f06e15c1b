"""Who may act for a business: legal representatives and authorizations, and their end.

A representation is usable ("current") while it is not revoked or ended, its period has begun
and not passed, the person is an active citizen (level 2 for a legal representative) and the
business is an active business. An authorization may be limited to some relying parties
(client ids) and some scopes; `openid` and `business` are always allowed.

When a representation ends (revoked, or found expired by `expire_due`), or its business stops
being active, `representation_ended` is sent inside the transaction: the protocol layer
(idp.oidc.acting) revokes the refresh tokens issued under it and queues back-channel logout
tokens in the same transaction, and returns what to do after the commit (wake the delivery
worker). This package stays below the protocol: it never imports idp.oidc.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

from blinker import Namespace
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from idp import audit
from idp.business.models import BusinessProfile, BusinessStatus, Representation, RepresentationRole
from idp.clients import services as client_services
from idp.errors import Conflict, DomainError, InvalidFields, ValidationError
from idp.extensions import db
from idp.identity.models import Identity, IdentityKind, IdentityStatus

_signals = Namespace()
# Sent with representative_id, business_id, now, reason; receivers return a callable to run
# after the commit, or None.
representation_ended = _signals.signal("business-representation-ended")

# Scopes every representation covers: asking who someone is, and for which business.
IMPLIED_SCOPES = frozenset({"openid", "business"})
MAX_REASON = 300


# --- rules ---------------------------------------------------------------------------------


def check_can_be_legal_representative(person: Identity | None) -> None:
    """Only an active, verified (level 2) citizen may be a legal representative."""
    if person is None or person.kind != IdentityKind.CITIZEN or person.status != IdentityStatus.ACTIVE:
        raise DomainError(_l("This person cannot represent a business."), field="representative")
    if person.assurance_level < 2:
        raise DomainError(
            _l("A legal representative must have a verified (level 2) account: verify the "
               "identity at a one-stop office first."), field="representative")


def _check_can_be_authorized(person: Identity | None) -> None:
    if person is None or person.kind != IdentityKind.CITIZEN or person.status != IdentityStatus.ACTIVE:
        raise DomainError(_l("This person cannot represent a business."), field="representative")


def is_current(rep: Representation, *, now: datetime) -> bool:
    """Not revoked or ended, and within its period (the people and business not checked)."""
    return (
        rep.revoked_at is None
        and rep.ended_at is None
        and rep.valid_from <= now
        and (rep.valid_to is None or now < rep.valid_to)
    )


def state(rep: Representation, *, now: datetime) -> str:
    """"current", "scheduled" (not yet valid), "expired", "revoked" or "ended" (for pages)."""
    if rep.revoked_at is not None:
        return "revoked"
    if rep.ended_at is not None:
        return "ended"
    if rep.valid_to is not None and now >= rep.valid_to:
        return "expired"
    if now < rep.valid_from:
        return "scheduled"
    return "current"


def covers(rep: Representation, *, client_id: str, scopes: Iterable[str]) -> bool:
    """Does the authorization reach this relying party and every scope asked?"""
    if rep.role == RepresentationRole.LEGAL_REPRESENTATIVE:
        return True
    if rep.client_ids is not None and client_id not in rep.client_ids:
        return False
    return rep.scopes is None or (set(scopes) - IMPLIED_SCOPES) <= set(rep.scopes)


def _business_active(business: Identity) -> bool:
    if business.kind != IdentityKind.BUSINESS or business.status != IdentityStatus.ACTIVE:
        return False
    profile = db.session.get(BusinessProfile, business.id)
    return profile is not None and profile.business_status == BusinessStatus.ACTIVE


def usable(rep: Representation, *, now: datetime) -> bool:
    """Current, held by an active citizen (level 2 for a legal representative), for an active
    business."""
    if not is_current(rep, now=now):
        return False
    person = rep.representative
    if person.kind != IdentityKind.CITIZEN or person.status != IdentityStatus.ACTIVE:
        return False
    if rep.role == RepresentationRole.LEGAL_REPRESENTATIVE and person.assurance_level < 2:
        return False
    return _business_active(rep.business)


# --- queries -------------------------------------------------------------------------------


def _uuid(value) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def open_representation(business_id, person_id) -> Representation | None:
    """The one representation of this person for this business that has not ended."""
    business_id, person_id = _uuid(business_id), _uuid(person_id)
    if business_id is None or person_id is None:
        return None
    return db.session.scalar(select(Representation).where(
        Representation.business_id == business_id, Representation.representative_id == person_id,
        Representation.ended_at.is_(None)))


def open_of_person(person_id) -> list[Representation]:
    return list(db.session.scalars(
        select(Representation).where(Representation.representative_id == person_id,
                                     Representation.ended_at.is_(None))
        .order_by(Representation.granted_at)))


def open_of_business(business_id) -> list[Representation]:
    return list(db.session.scalars(
        select(Representation).where(Representation.business_id == business_id,
                                     Representation.ended_at.is_(None))
        .order_by(Representation.role.desc(), Representation.granted_at)))


def get(representation_id) -> Representation | None:
    try:
        return db.session.get(Representation, int(representation_id))
    except (TypeError, ValueError):
        return None


def acting_options(person_id, *, client_id: str, scopes: Iterable[str],
                   now: datetime) -> list[Representation]:
    """The businesses this person may act for at this relying party with these scopes."""
    scopes = list(scopes)
    return [rep for rep in open_of_person(person_id)
            if usable(rep, now=now) and covers(rep, client_id=client_id, scopes=scopes)]


def acting_representation(person_id, business_id, *, client_id: str, scopes: Iterable[str],
                          now: datetime) -> Representation | None:
    """The representation that lets the person act for the business here, or None."""
    rep = open_representation(business_id, person_id)
    if rep is None or not usable(rep, now=now) or not covers(rep, client_id=client_id, scopes=scopes):
        return None
    return rep


def is_legal_representative(person_id, business_id, *, now: datetime) -> bool:
    rep = open_representation(business_id, person_id)
    return (rep is not None and rep.role == RepresentationRole.LEGAL_REPRESENTATIVE
            and usable(rep, now=now))


def business_claims(rep: Representation) -> dict:
    """The claims naming the business acted for and the person's role in it."""
    business = rep.business
    primary = business.primary_identifier
    return {
        "business_id": primary.value if primary is not None else None,
        "business_name": business.full_name,
        "representative_role": rep.role.value,
    }


# --- granting ------------------------------------------------------------------------------


def _clean_limits(client_ids, scopes) -> tuple[list[str] | None, list[str] | None]:
    errors = {}
    clients = sorted({str(c).strip() for c in (client_ids or []) if str(c).strip()}) or None
    for client_id in clients or []:
        if client_services.get_client(client_id) is None:
            errors["client_ids"] = _l("There is no relying party %(c)s.", c=client_id)
            break
    wanted = {str(s).strip() for s in (scopes or []) if str(s).strip()}
    unknown = wanted - set(client_services.SCOPES)
    if unknown:
        errors["scopes"] = _l("Unknown scope: %(s)s.", s=", ".join(sorted(unknown)))
    clean_scopes = sorted(wanted - IMPLIED_SCOPES) if wanted else None
    if errors:
        raise InvalidFields(errors)
    return clients, clean_scopes


def add(*, business: Identity, representative_id, role, now: datetime, by: str,
        client_ids=None, scopes=None, valid_from: datetime | None = None,
        valid_to: datetime | None = None, reason: str | None = None,
        address: str | None = None) -> tuple[Representation, list[Callable]]:
    """Add a representation and its audit entry (flushed, not committed).

    No permission check: callers (grant, the business services) decide who may. Returns the
    row and what to run after the commit (an expired row of the same pair is ended first).
    """
    role = RepresentationRole(role)
    person = db.session.get(Identity, _uuid(representative_id)) if _uuid(representative_id) else None
    if role == RepresentationRole.LEGAL_REPRESENTATIVE:
        check_can_be_legal_representative(person)
        client_ids = scopes = None  # a legal representative acts everywhere
    else:
        _check_can_be_authorized(person)
    if business.kind != IdentityKind.BUSINESS:
        raise DomainError(_l("This business does not exist."), field="business")
    profile = db.session.get(BusinessProfile, business.id)
    if profile is not None and profile.business_status == BusinessStatus.DISSOLVED:
        raise DomainError(_l("This business is dissolved: nobody can be authorized for it."),
                          field="business")
    clients, clean_scopes = _clean_limits(client_ids, scopes)
    valid_from = valid_from or now
    if valid_to is not None and valid_to <= valid_from:
        raise ValidationError(_l("The end of the authorization must be after its start."),
                              field="valid_to")
    if valid_to is not None and valid_to <= now:
        raise ValidationError(_l("The end of the authorization is already past."), field="valid_to")
    after_commit: list[Callable] = []
    existing = open_representation(business.id, person.id)
    if existing is not None:
        if existing.valid_to is not None and existing.valid_to <= now and existing.revoked_at is None:
            after_commit += _expire(existing, now=now)
        else:
            raise Conflict(_l("This person already represents the business; revoke that first "
                              "to change it."), field="representative")
    rep = Representation(
        business_id=business.id, representative_id=person.id, role=role, client_ids=clients,
        scopes=clean_scopes, valid_from=valid_from, valid_to=valid_to, granted_at=now,
        granted_by=str(by), reason=(reason or "").strip()[:MAX_REASON] or None,
    )
    db.session.add(rep)
    db.session.flush()
    audit.record("business.representative.granted", actor=by, target_type="business",
                 target_id=business.id, address=address, now=now,
                 details={"representation": rep.id, "representative": str(person.id),
                          "role": role.value, "client_ids": clients, "scopes": clean_scopes,
                          "valid_from": valid_from, "valid_to": valid_to, "reason": rep.reason})
    return rep, after_commit


def grant(*, business_id, representative_id, now: datetime, by: str,
          role: str = RepresentationRole.AUTHORIZED, client_ids=None, scopes=None,
          valid_from: datetime | None = None, valid_to: datetime | None = None,
          reason: str | None = None, officer: bool = False,
          address: str | None = None) -> Representation:
    """Grant a representation (committed).

    officer=False: `by` is the identity id of a current legal representative (level 2) of the
    business, who may grant only authorizations. officer=True: `by` is an officer's identity
    id or a `cli:` actor, who may grant any role and must give a reason.
    """
    business = _business_or_fail(business_id)
    role = RepresentationRole(role)
    if officer:
        if not (reason or "").strip():
            raise ValidationError(_l("Give the reason for the authorization."), field="reason")
    else:
        _check_legal_representative_actor(by, business.id, now=now)
        if role != RepresentationRole.AUTHORIZED:
            raise DomainError(_l("Only an officer can record a legal representative."), field="role")
        if str(representative_id) == str(by):
            raise DomainError(_l("You already represent this business."), field="representative")
    try:
        rep, after_commit = add(
            business=business, representative_id=representative_id, role=role, now=now, by=by,
            client_ids=client_ids, scopes=scopes, valid_from=valid_from, valid_to=valid_to,
            reason=reason, address=address)
        db.session.commit()
    except DomainError:
        db.session.rollback()
        raise
    run(after_commit)
    return rep


def _business_or_fail(business_id) -> Identity:
    business = db.session.get(Identity, _uuid(business_id)) if _uuid(business_id) else None
    if business is None or business.kind != IdentityKind.BUSINESS:
        raise DomainError(_l("This business does not exist."), field="business")
    return business


def _check_legal_representative_actor(by, business_id, *, now: datetime) -> None:
    if _uuid(by) is None or not is_legal_representative(_uuid(by), business_id, now=now):
        raise DomainError(_l("Only a legal representative of the business can do this."),
                          field="business")


# --- ending --------------------------------------------------------------------------------


def end_use(rep: Representation, *, now: datetime, reason: str) -> list[Callable]:
    """Revoke what was issued under rep and tell the relying parties (in this transaction);
    returns what to run after the commit. Does not close rep."""
    results = representation_ended.send(
        current_app._get_current_object(), representative_id=rep.representative_id,
        business_id=rep.business_id, now=now, reason=reason)
    return [value for _, value in results if callable(value)]


def run(after_commit: list[Callable]) -> None:
    for fn in after_commit:
        fn()


def revoke(representation_id, *, now: datetime, by: str, reason: str | None = None,
           officer: bool = False, address: str | None = None) -> Representation:
    """Revoke a representation (committed): its refresh tokens are revoked and the relying
    parties that hold sessions under it get a back-channel logout.

    officer=False: `by` is the identity id of a current legal representative of the business
    (who may revoke authorizations) or of the authorized person themselves (who may give it up).
    officer=True: any representation, with a reason.
    """
    rep = get(representation_id)
    if rep is None or rep.ended_at is not None:
        raise DomainError(_l("This authorization does not exist or has already ended."),
                          field="representation")
    if officer:
        if not (reason or "").strip():
            raise ValidationError(_l("Give the reason for the revocation."), field="reason")
    else:
        own = str(rep.representative_id) == str(by)
        if rep.role == RepresentationRole.LEGAL_REPRESENTATIVE:
            raise DomainError(_l("Only an officer can remove a legal representative."),
                              field="representation")
        if not own:
            _check_legal_representative_actor(by, rep.business_id, now=now)
    rep.revoked_at = now
    rep.revoked_by = str(by)
    rep.revoke_reason = (reason or "").strip()[:MAX_REASON] or None
    rep.ended_at = now
    after_commit = end_use(rep, now=now, reason="representation_revoked")
    audit.record("business.representative.revoked", actor=by, target_type="business",
                 target_id=rep.business_id, address=address, now=now,
                 details={"representation": rep.id, "representative": str(rep.representative_id),
                          "role": rep.role.value, "reason": rep.revoke_reason})
    db.session.commit()
    run(after_commit)
    return rep


def _expire(rep: Representation, *, now: datetime) -> list[Callable]:
    rep.ended_at = now
    after_commit = end_use(rep, now=now, reason="representation_expired")
    audit.record("business.representative.expired", actor="system", target_type="business",
                 target_id=rep.business_id, now=now,
                 details={"representation": rep.id, "representative": str(rep.representative_id),
                          "role": rep.role.value, "valid_to": rep.valid_to})
    return after_commit


def expire_due(*, now: datetime, limit: int = 500) -> int:
    """End the representations whose period is over (run from cron: `flask business expire`).

    Until this runs, an expired representation is already refused at every use (it is checked
    at authorization, code redemption, refresh and userinfo); this revokes its refresh tokens
    and tells the relying parties. Commits after each one; returns how many ended.
    """
    count = 0
    while True:
        due = list(db.session.scalars(
            select(Representation).where(Representation.ended_at.is_(None),
                                         Representation.valid_to.is_not(None),
                                         Representation.valid_to <= now)
            .order_by(Representation.id).limit(limit)))
        for rep in due:
            after_commit = _expire(rep, now=now)
            db.session.commit()
            run(after_commit)
            count += 1
        if len(due) < limit:
            return count
