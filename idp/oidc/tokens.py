"""Refresh tokens (opaque, stored as digests, rotated) and the access-token deny-list.

A refresh token belongs to a family: the first one issued by a code redemption and every
rotation after it. Presenting a token that was already rotated revokes the whole family
(RFC 9700 §4.14.2): either the client or an attacker holds a stolen copy.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from idp.clients.services import MAX_ACCESS_TOKEN_LIFETIME
from idp.extensions import db
from idp.oidc.models import RefreshToken
from idp.store import Store, get_store

# Families revoked in the session's transaction; their access tokens are denied once it commits.
_REVOKED_FAMILIES = "idp_revoked_families"
# Long enough to outlive any access token issued before the revocation (+ clock skew).
FAMILY_DENY_TTL = MAX_ACCESS_TOKEN_LIFETIME + 60


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    *, client, principal, scope: str, now: datetime, family_id: str | None = None,
    family_expires_at: datetime | None = None,
) -> tuple[str, str]:
    """Store a new refresh token; returns its value (shown to the client once) and family."""
    token = secrets.token_urlsafe(32)
    family_expires_at = family_expires_at or now + timedelta(seconds=client.refresh_token_lifetime)
    row = RefreshToken(
        token_digest=digest(token),
        family_id=family_id or str(uuid.uuid4()),
        client_id=client.client_id,
        identity_id=uuid.UUID(str(principal.identity_id)),
        scope=scope,
        sid=principal.sid,
        auth_time=principal.auth_time,
        acr=principal.acr,
        amr=list(principal.amr),
        issued_at=now,
        expires_at=min(now + timedelta(seconds=client.refresh_token_idle), family_expires_at),
        family_expires_at=family_expires_at,
        acting_for=uuid.UUID(principal.acting_for) if getattr(principal, "acting_for", None) else None,
    )
    db.session.add(row)
    db.session.flush()
    return token, row.family_id


def find(token: str) -> RefreshToken | None:
    if not token or len(token) > 512:
        return None
    return db.session.scalar(select(RefreshToken).where(RefreshToken.token_digest == digest(token)))


def usable(row: RefreshToken, *, now: datetime, claimed: bool = False) -> bool:
    """Live and unexpired; claimed=True for a row this request has just marked rotated."""
    return (
        row.revoked_at is None
        and (claimed or row.rotated_at is None)
        and row.expires_at > now
        and row.family_expires_at > now
    )


def revoke_family(family_id: str, *, now: datetime, reason: str) -> int:
    """Revoke the family's refresh tokens; its access tokens are denied when this commits."""
    result = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    _deny_after_commit([family_id])
    return result.rowcount


def revoke_where(
    *, now: datetime, reason: str, identity_id=None, client_id=None, sid=None, keep_offline=False,
    acting_for=None,
) -> int:
    """Revoke every live refresh token matching all the given criteria.

    keep_offline spares tokens granted with offline_access (they outlive the SSO session);
    acting_for keeps only the tokens issued while acting for that business.
    """
    stmt = update(RefreshToken).where(RefreshToken.revoked_at.is_(None))
    if keep_offline:
        stmt = stmt.where(RefreshToken.scope.notlike("%offline_access%"))
    if identity_id is not None:
        stmt = stmt.where(RefreshToken.identity_id == identity_id)
    if client_id is not None:
        stmt = stmt.where(RefreshToken.client_id == client_id)
    if sid is not None:
        stmt = stmt.where(RefreshToken.sid == sid)
    if acting_for is not None:
        stmt = stmt.where(RefreshToken.acting_for == acting_for)
    families = db.session.scalars(
        stmt.values(revoked_at=now, revoked_reason=reason).returning(RefreshToken.family_id),
        execution_options={"synchronize_session": False},
    ).all()
    _deny_after_commit(families)
    return len(families)


def _deny_after_commit(family_ids) -> None:
    # Written after the commit, never before: a rolled-back revocation denies nothing, and the
    # embedded store (another connection to the SQLite file) would wait for this transaction.
    db.session().info.setdefault(_REVOKED_FAMILIES, set()).update(f for f in family_ids if f)


@event.listens_for(Session, "after_commit")
def _write_denied_families(session) -> None:
    families = session.info.pop(_REVOKED_FAMILIES, None)
    if families:
        store = get_store()
        for family_id in sorted(families):
            store.set("deny:family:" + family_id, "1", FAMILY_DENY_TTL)


@event.listens_for(Session, "after_rollback")
def _forget_denied_families(session) -> None:
    session.info.pop(_REVOKED_FAMILIES, None)


def claim(token: str, *, now: datetime) -> RefreshToken | None:
    """Mark the live token as replaced and return it, in one statement.

    None when no live token has that value: unknown, revoked, or already rotated (find()
    tells which). Of two requests presenting the same token at once, exactly one claims it;
    the other waits for the first's row lock and then finds it rotated.
    """
    if not token or len(token) > 512:
        return None
    return db.session.scalar(
        update(RefreshToken)
        .where(RefreshToken.token_digest == digest(token), RefreshToken.rotated_at.is_(None),
               RefreshToken.revoked_at.is_(None))
        .values(rotated_at=now)
        .returning(RefreshToken),
        execution_options={"synchronize_session": False},
    )


# Access tokens are JWTs validated offline; a revoked one is remembered until it expires.

def deny_access_token(store: Store, jti: str, *, ttl: int) -> None:
    if ttl > 0:
        store.set("deny:at:" + jti, "1", ttl)


def access_token_denied(store: Store, jti: str) -> bool:
    return store.get("deny:at:" + jti) is not None


def access_token_revoked(store: Store, claims: dict) -> bool:
    """Denied itself, or issued to a refresh-token family that was revoked since (claim fid)."""
    if access_token_denied(store, str(claims.get("jti", ""))):
        return True
    family_id = claims.get("fid")
    return isinstance(family_id, str) and store.get("deny:family:" + family_id) is not None
