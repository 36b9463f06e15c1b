"""The brokered login with Authlib's OAuth 2.0 client: authorization URL, code exchange,
ID token validation, userinfo.

Authorization code flow with PKCE S256, state and nonce. Plain values in, plain values out:
the views keep state, nonce and verifier in this browser's session.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from idp.federation import mapping, tokens
from idp.federation.models import UpstreamProvider
from idp.federation.upstream import (
    JwksCache,
    UpstreamError,
    UpstreamUnavailable,
    check_url,
    read_limited,
)
from idp.store import Store


@dataclass
class Attempt:
    """One login attempt's secrets, kept in the browser's session until the callback."""

    state: str
    nonce: str
    verifier: str


@dataclass
class UpstreamLogin:
    person: mapping.UpstreamPerson
    assurance: mapping.Assurance
    id_token: str
    claims: dict  # of the ID token

    @property
    def upstream_sid(self) -> str | None:
        sid = self.claims.get("sid")
        return sid if isinstance(sid, str) and sid else None


def new_attempt() -> Attempt:
    return Attempt(state=generate_token(32), nonce=generate_token(32), verifier=generate_token(64))


def _client(provider: UpstreamProvider, *, client_secret: str | None, redirect_uri: str,
            timeout: float) -> OAuth2Session:
    session = OAuth2Session(
        provider.client_id,
        client_secret,
        scope=provider.scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method=provider.token_auth_method,
        default_timeout=timeout,
    )
    session.max_redirects = 0
    return session


def authorization_url(provider: UpstreamProvider, metadata: dict, attempt: Attempt, *,
                      redirect_uri: str, extra: dict | None = None) -> str:
    client = _client(provider, client_secret=None, redirect_uri=redirect_uri, timeout=1)
    params = {k: v for k, v in (provider.authorize_params or {}).items() if isinstance(v, str)}
    params.update(extra or {})
    url, _ = client.create_authorization_url(
        check_url(metadata["authorization_endpoint"], name="authorization_endpoint"),
        state=attempt.state,
        code_verifier=attempt.verifier,
        nonce=attempt.nonce,
        **params,
    )
    client.close()
    return url


def complete(provider: UpstreamProvider, metadata: dict, attempt: Attempt, *, code: str,
             client_secret: str, redirect_uri: str, store: Store, timeout: float,
             now: float) -> UpstreamLogin:
    """Exchange the code, validate the ID token, read userinfo when the mapping needs it."""
    if not isinstance(code, str) or not code or len(code) > 2048:
        raise UpstreamError("no_code")
    client = _client(provider, client_secret=client_secret, redirect_uri=redirect_uri, timeout=timeout)
    try:
        token = _fetch_token(client, metadata, attempt, code=code, timeout=timeout)
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise UpstreamError("no_id_token")
        keys = JwksCache(slug=provider.slug, jwks_uri=metadata["jwks_uri"], store=store, timeout=timeout)
        claims = tokens.validate_id_token(
            id_token, issuer=provider.issuer, client_id=provider.client_id, nonce=attempt.nonce,
            keys=keys, now=now, access_token=token.get("access_token"),
        )
        merged = dict(claims)
        claim_map = provider.claim_mapping
        if mapping.missing_fields(claim_map, claims) and metadata.get("userinfo_endpoint"):
            info = _userinfo(client, metadata["userinfo_endpoint"], timeout=timeout)
            if info.get("sub") != claims["sub"]:
                raise UpstreamError("userinfo_sub_mismatch")  # Core §5.3.4
            for name, value in info.items():
                merged.setdefault(name, value)  # the signed ID token wins where both speak
    finally:
        client.close()
    person = mapping.map_person(claim_map, merged, issuer=provider.issuer, subject=claims["sub"])
    assurance = mapping.assurance_for(provider.acr_mapping, claims.get("acr"))
    return UpstreamLogin(person=person, assurance=assurance, id_token=id_token, claims=claims)


def _bounded_body(deadline: float):
    """A response hook reading the streamed body within the deadline (requests' own timeout
    bounds each read, not the whole answer)."""

    def hook(resp):
        resp._content = read_limited(resp, deadline)
        resp._content_consumed = True
        return resp

    return hook


def _fetch_token(client: OAuth2Session, metadata: dict, attempt: Attempt, *, code: str, timeout: float) -> dict:
    url = check_url(metadata["token_endpoint"], name="token_endpoint")
    client.register_compliance_hook("access_token_response", _bounded_body(time.monotonic() + timeout))
    try:
        token = client.fetch_token(url, grant_type="authorization_code", code=code, code_verifier=attempt.verifier,
                                   timeout=timeout, allow_redirects=False, stream=True)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise UpstreamUnavailable(f"token endpoint: {exc.__class__.__name__}") from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500:
            raise UpstreamUnavailable(f"token endpoint: HTTP {status}") from None
        raise UpstreamError("token_http_error", f"HTTP {status}") from None
    except OAuthError as exc:
        raise UpstreamError("token_refused", str(exc.error)) from None
    except (requests.RequestException, ValueError) as exc:
        raise UpstreamError("bad_token_response", exc.__class__.__name__) from None
    return dict(token)


def _userinfo(client: OAuth2Session, url: str, *, timeout: float) -> dict:
    check_url(url, name="userinfo_endpoint")
    deadline = time.monotonic() + timeout
    try:
        with client.get(url, timeout=timeout, allow_redirects=False, stream=True,
                        headers={"Accept": "application/json"}) as resp:
            status, content_type = resp.status_code, resp.headers.get("Content-Type", "")
            body = read_limited(resp, deadline) if status == 200 else b""
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise UpstreamUnavailable(f"userinfo: {exc.__class__.__name__}") from None
    except (requests.RequestException, OAuthError) as exc:
        raise UpstreamError("userinfo_failed", exc.__class__.__name__) from None
    if status >= 500:
        raise UpstreamUnavailable(f"userinfo: HTTP {status}")
    if status != 200 or not content_type.startswith("application/json"):
        # A signed (application/jwt) userinfo response is not supported.
        raise UpstreamError("userinfo_failed", f"HTTP {status}")
    try:
        info = json.loads(body)
    except ValueError:
        raise UpstreamError("userinfo_failed", "not JSON") from None
    if not isinstance(info, dict):
        raise UpstreamError("userinfo_failed", "not a JSON object")
    return info
