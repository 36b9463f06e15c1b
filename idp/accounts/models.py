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
