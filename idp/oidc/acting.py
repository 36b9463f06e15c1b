"""Acting for a business: which businesses a person may choose, the principal that acts, the
claims of its tokens, and what happens when a representation ends.

A relying party that asks for the `business` scope lets a person who represents businesses
choose to act "as myself" or for one of them (views.choose_business); the choice is kept in the
pending request. The tokens then have the business as `sub` (public or pairwise like any
subject), the business claims, and `act` = {"sub": the person's sub for this client}
(RFC 8693 §4.1). The representation is checked again at every use: code redemption, refresh,
userinfo and introspection.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from flask import current_app
from sqlalchemy import select

from idp.business import representation
from idp.clients import services as client_services
from idp.extensions import db
from idp.identity.models import IdentityStatus
from idp.identity.services import resolve as resolve_identity
from idp.oidc import logout, tokens
from idp.oidc.adapters import Principal
from idp.oidc.claims import acting_userinfo_claims
from idp.oidc.models import RefreshToken
from idp.oidc.subjects import identity_id_for_subject, issue_subject
from idp.store import get_store
from idp.timeutil import utcnow

SCOPE = "business"


def asks_business(scopes) -> bool:
    return SCOPE in scopes


def options(identity_id, client, scopes) -> list:
    """The representations the person may act under at this client with these scopes."""
    return representation.acting_options(
        identity_id, client_id=client.get_client_id(), scopes=list(scopes), now=utcnow())


def act_for(principal: Principal, business_id, client, scopes) -> Principal | None:
    """The principal acting for the business, or None when the person may not (any more)."""
    rep = representation.acting_representation(
        principal.identity_id, business_id, client_id=client.get_client_id(), scopes=list(scopes),
        now=utcnow())
    if rep is None:
        return None
    business_sub = issue_subject(rep.business_id, client.model, salt=current_app.config["PAIRWISE_SALT"])
    person_sub = principal.act["sub"] if principal.act else principal.sub
    return replace(principal, sub=business_sub, acting_for=str(rep.business_id),
                   act={"sub": person_sub}, business=representation.business_claims(rep))


def token_claims(principal: Principal | None) -> dict:
    """The claims an ID or access token carries for a principal acting for a business."""
    if principal is None or not principal.acting_for:
        return {}
    return {**principal.business, "act": dict(principal.act)}


def refresh_allowed(row: RefreshToken, client_id: str) -> bool:
    """A refresh token issued while acting for a business works while the person still may."""
    if row.acting_for is None:
        return True
    return representation.acting_representation(
        row.identity_id, row.acting_for, client_id=client_id, scopes=row.scope.split(),
        now=utcnow()) is not None


def _parties(client, claims: dict):
    """(representation, business sub, person identity, person sub) of an acting access token."""
    act = claims.get("act")
    if client is None or not isinstance(act, dict) or not isinstance(act.get("sub"), str):
        return None
    business_id = identity_id_for_subject(claims.get("sub", ""), client)
    person = resolve_identity(identity_id_for_subject(act["sub"], client))
    if business_id is None or person is None or person.status != IdentityStatus.ACTIVE:
        return None
    rep = representation.acting_representation(
        person.id, business_id, client_id=client.client_id,
        scopes=claims.get("scope", "").split(), now=utcnow())
    return (rep, claims["sub"], person, act["sub"]) if rep is not None else None


def access_token_valid(client, claims: dict) -> bool:
    """For introspection: an acting access token is active only while the person still may."""
    return _parties(client, claims) is not None


def userinfo(client, claims: dict) -> dict | None:
    """Userinfo of an acting access token; None when the representation no longer allows it."""
    found = _parties(client, claims)
    if found is None:
        return None
    rep, business_sub, person, person_sub = found
    return acting_userinfo_claims(representation.business_claims(rep), business_sub, person,
                                  person_sub, claims.get("scope", "").split())


# --- remembering where a person acted, to end it later --------------------------------------

def _pair_key(person_id, business_id) -> str:
    return f"acting:{person_id}:{business_id}"


def _sid_key(sid: str) -> str:
    return "acting-sid:" + sid


def note(principal: Principal, client_id: str) -> None:
    """After tokens were issued while acting: remember the client and session (after commit)."""
    if not principal.acting_for:
        return
    store = get_store()
    ttl = current_app.config["SESSION_ABSOLUTE_TIMEOUT"]
    store.set_add(_pair_key(principal.identity_id, principal.acting_for),
                  f"{client_id} {principal.sid or ''}", ttl)
    if principal.sid:
        store.set_add(_sid_key(principal.sid), f"{client_id} {principal.acting_for}", ttl)


def on_representation_ended(app, *, representative_id, business_id, now, reason):
    """Revoke the refresh tokens issued under the representation and queue a back-channel
    logout (sub: the business, sid: the person's session) to every client that got tokens
    under it. Runs in the caller's transaction; returns the worker's wake-up for after it."""
    members = get_store().set_members(_pair_key(representative_id, business_id))
    pairs = set()
    for member in members:
        client_id, _, sid = member.partition(" ")
        pairs.add((client_id, sid or None))
    rows = db.session.execute(
        select(RefreshToken.client_id, RefreshToken.sid).where(
            RefreshToken.identity_id == representative_id, RefreshToken.acting_for == business_id,
            RefreshToken.revoked_at.is_(None), RefreshToken.rotated_at.is_(None))
    ).all()
    pairs |= {(row.client_id, row.sid) for row in rows}
    tokens.revoke_where(now=now, reason=reason[:64], identity_id=representative_id,
                        acting_for=business_id)
    queued = 0
    for client_id, sid in sorted(pairs, key=lambda p: (p[0], p[1] or "")):
        client = client_services.get_client(client_id)
        if client is not None and logout.queue_identity_logout(client, business_id, now=now, sid=sid):
            queued += 1
    return logout.kick if queued else None


def on_session_ended(app, *, identity_id: str, sid: str, reason: str) -> None:
    """An SSO session ended: the clients where the person acted for a business in it hold a
    session whose sub is the business's; tell them too (logout.on_session_ended tells them
    about the person's own sub and revokes the session's refresh tokens)."""
    store = get_store()
    members = store.set_members(_sid_key(sid))
    if not members:
        return
    store.delete(_sid_key(sid))
    now = utcnow()
    queued = 0
    for member in sorted(members):
        client_id, _, business_id = member.partition(" ")
        client = client_services.get_client(client_id)
        try:
            business_uuid = uuid.UUID(business_id)
        except ValueError:
            continue
        if client is not None and logout.queue_identity_logout(client, business_uuid, now=now, sid=sid):
            queued += 1
    db.session.commit()
    if queued:
        logout.kick()


def init_app(app) -> None:
    from idp.accounts import sessions as sso

    representation.representation_ended.connect(on_representation_ended, sender=app, weak=False)
    sso.session_ended.connect(on_session_ended, sender=app, weak=False)
