"""Consents: explicit, recorded with the notice version, withdrawable (Law 91/2025)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from idp.extensions import db
from idp.oidc.models import Consent
from idp.oidc.scopes import claims_for


def active_consents(identity_id, client_id: str | None = None) -> list[Consent]:
    stmt = select(Consent).where(Consent.identity_id == identity_id, Consent.withdrawn_at.is_(None))
    if client_id is not None:
        stmt = stmt.where(Consent.client_id == client_id)
    return list(db.session.scalars(stmt.order_by(Consent.granted_at.desc())))


def covers(identity_id, client_id: str, scopes: list[str]) -> bool:
    """True when an active consent of this person to this client includes every scope."""
    wanted = set(scopes)
    return any(wanted <= set(c.scopes) for c in active_consents(identity_id, client_id))


def record(identity_id, client_id: str, scopes: list[str], *, notice_version: str, now: datetime) -> Consent:
    consent = Consent(
        identity_id=identity_id,
        client_id=client_id,
        scopes=sorted(set(scopes)),
        claims=claims_for(sorted(set(scopes))),
        notice_version=notice_version,
        granted_at=now,
    )
    db.session.add(consent)
    db.session.flush()
    return consent


def withdraw(identity_id, client_id: str, *, now: datetime) -> int:
    """Withdraw every active consent of the person to this client; returns how many."""
    rows = active_consents(identity_id, client_id)
    for row in rows:
        row.withdrawn_at = now
    db.session.flush()
    return len(rows)
