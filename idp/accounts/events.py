"""The person's login history and security events (sensitive data: kept LOGIN_HISTORY_DAYS)."""

from __future__ import annotations

from datetime import datetime, timedelta

from blinker import Namespace
from sqlalchemy import delete, select

from idp import audit
from idp.accounts.models import AccountEvent
from idp.extensions import db

_signals = Namespace()
# Sent after a security event is recorded, so notifications (e-mail) can follow it.
security_event = _signals.signal("account-security-event")

# The tamper-evident audit log gets these events too (the person's history is trimmed sooner).
AUDIT_ACTIONS = {
    "login": "login.succeeded",
    "step_up": "login.succeeded",
    "login_failed": "login.failed",
    "second_factor_failed": "login.failed",
    "logout": "logout",
    "password_changed": "password.changed",
    "password_reset": "password.reset",
    "totp_enabled": "factor.totp_enabled",
    "totp_removed": "factor.totp_removed",
    "recovery_codes_regenerated": "factor.recovery_codes_generated",
    "email_verified": "contact.changed",
    "phone_verified": "contact.changed",
}

# Events that the person is told about by e-mail when they have a verified address.
NOTIFIED = {"password_changed", "password_reset", "totp_enabled", "totp_removed",
            "recovery_codes_regenerated", "login_new_device"}


def record(identity_id, event: str, *, now: datetime, client_id=None, address=None,
           user_agent=None, detail=None, commit: bool = True) -> AccountEvent:
    row = AccountEvent(
        identity_id=identity_id,
        at=now,
        event=event,
        client_id=client_id,
        address=(address or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None,
        detail=detail,
    )
    db.session.add(row)
    action = AUDIT_ACTIONS.get(event)
    if action is not None:
        audit.record(action, actor=str(identity_id), target_type="identity", target_id=str(identity_id),
                     address=address, details={"event": event, "client_id": client_id, **(detail or {})},
                     now=now)
    if commit:
        db.session.commit()
    security_event.send(None, identity_id=identity_id, event=event, row=row)
    return row


def recent(identity_id, *, limit: int = 50) -> list[AccountEvent]:
    return list(db.session.scalars(
        select(AccountEvent).where(AccountEvent.identity_id == identity_id)
        .order_by(AccountEvent.at.desc(), AccountEvent.id.desc()).limit(limit)
    ))


def purge(*, now: datetime, days: int) -> int:
    result = db.session.execute(delete(AccountEvent).where(AccountEvent.at < now - timedelta(days=days)))
    db.session.commit()
    return result.rowcount
