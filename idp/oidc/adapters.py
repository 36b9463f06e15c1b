"""Adapters from the domain models to Authlib's storage contracts (its mixins)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin

from idp.clients import services as client_services
from idp.clients.models import AuthMethod, Client


class OAuthClient(ClientMixin):
    """A registered relying party as Authlib sees it."""

    def __init__(self, model: Client, config):
        self.model = model
        self._config = config

    @property
    def client_id(self) -> str:
        return self.model.client_id

    @property
    def client_metadata(self) -> dict:
        return {"post_logout_redirect_uris": list(self.model.post_logout_redirect_uris or [])}

    @property
    def id_token_signed_response_alg(self) -> str:
        return self.model.id_token_signed_response_alg

    def get_client_id(self):
        return self.model.client_id

    def get_default_redirect_uri(self):
        # OIDC requires redirect_uri in every request: no default.
        return None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        allowed = set(self.model.scopes)
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return client_services.redirect_uri_matches(self.model, redirect_uri)

    def check_client_secret(self, client_secret):
        return client_services.check_secret(self.model, client_secret, self._config)

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.model.auth_method.value

    def check_response_type(self, response_type):
        return response_type == "code" and "authorization_code" in self.model.grant_types

    def check_grant_type(self, grant_type):
        return grant_type in self.model.grant_types

    @property
    def is_public(self) -> bool:
        return self.model.auth_method == AuthMethod.NONE


@dataclass
class Principal:
    """The person a grant acts for, with what this SSO session proved."""

    identity_id: str
    sub: str
    sid: str | None
    auth_time: int
    acr: str
    amr: list[str] = field(default_factory=list)
    # Acting for a business (idp.oidc.acting): then `sub` is the business's subject for this
    # client, `act` names the person ({"sub": their sub}) and `business` holds its claims.
    acting_for: str | None = None
    act: dict | None = None
    business: dict | None = None
    # The client the tokens are for, set when an ID token is built (legacy claims need it).
    client_id: str | None = None
    # The refresh-token family the grant's tokens belong to (access tokens carry it as `fid`).
    family_id: str | None = None

    def get_user_id(self):
        return self.sub


@dataclass
class AuthCode(AuthorizationCodeMixin):
    """An authorization code's grant, kept in the shared store for AUTH_CODE_TTL seconds."""

    client_id: str
    redirect_uri: str
    scope: str
    identity_id: str
    sub: str
    sid: str | None
    auth_time: int
    acr: str
    amr: list[str]
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    # The business identity the person chose to act for (None: as themselves).
    acting_for: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> AuthCode:
        # Unknown keys are ignored, so a code written by a newer release still redeems here.
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(raw).items() if k in known})

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return self.acr

    def get_amr(self):
        return self.amr

    def principal(self) -> Principal:
        return Principal(self.identity_id, self.sub, self.sid, self.auth_time, self.acr, list(self.amr))


class RefreshTokenCredential(TokenMixin):
    """A stored refresh token as Authlib's refresh grant sees it."""

    def __init__(self, row, identity_id=None):
        self.row = row
        # The identity the grant resolved (the survivor, after a merge).
        self.identity_id = identity_id if identity_id is not None else row.identity_id

    def check_client(self, client):
        return client.get_client_id() == self.row.client_id

    def get_scope(self):
        return self.row.scope

    def get_expires_in(self):
        return 0

    def is_expired(self):
        return False  # checked by the token service with the injected clock

    def is_revoked(self):
        return self.row.revoked_at is not None
