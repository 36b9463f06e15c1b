"""Authlib's authorization server, wired to the domain at its declared seams.

Grants: authorization code (+ strict PKCE, + OpenID Connect), refresh token (rotation with
reuse detection), client credentials. Token generator: RFC 9068 JWT access tokens signed with
the key ring's cached key objects. Client authentication: client_secret_basic/post, none,
private_key_jwt (RFC 7523). Endpoints: introspection (RFC 7662), revocation (RFC 7009),
RP-initiated logout.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Request, grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.grants.util import is_openid_scope, validate_nonce
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import current_app
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp import audit
from idp.clients import cache as client_cache
from idp.clients import services as client_services
from idp.extensions import db
from idp.identity.models import IdentityStatus
from idp.identity.services import resolve as resolve_identity
from idp.oidc import acting, tokens
from idp.oidc.adapters import AuthCode, OAuthClient, Principal, RefreshTokenCredential
from idp.oidc.claims import legacy_claims
from idp.oidc.keys import get_keyring
from idp.oidc.logout import end_browser_session, note_client
from idp.oidc.signing import signing_key_set
from idp.oidc.subjects import issue_subject
from idp.store import get_store
from idp.timeutil import utcnow

ACCESS_TOKEN_ALG = "RS256"
# How long a redeemed code is remembered, to revoke what it gave if it is presented again.
CODE_REUSE_MEMORY = 600


def code_key(code: str) -> str:
    return "code:" + hashlib.sha256(code.encode()).hexdigest()


def _reuse_key(code: str) -> str:
    return "code-used:" + hashlib.sha256(code.encode()).hexdigest()


def load_client(client_id: str | None) -> OAuthClient | None:
    if not client_id or not isinstance(client_id, str) or len(client_id) > 64:
        return None
    model = client_cache.lookup(client_id)
    if model is None or not model.active:
        return None
    return OAuthClient(model, current_app.config)


def principal_for(identity_id, client: OAuthClient, *, sid, auth_time, acr, amr,
                  acting_for=None, scopes=()) -> Principal | None:
    """The person as this client sees them; acting for a business when acting_for names one
    (None when they may no longer act for it here)."""
    sub = issue_subject(identity_id, client.model, salt=current_app.config["PAIRWISE_SALT"])
    principal = Principal(str(identity_id), sub, sid, int(auth_time), acr, list(amr))
    if acting_for:
        return acting.act_for(principal, acting_for, client, scopes)
    return principal


class IdpServer(AuthorizationServer):
    def create_oauth2_request(self, request):
        # A pending authorization request comes back from the store as a plain dict.
        if isinstance(request, dict):
            req = OAuth2Request("GET", current_app.config["ISSUER"] + "/oauth2/authorize")
            req.payload = BasicOAuth2Payload(request)
            return req
        return super().create_oauth2_request(request)

    def query_client(self, client_id):
        return load_client(client_id)

    def save_token(self, token, request):
        _after_token(token, request)

    def handle_response(self, status_code, payload, headers):
        response = super().handle_response(status_code, payload, headers)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response


class StrictCodeChallenge(CodeChallenge):
    """PKCE with S256 only; required for public clients and for clients that need it."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        client: OAuthClient = grant.request.client
        if not data.get("code_challenge") and (client.is_public or client.model.require_pkce):
            raise InvalidRequestError("PKCE is required: send code_challenge with S256.")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        if not data.get("code_challenge") and not is_openid_scope(grant.request.scope):
            # Without PKCE the nonce binds the code to the RP's session, and only an
            # OpenID request has one.
            raise InvalidRequestError("PKCE is required for a request without the openid scope.")
        super().validate_code_challenge(grant, redirect_uri)


class IdpOpenIDCode(OpenIDCode):
    def exists_nonce(self, nonce, request):
        # Replay of a nonce is the RP's to detect; codes are single-use here.
        return False

    def validate_openid_authorization_request(self, grant, redirect_uri):
        # Without PKCE, the nonce is the only binding of the code to the RP's session.
        # Decided per request: this extension object is shared by every request and thread.
        client: OAuthClient = grant.request.client
        validate_nonce(grant.request, self.exists_nonce, required=not client.model.require_pkce)

    def resolve_client_private_key(self, client):
        return signing_key_set(self.get_client_algorithm(client))

    def get_client_algorithm(self, client):
        return client.id_token_signed_response_alg

    def get_encode_header(self, client):
        return {"alg": self.get_client_algorithm(client), "typ": "JWT"}

    def get_client_claims(self, client):
        now = int(time.time())
        return {
            "iss": current_app.config["ISSUER"],
            "aud": [client.get_client_id()],
            "iat": now,
            "exp": now + client.model.id_token_lifetime,
        }

    def encode_id_token(self, token, request):
        request.user.client_id = request.client.get_client_id()
        return super().encode_id_token(token, request)

    def generate_user_info(self, user: Principal, scope):
        # The ID token carries who and how; profile claims come from userinfo.
        info = UserInfo(sub=user.sub)
        if user.sid:
            info["sid"] = user.sid
        info.update(acting.token_claims(user))  # business claims and act, when acting
        if "legacy" in (scope or "").split() and not user.acting_for:
            info.update(legacy_claims(user.identity_id, user.client_id))
        return info


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none", "private_key_jwt"]

    def save_authorization_code(self, code, request):
        principal: Principal = request.user
        data = request.payload.data
        item = AuthCode(
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            identity_id=principal.identity_id,
            sub=principal.sub,
            sid=principal.sid,
            auth_time=principal.auth_time,
            acr=principal.acr,
            amr=principal.amr,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            acting_for=principal.acting_for,
        )
        get_store().set(code_key(code), item.to_json(), current_app.config["AUTH_CODE_TTL"])

    def query_authorization_code(self, code, client):
        if not code or len(code) > 256:
            return None
        store = get_store()
        raw = store.take(code_key(code))
        if raw is None:
            _revoke_after_code_reuse(store, code)
            return None
        item = AuthCode.from_json(raw)
        # Remember the redemption so a second one revokes what this one issues.
        store.set(_reuse_key(code), json.dumps({"client_id": item.client_id}), CODE_REUSE_MEMORY)
        if item.client_id != client.get_client_id():
            return None
        self.request._redeemed_code = code
        return item

    def delete_authorization_code(self, authorization_code):
        pass  # taken from the store at redemption (single use)

    def authenticate_user(self, authorization_code: AuthCode):
        identity = resolve_identity(authorization_code.identity_id)
        if identity is None or identity.status != IdentityStatus.ACTIVE:
            return None
        code = authorization_code
        if str(identity.id) != code.identity_id or code.acting_for:
            # Merged since the code was issued: the tokens are the survivor's. Acting for a
            # business: checked again (None, so invalid_grant, when no longer allowed).
            principal = principal_for(identity.id, self.request.client, sid=code.sid,
                                      auth_time=code.auth_time, acr=code.acr, amr=code.amr,
                                      acting_for=code.acting_for, scopes=code.scope.split())
        else:
            principal = code.principal()
        if principal is not None and "refresh_token" in self.request.client.model.grant_types:
            # Drawn now so the access token names the family the refresh token will start.
            principal.family_id = str(uuid.uuid4())
        return principal


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none", "private_key_jwt"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        # Claimed (marked rotated) first, in one statement: the rest of the grant runs in the
        # same transaction, and any refusal below rolls the claim back.
        now = utcnow()
        row = tokens.claim(refresh_token, now=now)
        if row is None:
            self._refuse_reuse(tokens.find(refresh_token), now)
            return None
        if row.client_id != self.request.client.get_client_id() or not tokens.usable(row, now=now, claimed=True):
            db.session.rollback()
            return None
        # Follows a merge to the survivor (the merge also moves the token rows).
        identity = resolve_identity(row.identity_id)
        if identity is None or identity.status != IdentityStatus.ACTIVE:
            db.session.rollback()
            return None
        if not acting.refresh_allowed(row, self.request.client.get_client_id()):
            db.session.rollback()
            return None  # the representation it was issued under ended, or the business did
        return RefreshTokenCredential(row, identity_id=identity.id)

    @staticmethod
    def _refuse_reuse(row, now) -> None:
        if row is None or row.rotated_at is None or row.revoked_at is not None:
            return  # unknown or revoked: simply invalid
        # A rotated token came back: someone holds a stolen copy. End the family.
        tokens.revoke_family(row.family_id, now=now, reason="refresh_token_reuse")
        audit.record("token.reuse_detected", actor=f"client:{row.client_id}", target_type="identity",
                     target_id=str(row.identity_id), details={"kind": "refresh_token", "family": row.family_id})
        db.session.commit()

    def authenticate_user(self, credential: RefreshTokenCredential):
        row = credential.row
        principal = principal_for(
            credential.identity_id, self.request.client, sid=row.sid, auth_time=row.auth_time, acr=row.acr,
            amr=row.amr, acting_for=str(row.acting_for) if row.acting_for else None, scopes=row.scope.split(),
        )
        if principal is not None:
            principal.family_id = row.family_id
        return principal

    def revoke_old_credential(self, credential: RefreshTokenCredential):
        pass  # claimed in authenticate_refresh_token, committed with the new token


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class AccessTokenGenerator(JWTBearerTokenGenerator):
    """RFC 9068 access tokens: typ at+jwt, aud, client_id, scope, jti, sid."""

    def get_jwks(self):
        return signing_key_set(ACCESS_TOKEN_ALG)

    def get_auth_time(self, user):
        return user.auth_time if user else None

    def get_acr(self, user):
        return user.acr if user else None

    def get_amr(self, user):
        return user.amr if user else None

    def get_extra_claims(self, client, grant_type, user, scope):
        claims = {"sid": user.sid} if user is not None and user.sid else {}
        if user is not None and user.family_id:
            # The refresh-token family it came with: revoking the family denies this token too.
            claims["fid"] = user.family_id
        claims.update(acting.token_claims(user))  # business claims and act, when acting
        return claims

    def access_token_generator(self, client, grant_type, user, scope):
        self.issuer = current_app.config["ISSUER"]
        return super().access_token_generator(client, grant_type, user, scope)


def _expires_in(client: OAuthClient, grant_type) -> int:
    return client.model.access_token_lifetime


def _after_token(token: dict, request) -> None:
    """save_token: add the refresh token, remember what a code redemption produced.

    SQL is committed before the shared store is written: on SQLite the embedded store is
    another connection to the same file and would wait for this transaction's write lock.
    """
    client: OAuthClient = request.client
    principal: Principal | None = request.user
    now = utcnow()
    family = None
    if principal is not None and "refresh_token" in client.model.grant_types:
        old = request.refresh_token.row if isinstance(request.refresh_token, RefreshTokenCredential) else None
        token["refresh_token"], family = tokens.issue(
            client=client.model,
            principal=principal,
            # RFC 6749 §6: a rotated refresh token keeps the grant's scope, even when this
            # access token was asked for less.
            scope=old.scope if old else token.get("scope", ""),
            now=now,
            family_id=old.family_id if old else principal.family_id,
            family_expires_at=old.family_expires_at if old else None,
        )
    else:
        token.pop("refresh_token", None)
    db.session.commit()
    code = getattr(request, "_redeemed_code", None)
    if code is not None:
        # Our own token, just signed: reading its claims back needs no verification.
        access_claims = json.loads(jws.extract_compact(token["access_token"].encode()).payload)
        get_store().set(
            _reuse_key(code),
            json.dumps({"client_id": client.get_client_id(), "family": family,
                        "jti": access_claims["jti"], "exp": access_claims["exp"]}),
            CODE_REUSE_MEMORY,
        )
    if principal is not None and principal.sid:
        note_client(principal.sid, client.get_client_id())
    if principal is not None:
        acting.note(principal, client.get_client_id())


def _revoke_after_code_reuse(store, code: str) -> None:
    raw = store.get(_reuse_key(code))
    if raw is None:
        return
    used = json.loads(raw)
    now = utcnow()
    if used.get("family"):
        tokens.revoke_family(used["family"], now=now, reason="code_reuse")
        audit.record("token.reuse_detected", actor=f"client:{used['client_id']}", target_type="client",
                     target_id=used["client_id"], details={"kind": "authorization_code", "family": used["family"]})
        db.session.commit()
    if used.get("jti"):
        tokens.deny_access_token(store, used["jti"], ttl=int(used["exp"] - time.time()))


class PrivateKeyJWT(JWTBearerClientAssertion):
    """RFC 7523 client authentication with keys the client registered (jwks or jwks_uri)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self):
        super().__init__(validate_jti=True)

    def get_audiences(self):
        issuer = current_app.config["ISSUER"]
        return [issuer, issuer + "/oauth2/token"]

    def validate_jti(self, claims, jti):
        ttl = max(1, int(claims.get("exp", time.time() + 300) - time.time()))
        return get_store().set_if_absent(f"jti:client:{claims['sub']}:{jti}", "1", ttl)

    def resolve_client_public_key(self, client: OAuthClient):
        model = client.model
        if model.jwks:
            return KeySet.import_key_set(model.jwks)
        if model.jwks_uri:
            cache = get_store()
            raw = cache.get("client-jwks:" + model.client_id)
            if raw is None:
                resp = requests.get(model.jwks_uri, timeout=5)
                resp.raise_for_status()
                raw = resp.text
                cache.set("client-jwks:" + model.client_id, raw, 300)
            return KeySet.import_key_set(json.loads(raw))
        return KeySet([])


class IdpIntrospection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def query_token(self, token, token_type_hint):
        return _find_token(token, token_type_hint)

    def check_permission(self, token, client, request):
        # A client introspects only tokens issued to it.
        return token.get("client_id") == client.get_client_id()

    def introspect_token(self, token):
        return token

    def create_introspection_payload(self, token):
        # _find_token gives a dict with "active" computed, not a TokenMixin (Authlib's default
        # calls token.is_expired() and fails); an inactive token reveals nothing else.
        if not token or not token.get("active"):
            return {"active": False}
        return self.introspect_token(token)


class IdpRevocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none", "private_key_jwt"]

    def query_token(self, token_string, token_type_hint):
        found = _find_token(token_string, token_type_hint, include_inactive=True)
        return found or None

    def authenticate_token(self, request, client):
        # Authlib's default calls token.check_client() on what query_token returned (a dict
        # here); the client check is in revoke_token, which answers 200 for another's token.
        self.check_params(request, client)
        return self.query_token(request.form["token"], request.form.get("token_type_hint"))

    def revoke_token(self, token, request):
        if token.get("client_id") != request.client.get_client_id():
            return  # RFC 7009 §2.1: not this client's token; answer 200 without revoking
        now = utcnow()
        if token.get("token_type") == "refresh_token":
            tokens.revoke_family(token["_family"], now=now, reason="revoked_by_client")
            audit.record("token.revoked", actor=f"client:{token['client_id']}", target_type="client",
                         target_id=token["client_id"], details={"kind": "refresh_token", "family": token["_family"]})
            db.session.commit()
        elif token.get("jti"):
            tokens.deny_access_token(get_store(), token["jti"], ttl=int(token["exp"] - time.time()))


def _find_token(value, hint, include_inactive=False) -> dict | None:
    """Introspection view of an access token (JWT) or a refresh token (opaque).

    The hint only orders the lookups: RFC 7009 §2.1 (and RFC 7662 §2.1) require searching
    every token type when the hinted one does not match.
    """
    if not value or not isinstance(value, str) or len(value) > 8192:
        return None
    lookups = [_find_access_token, _find_refresh_token]
    if hint == "refresh_token":
        lookups.reverse()
    for lookup in lookups:
        found = lookup(value)
        if found is not None:
            return found
    return None


def _find_access_token(value: str) -> dict | None:
    if value.count(".") != 2:
        return None
    claims = verify_access_token(value, check_deny=False)
    if claims is None:
        return None
    active = not tokens.access_token_revoked(get_store(), claims) and claims["exp"] > time.time()
    if active and "act" in claims:
        client = load_client(claims.get("client_id"))
        active = acting.access_token_valid(client.model if client else None, claims)
    return {**claims, "active": active, "token_type": "Bearer"}


def _find_refresh_token(value: str) -> dict | None:
    row = tokens.find(value)
    if row is None:
        return None
    client = load_client(row.client_id)
    sub = issue_subject(row.acting_for or row.identity_id, client.model if client else None,
                        salt=current_app.config["PAIRWISE_SALT"])
    return {
        "active": tokens.usable(row, now=utcnow()),
        "token_type": "refresh_token",
        "client_id": row.client_id,
        "scope": row.scope,
        "sub": sub,
        # Stored as naive UTC: never let .timestamp() read them as local time.
        "exp": int(row.expires_at.replace(tzinfo=UTC).timestamp()),
        "iat": int(row.issued_at.replace(tzinfo=UTC).timestamp()),
        "iss": current_app.config["ISSUER"],
        "_family": row.family_id,
    }


def verify_access_token(value: str, *, check_deny: bool = True) -> dict | None:
    """Claims of a valid access token issued here, or None."""
    try:
        token = jwt.decode(value, get_keyring().key_set(), algorithms=[ACCESS_TOKEN_ALG])
    except (JoseError, ValueError):
        return None
    if token.header.get("typ") != "at+jwt":
        return None
    claims = dict(token.claims)
    if claims.get("iss") != current_app.config["ISSUER"] or claims.get("exp", 0) <= time.time():
        return None
    if check_deny and tokens.access_token_revoked(get_store(), claims):
        return None
    return claims


class IdpEndSession(EndSessionEndpoint):
    def get_server_jwks(self):
        return get_keyring().key_set()

    def get_algorithms(self):
        return ["RS256", "ES256"]

    def resolve_client_from_id_token_claims(self, id_token_claims):
        # Our ID tokens carry aud as a one-element list; Authlib resolves only a string.
        aud = id_token_claims.get("aud")
        if isinstance(aud, list) and len(aud) == 1:
            aud = aud[0]
        return self.server.query_client(aud) if isinstance(aud, str) else None

    def validate_request(self, request):
        req = super().validate_request(request)
        if req.id_token_claims is not None:
            # Access and logout tokens are signed with the same keys and carry sid and aud too:
            # only an ID token (typ JWT) of this issuer is a hint (RFC 8725 §3.11).
            typ = jws.extract_compact(request.payload.data["id_token_hint"].encode()).headers().get("typ")
            if typ != "JWT" or req.id_token_claims.get("iss") != current_app.config["ISSUER"]:
                raise InvalidRequestError("id_token_hint is not an ID token issued here.")
        return req

    def end_session(self, end_session_request):
        claims = end_session_request.id_token_claims or {}
        end_browser_session(reason="rp_initiated_logout", sid=claims.get("sid"))


def create_server(app) -> IdpServer:
    server = IdpServer()
    server.init_app(app, query_client=load_client)
    server.register_token_generator(
        "default", AccessTokenGenerator(issuer=app.config["ISSUER"], alg=ACCESS_TOKEN_ALG, expires_generator=_expires_in)
    )
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    server.register_grant(AuthorizationCodeGrant, [StrictCodeChallenge(required=True), IdpOpenIDCode(require_nonce=False)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)

    class Issuer(IssuerParameter):
        def get_issuer(self):
            return current_app.config["ISSUER"]

    server.register_extension(Issuer())
    server.register_endpoint(IdpIntrospection)
    server.register_endpoint(IdpRevocation)
    server.register_endpoint(IdpEndSession)
    app.extensions["idp_oauth_server"] = server
    return server


def get_server() -> IdpServer:
    return current_app.extensions["idp_oauth_server"]


__all__ = ["create_server", "get_server", "verify_access_token", "principal_for", "load_client", "client_services"]
