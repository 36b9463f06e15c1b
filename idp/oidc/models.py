"""Tables of the protocol: signing keys, consents, refresh tokens, back-channel logout outbox."""

from __future__ import annotations

import enum

from idp.extensions import db


def _enum(cls, name):
    return db.Enum(cls, name=name, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class KeyState(enum.StrEnum):
    NEXT = "next"  # published in the JWKS, not signing yet
    ACTIVE = "active"  # signs new tokens (one per algorithm)
    RETIRED = "retired"  # published until publish_until, never signs


class SigningKey(db.Model):
    __tablename__ = "signing_keys"

    kid = db.Column(db.String(64), primary_key=True)
    alg = db.Column(db.String(16), nullable=False)
    state = db.Column(_enum(KeyState, "key_state"), nullable=False)
    public_jwk = db.Column(db.JSON, nullable=False)
    # The private key (PEM), encrypted under the key-encryption key from configuration.
    private_encrypted = db.Column(db.Text, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False)
    activated_at = db.Column(db.DateTime)
    retired_at = db.Column(db.DateTime)
    # A retired key stays in the JWKS until every token it signed has expired.
    publish_until = db.Column(db.DateTime)


class Consent(db.Model):
    """A person's consent to give a client a set of scopes; rows are history, never deleted."""

    __tablename__ = "consents"

    id = db.Column(db.Integer, primary_key=True)
    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False)
    client_id = db.Column(db.String(64), db.ForeignKey("clients.client_id"), nullable=False)
    scopes = db.Column(db.JSON, nullable=False)
    # Which claims the consent page listed, and the version of its notice text.
    claims = db.Column(db.JSON, nullable=False)
    notice_version = db.Column(db.String(32), nullable=False)
    granted_at = db.Column(db.DateTime, nullable=False)
    withdrawn_at = db.Column(db.DateTime)

    __table_args__ = (db.Index("ix_consents_identity_client", "identity_id", "client_id"),)


class RefreshToken(db.Model):
    """Opaque refresh tokens, stored as digests; a family shares one absolute lifetime."""

    __tablename__ = "refresh_tokens"

    id = db.Column(db.Integer, primary_key=True)
    token_digest = db.Column(db.String(64), nullable=False, unique=True)
    family_id = db.Column(db.String(36), nullable=False, index=True)
    client_id = db.Column(db.String(64), db.ForeignKey("clients.client_id"), nullable=False)
    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, index=True)
    scope = db.Column(db.String(1000), nullable=False)
    sid = db.Column(db.String(64), index=True)  # the SSO session it came from
    auth_time = db.Column(db.Integer, nullable=False)
    acr = db.Column(db.String(64), nullable=False)
    amr = db.Column(db.JSON, nullable=False)
    issued_at = db.Column(db.DateTime, nullable=False)
    expires_at = db.Column(db.DateTime, nullable=False)
    family_expires_at = db.Column(db.DateTime, nullable=False)
    rotated_at = db.Column(db.DateTime)  # replaced by a newer token of the family
    revoked_at = db.Column(db.DateTime)
    revoked_reason = db.Column(db.String(64))
    # The business the person acted for when this grant was made (idp.business); NULL: none.
    acting_for = db.Column(db.Uuid, db.ForeignKey("identities.id"))


class LogoutDelivery(db.Model):
    """Back-channel logout tokens waiting for (or done with) delivery to a client."""

    __tablename__ = "logout_deliveries"

    id = db.Column(db.Integer, primary_key=True)
    client_id = db.Column(db.String(64), db.ForeignKey("clients.client_id"), nullable=False)
    uri = db.Column(db.String(500), nullable=False)
    logout_token = db.Column(db.Text, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False)
    attempts = db.Column(db.Integer, nullable=False, default=0)
    next_attempt_at = db.Column(db.DateTime, nullable=False, index=True)
    delivered_at = db.Column(db.DateTime)
    gave_up_at = db.Column(db.DateTime)
    last_error = db.Column(db.String(300))


class PairwiseSubject(db.Model):
    """Maps a pairwise `sub` back to the identity (userinfo, logout hints, merges)."""

    __tablename__ = "pairwise_subjects"

    sector = db.Column(db.String(255), primary_key=True)
    sub = db.Column(db.String(64), primary_key=True)
    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, index=True)
