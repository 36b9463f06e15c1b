"""The relying-party registry table."""

from __future__ import annotations

import enum

from idp.extensions import db


def _enum(cls, name):
    return db.Enum(cls, name=name, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class ClientType(enum.StrEnum):
    CONFIDENTIAL = "confidential"
    PUBLIC = "public"


class AuthMethod(enum.StrEnum):
    SECRET_BASIC = "client_secret_basic"
    SECRET_POST = "client_secret_post"
    PRIVATE_KEY_JWT = "private_key_jwt"
    NONE = "none"


class SubjectType(enum.StrEnum):
    PUBLIC = "public"
    PAIRWISE = "pairwise"


class ClientStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class ClientRules:
    """What a client's registered values mean; shared by the row and its cached snapshot."""

    __slots__ = ()

    @property
    def is_public(self) -> bool:
        return self.client_type == ClientType.PUBLIC

    @property
    def active(self) -> bool:
        return self.status == ClientStatus.ACTIVE

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.client_id}>"


class Client(ClientRules, db.Model):
    __tablename__ = "clients"

    id = db.Column(db.Integer, primary_key=True)
    client_id = db.Column(db.String(64), nullable=False, unique=True)
    name = db.Column(db.String(200), nullable=False)
    agency = db.Column(db.String(200), nullable=False)
    client_type = db.Column(_enum(ClientType, "client_type"), nullable=False)
    auth_method = db.Column(_enum(AuthMethod, "client_auth_method"), nullable=False)
    # HMAC-SHA256 of the secret under a server key: secrets are random, so no slow hash.
    secret_digest = db.Column(db.String(64))
    secret_rotated_at = db.Column(db.DateTime)
    jwks = db.Column(db.JSON)  # for private_key_jwt
    jwks_uri = db.Column(db.String(500))
    redirect_uris = db.Column(db.JSON, nullable=False, default=list)
    post_logout_redirect_uris = db.Column(db.JSON, nullable=False, default=list)
    backchannel_logout_uri = db.Column(db.String(500))
    grant_types = db.Column(db.JSON, nullable=False, default=list)
    scopes = db.Column(db.JSON, nullable=False, default=list)
    # PKCE is always required for public clients; a legacy confidential RP may switch it off
    # (then nonce becomes mandatory).
    require_pkce = db.Column(db.Boolean, nullable=False, default=True)
    subject_type = db.Column(_enum(SubjectType, "subject_type"), nullable=False, default=SubjectType.PUBLIC)
    sector_identifier = db.Column(db.String(255))
    min_acr = db.Column(db.String(64))
    id_token_signed_response_alg = db.Column(db.String(16), nullable=False, default="RS256")
    access_token_lifetime = db.Column(db.Integer, nullable=False, default=600)
    id_token_lifetime = db.Column(db.Integer, nullable=False, default=600)
    refresh_token_lifetime = db.Column(db.Integer, nullable=False, default=86400)
    refresh_token_idle = db.Column(db.Integer, nullable=False, default=43200)
    first_party = db.Column(db.Boolean, nullable=False, default=False)
    status = db.Column(_enum(ClientStatus, "client_status"), nullable=False, default=ClientStatus.ACTIVE)
    created_at = db.Column(db.DateTime, nullable=False)
    updated_at = db.Column(db.DateTime, nullable=False)
