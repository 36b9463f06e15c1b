"""Tables of authentication: credentials and roles."""

from __future__ import annotations

import enum

from idp.extensions import db


class PasswordCredential(db.Model):
    __tablename__ = "password_credentials"

    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), primary_key=True)
    # argon2id PHC string; upgraded in place when the parameters change.
    hash = db.Column(db.String(255), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False)
    updated_at = db.Column(db.DateTime, nullable=False)
    # Consecutive failures across every login path; at the limit the factor locks until reset.
    failed_count = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    locked_at = db.Column(db.DateTime)


class TotpCredential(db.Model):
    """A TOTP authenticator (RFC 6238); the secret is encrypted at rest."""

    __tablename__ = "totp_credentials"

    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), primary_key=True)
    secret_encrypted = db.Column(db.Text, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False)
    # NULL until the person proved the enrolment with a first code.
    confirmed_at = db.Column(db.DateTime)
    failed_count = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    locked_at = db.Column(db.DateTime)


class RecoveryCode(db.Model):
    """Single-use recovery codes, stored as digests; a new batch replaces the old one."""

    __tablename__ = "recovery_codes"

    id = db.Column(db.Integer, primary_key=True)
    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, index=True)
    digest = db.Column(db.String(64), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False)
    used_at = db.Column(db.DateTime)


class AccountEvent(db.Model):
    """Login history and security events shown to the person (sensitive: kept LOGIN_HISTORY_DAYS)."""

    __tablename__ = "account_events"

    id = db.Column(db.Integer, primary_key=True)
    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False)
    at = db.Column(db.DateTime, nullable=False, index=True)
    event = db.Column(db.String(40), nullable=False)
    client_id = db.Column(db.String(64))
    address = db.Column(db.String(64))
    user_agent = db.Column(db.String(300))
    detail = db.Column(db.JSON)

    __table_args__ = (db.Index("ix_account_events_identity_at", "identity_id", "at"),)


class KnownDevice(db.Model):
    """Browsers a person logged in from, so a login from a new one can be told to them."""

    __tablename__ = "known_devices"

    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), primary_key=True)
    device_digest = db.Column(db.String(64), primary_key=True)
    first_seen = db.Column(db.DateTime, nullable=False)
    last_seen = db.Column(db.DateTime, nullable=False)


class Role(enum.StrEnum):
    SUPERADMIN = "superadmin"
    IDENTITY_OFFICER = "identity_officer"
    CLIENT_MANAGER = "client_manager"
    AUDITOR = "auditor"


class RoleGrant(db.Model):
    """An administrative role held by an identity."""

    __tablename__ = "role_grants"

    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), primary_key=True)
    role = db.Column(
        db.Enum(Role, name="role", native_enum=False, length=32, values_callable=lambda e: [m.value for m in e]),
        primary_key=True,
    )
    granted_at = db.Column(db.DateTime, nullable=False)
    granted_by = db.Column(db.String(200), nullable=False)
