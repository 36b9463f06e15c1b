"""The token endpoint: every grant, client authentication and malformed input, with exact errors."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select, update

from idp.clients import services as client_services
from idp.extensions import db
from idp.oidc.models import RefreshToken
from idp.timeutil import utcnow
from tests.support.oidc import (
    REDIRECT,
    TOKEN_URL,
    basic,
    bearer,
    code_flow_tokens,
    decode_jwt,
    exchange,
    get_code,
    introspect,
    log_in,
    make_citizen,
    make_client,
    refresh,
    token_post,
)

FORM = "application/x-www-form-urlencoded"


def _error(resp, status=400):
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    assert resp.headers.get("Cache-Control") == "no-store", resp.headers
    body = resp.get_json()
    assert isinstance(body, dict) and "error" in body, body
    return body["error"]


@pytest.fixture
def rp(app):
    """A confidential client (client_secret_basic, code + refresh) and a logged-in citizen."""
    client_id, secret = make_client(app)
    identity_id = make_citizen(app)
    return client_id, secret, identity_id


# --- authorization_code ----------------------------------------------------------------------

def test_code_exchange_success_body(app, client, rp):
    client_id, secret, identity_id = rp
    log_in(client)
    code, verifier, _ = get_code(client, client_id, scope="openid profile email")
    resp = exchange(client, client_id, secret, code, verifier)
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"
    body = resp.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert set(body["scope"].split()) == {"openid", "profile", "email"}
    assert body["id_token"] and body["refresh_token"] and body["access_token"]
    access = decode_jwt(client, body["access_token"])
    assert access.claims["sub"] == str(identity_id)
    assert access.claims["client_id"] == client_id
    assert access.claims["exp"] - access.claims["iat"] == 600


def test_no_refresh_token_without_the_grant(app, client):
    client_id, secret = make_client(app, grant_types=["authorization_code"])
    make_citizen(app)
    log_in(client)
    body = code_flow_tokens(client, client_id, secret)
    assert "refresh_token" not in body
    assert body["id_token"]


def test_second_redemption_revokes_what_the_first_gave(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    first = exchange(client, client_id, secret, code, verifier)
    assert first.status_code == 200
    tokens = first.get_json()
    # Both work before the replay.
    assert client.get("/oauth2/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    assert introspect(client, client_id, secret, tokens["access_token"]).get_json()["active"] is True

    second = exchange(client, client_id, secret, code, verifier)
    assert _error(second) == "invalid_grant"

    assert client.get("/oauth2/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert introspect(client, client_id, secret, tokens["access_token"]).get_json() == {"active": False}
    assert introspect(client, client_id, secret, tokens["refresh_token"]).get_json() == {"active": False}
    assert _error(refresh(client, client_id, secret, tokens["refresh_token"])) == "invalid_grant"


def test_code_of_another_client_is_invalid_grant(app, client, rp):
    client_id, secret, _ = rp
    other_id, other_secret = make_client(app)
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    resp = exchange(client, other_id, other_secret, code, verifier)
    assert _error(resp) == "invalid_grant"


def test_other_redirect_uri_is_invalid_grant(app, client):
    client_id, secret = make_client(app, redirect_uris=[REDIRECT, "http://127.0.0.1:9000/other"])
    make_citizen(app)
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    resp = exchange(client, client_id, secret, code, verifier, redirect_uri="http://127.0.0.1:9000/other")
    assert _error(resp) == "invalid_grant"


def test_missing_redirect_uri_is_invalid_grant(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    assert _error(token_post(client, data, client_id=client_id, secret=secret)) == "invalid_grant"


def test_wrong_verifier_is_invalid_grant(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    code, _, _ = get_code(client, client_id)
    resp = exchange(client, client_id, secret, code, "x" * 64)
    assert _error(resp) == "invalid_grant"


def test_missing_verifier_after_challenge_is_invalid_request(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    code, _, _ = get_code(client, client_id)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    assert _error(token_post(client, data, client_id=client_id, secret=secret)) == "invalid_request"


def test_unknown_code_is_invalid_grant(app, client, rp):
    client_id, secret, _ = rp
    assert _error(exchange(client, client_id, secret, "no-such-code", "v" * 50)) == "invalid_grant"


def test_missing_code_is_invalid_request(app, client, rp):
    client_id, secret, _ = rp
    data = {"grant_type": "authorization_code", "redirect_uri": REDIRECT}
    assert _error(token_post(client, data, client_id=client_id, secret=secret)) == "invalid_request"


def _authorize_without_pkce(client, client_id, **params):
    from tests.support.oidc import authorize_url

    return client.get(authorize_url(client_id, **params))


def test_client_without_pkce_needs_nonce_and_refuses_a_verifier(app, client):
    from tests.support.oidc import approve_consent, query_of

    client_id, secret = make_client(app, require_pkce=False)
    make_citizen(app)
    log_in(client)

    # Without PKCE the nonce is required.
    resp = _authorize_without_pkce(client, client_id, nonce=None)
    assert resp.status_code == 302
    query = query_of(resp.headers["Location"])
    assert query["error"] == "invalid_request" and query["state"] == "st-1"

    # With a nonce: a code, and the nonce comes back in the ID token.
    resp = _authorize_without_pkce(client, client_id, nonce="n-legacy")
    if resp.status_code == 200:
        resp = approve_consent(client, resp)
    code = query_of(resp.headers["Location"])["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    ok = token_post(client, data, client_id=client_id, secret=secret)
    assert ok.status_code == 200, ok.get_json()
    assert decode_jwt(client, ok.get_json()["id_token"]).claims["nonce"] == "n-legacy"

    # A verifier for a code issued without a challenge is a downgrade attempt.
    resp = _authorize_without_pkce(client, client_id, nonce="n-2")
    code = query_of(resp.headers["Location"])["code"]
    bad = token_post(client, {**data, "code": code, "code_verifier": "v" * 50}, client_id=client_id, secret=secret)
    assert _error(bad) == "invalid_request"


def test_wrong_client_secret_is_invalid_client_401(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    resp = exchange(client, client_id, secret + "x", code, verifier)
    assert _error(resp, 401) == "invalid_client"
    assert resp.headers.get("WWW-Authenticate", "").startswith("Basic")
    # The code was not consumed by the failed authentication.
    assert exchange(client, client_id, secret, code, verifier).status_code == 200


def test_unknown_client_is_invalid_client(app, client):
    resp = token_post(client, {"grant_type": "client_credentials"}, client_id="nobody", secret="x")
    assert _error(resp, 401) == "invalid_client"


def test_no_client_authentication_is_invalid_client(app, client, rp):
    client_id, _, _ = rp
    resp = token_post(client, {"grant_type": "authorization_code", "code": "c", "client_id": client_id})
    assert _error(resp, 401) == "invalid_client"


def test_client_secret_post(app, client):
    client_id, secret = make_client(app, auth_method="client_secret_post")
    make_citizen(app)
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    # HTTP Basic is not the method this client registered.
    resp = exchange(client, client_id, secret, code, verifier)
    assert _error(resp, 401) == "invalid_client"
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, "client_id": client_id, "client_secret": secret}
    resp = token_post(client, data)
    assert resp.status_code == 200, resp.get_json()


def test_basic_client_refused_with_client_secret_post(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, "client_id": client_id, "client_secret": secret}
    assert _error(token_post(client, data), 401) == "invalid_client"


def test_public_client_with_pkce(app, client):
    client_id, secret = make_client(app, client_type="public")
    assert secret is None
    make_citizen(app)
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id}
    # Without the verifier the public client is refused.
    assert _error(token_post(client, data)) == "invalid_request"
    code, verifier, _ = get_code(client, client_id)
    resp = token_post(client, {**data, "code": code, "code_verifier": verifier})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["id_token"] and body["refresh_token"]
    # Its refresh token works with the client id alone (RFC 6749 §6), and rotates.
    again = token_post(client, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                "client_id": client_id})
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["refresh_token"] != body["refresh_token"]


def test_public_client_cannot_pretend_to_be_confidential(app, client, rp):
    # client_id in the body without a secret does not authenticate a confidential client.
    client_id, _, _ = rp
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, "client_id": client_id}
    assert _error(token_post(client, data), 401) == "invalid_client"


def test_disabled_client_is_invalid_client(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    with app.app_context():
        client_services.disable_client(client_services.get_client(client_id), now=utcnow())
    resp = exchange(client, client_id, secret, code, verifier)
    assert _error(resp, 401) == "invalid_client"


def test_error_responses_are_not_cached(app, client, rp):
    client_id, secret, _ = rp
    for resp in (
        exchange(client, client_id, secret, "nope", "v" * 50),  # Authlib error
        client.post(TOKEN_URL, json={"grant_type": "client_credentials"}),  # our own pre-check
        token_post(client, {"grant_type": "client_credentials"}, client_id=client_id, secret="bad"),
    ):
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.get_json()["error"]


# --- refresh_token -------------------------------------------------------------------------

def test_refresh_rotation_and_reuse_revokes_family(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    first = code_flow_tokens(client, client_id, secret)
    r1 = first["refresh_token"]
    second = refresh(client, client_id, secret, r1)
    assert second.status_code == 200, second.get_json()
    assert second.headers["Cache-Control"] == "no-store"
    body2 = second.get_json()
    r2 = body2["refresh_token"]
    assert r2 != r1
    assert body2["token_type"] == "Bearer" and body2["access_token"]
    third = refresh(client, client_id, secret, r2)
    assert third.status_code == 200
    r3 = third.get_json()["refresh_token"]
    assert len({r1, r2, r3}) == 3

    # r1 was rotated: presenting it again ends the whole family, r3 included.
    assert _error(refresh(client, client_id, secret, r1)) == "invalid_grant"
    assert _error(refresh(client, client_id, secret, r3)) == "invalid_grant"
    with app.app_context():
        rows = db.session.scalars(select(RefreshToken)).all()
        assert len(rows) == 3
        assert all(row.revoked_at is not None for row in rows)
        assert {row.revoked_reason for row in rows} == {"refresh_token_reuse"}


def test_refresh_scope_can_only_narrow(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    first = code_flow_tokens(client, client_id, secret, scope="openid profile email")
    narrow = refresh(client, client_id, secret, first["refresh_token"], scope="openid email")
    assert narrow.status_code == 200, narrow.get_json()
    body = narrow.get_json()
    assert set(body["scope"].split()) == {"openid", "email"}
    assert set(decode_jwt(client, body["access_token"]).claims["scope"].split()) == {"openid", "email"}
    info = client.get("/oauth2/userinfo", headers=bearer(body["access_token"])).get_json()
    assert "email" in info and "name" not in info

    # RFC 6749 §6: the new refresh token keeps the original grant's scope.
    full = refresh(client, client_id, secret, body["refresh_token"])
    assert full.status_code == 200, full.get_json()
    assert set(full.get_json()["scope"].split()) == {"openid", "profile", "email"}

    wider = refresh(client, client_id, secret, full.get_json()["refresh_token"], scope="openid profile phone")
    assert _error(wider) == "invalid_scope"
    # A refused request did not use the token up: it still rotates once.
    again = refresh(client, client_id, secret, full.get_json()["refresh_token"])
    assert again.status_code == 200, again.get_json()


def test_one_refresh_token_presented_twice_at_once(make_app, app, rp):
    """Two workers get the same token at the same moment: one rotates it, the other is reuse."""
    import threading

    client_id, secret, _ = rp
    other = make_app()
    browser = app.test_client()
    log_in(browser)
    token = code_flow_tokens(browser, client_id, secret)["refresh_token"]
    barrier = threading.Barrier(2)
    answers = []

    def present(instance):
        http = instance.test_client()
        barrier.wait()
        answers.append(refresh(http, client_id, secret, token))

    threads = [threading.Thread(target=present, args=(a,)) for a in (app, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 400], [r.get_json() for r in answers]
    assert _error(next(r for r in answers if r.status_code == 400)) == "invalid_grant"
    # The loser's presentation is reuse: the whole family, the winner's new token included, ends.
    winner = next(r for r in answers if r.status_code == 200).get_json()["refresh_token"]
    assert _error(refresh(browser, client_id, secret, winner)) == "invalid_grant"
    with app.app_context():
        rows = db.session.scalars(select(RefreshToken)).all()
        assert len(rows) == 2 and all(row.revoked_reason == "refresh_token_reuse" for row in rows)


def test_refresh_family_absolute_lifetime(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    first = code_flow_tokens(client, client_id, secret)
    second = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    with app.app_context():
        db.session.execute(update(RefreshToken).values(family_expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert _error(refresh(client, client_id, secret, second["refresh_token"])) == "invalid_grant"


def test_refresh_idle_expiry(app, client, rp):
    client_id, secret, _ = rp
    log_in(client)
    first = code_flow_tokens(client, client_id, secret)
    with app.app_context():
        db.session.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert _error(refresh(client, client_id, secret, first["refresh_token"])) == "invalid_grant"


def test_refresh_family_lifetime_is_kept_across_rotations(app, client):
    client_id, secret = make_client(app, refresh_token_lifetime=3600, refresh_token_idle=600)
    make_citizen(app)
    log_in(client)
    first = code_flow_tokens(client, client_id, secret)
    refresh(client, client_id, secret, first["refresh_token"])
    with app.app_context():
        rows = db.session.scalars(select(RefreshToken).order_by(RefreshToken.id)).all()
        assert len(rows) == 2
        assert rows[0].family_id == rows[1].family_id
        assert rows[0].family_expires_at == rows[1].family_expires_at
        assert rows[1].expires_at <= rows[1].family_expires_at


def test_refresh_token_of_another_client(app, client, rp):
    client_id, secret, _ = rp
    other_id, other_secret = make_client(app)
    log_in(client)
    tokens = code_flow_tokens(client, client_id, secret)
    assert _error(refresh(client, other_id, other_secret, tokens["refresh_token"])) == "invalid_grant"
    # The owner's token still works.
    assert refresh(client, client_id, secret, tokens["refresh_token"]).status_code == 200


def test_refresh_missing_or_garbage(app, client, rp):
    client_id, secret, _ = rp
    resp = token_post(client, {"grant_type": "refresh_token"}, client_id=client_id, secret=secret)
    assert _error(resp) == "invalid_request"
    assert _error(refresh(client, client_id, secret, "garbage")) == "invalid_grant"
    assert _error(refresh(client, client_id, secret, "g" * 600)) == "invalid_grant"


def test_refresh_without_the_grant_is_unauthorized_client(app, client):
    client_id, secret = make_client(app, grant_types=["authorization_code"])
    assert _error(refresh(client, client_id, secret, "whatever")) == "unauthorized_client"


def test_identity_disabled_after_issuance(app, client, rp):
    from idp.identity.models import Identity, IdentityStatus

    client_id, secret, identity_id = rp
    log_in(client)
    tokens = code_flow_tokens(client, client_id, secret)
    code, verifier, _ = get_code(client, client_id)
    with app.app_context():
        db.session.get(Identity, identity_id).status = IdentityStatus.DISABLED
        db.session.commit()
    assert _error(exchange(client, client_id, secret, code, verifier)) == "invalid_grant"
    assert _error(refresh(client, client_id, secret, tokens["refresh_token"])) == "invalid_grant"
    assert client.get("/oauth2/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


# --- client_credentials --------------------------------------------------------------------

def test_client_credentials(app, client):
    client_id, secret = make_client(
        app, grant_types=["client_credentials"], redirect_uris=[], scopes=["openid", "profile"]
    )
    resp = token_post(client, {"grant_type": "client_credentials", "scope": "profile email"},
                      client_id=client_id, secret=secret)
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "profile"  # email is not among the client's scopes
    assert "refresh_token" not in body and "id_token" not in body
    claims = decode_jwt(client, body["access_token"]).claims
    assert claims["sub"] == client_id and claims["client_id"] == client_id
    # A token without a person behind it gets no userinfo.
    openid = token_post(client, {"grant_type": "client_credentials", "scope": "openid"},
                        client_id=client_id, secret=secret).get_json()
    assert client.get("/oauth2/userinfo", headers=bearer(openid["access_token"])).status_code == 401
    # Introspection shows it as the client's own token.
    info = introspect(client, client_id, secret, body["access_token"]).get_json()
    assert info["active"] is True and info["sub"] == client_id


def test_client_credentials_without_the_grant(app, client, rp):
    client_id, secret, _ = rp
    resp = token_post(client, {"grant_type": "client_credentials"}, client_id=client_id, secret=secret)
    assert _error(resp) == "unauthorized_client"


def test_client_credentials_for_a_public_client(app, client):
    client_id, _ = make_client(app, client_type="public")
    resp = token_post(client, {"grant_type": "client_credentials", "client_id": client_id})
    # "none" is not an authentication method of this grant: the client is not authenticated.
    assert _error(resp, 401) == "invalid_client"


# --- private_key_jwt -----------------------------------------------------------------------

def _assertion(client_id, key, *, aud="http://localhost/oauth2/token", jti=None, **claims):
    now = int(time.time())
    payload = {"iss": client_id, "sub": client_id, "aud": aud, "jti": jti or str(uuid.uuid4()),
               "iat": now, "exp": now + 120, **claims}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key)


@pytest.fixture
def jwt_client(app):
    key = RSAKey.generate_key(2048, parameters={"kid": "rp-key-1"})
    client_id, secret = make_client(
        app, auth_method="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]},
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
    )
    assert secret is None
    return client_id, key


def _jwt_auth(client_id, assertion):
    return {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion, "client_id": client_id}


def test_private_key_jwt(app, client, jwt_client):
    client_id, key = jwt_client
    assertion = _assertion(client_id, key)
    resp = token_post(client, {"grant_type": "client_credentials", "scope": "openid",
                               **_jwt_auth(client_id, assertion)})
    assert resp.status_code == 200, resp.get_json()
    # The same assertion again: its jti was used.
    again = token_post(client, {"grant_type": "client_credentials", **_jwt_auth(client_id, assertion)})
    assert _error(again) == "invalid_client"
    # The issuer itself is also an accepted audience.
    resp = token_post(client, {"grant_type": "client_credentials",
                               **_jwt_auth(client_id, _assertion(client_id, key, aud="http://localhost"))})
    assert resp.status_code == 200, resp.get_json()


def test_private_key_jwt_code_flow(app, client, jwt_client):
    client_id, key = jwt_client
    make_citizen(app)
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, **_jwt_auth(client_id, _assertion(client_id, key))}
    resp = token_post(client, data)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    resp = token_post(client, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                               **_jwt_auth(client_id, _assertion(client_id, key))})
    assert resp.status_code == 200, resp.get_json()


def _unsigned(claims: dict) -> str:
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return part({"alg": "none"}) + "." + part(claims) + "."


def test_private_key_jwt_refused(app, client, jwt_client):
    client_id, key = jwt_client
    now = int(time.time())
    assertions = {
        "wrong key": _assertion(client_id, RSAKey.generate_key(2048, parameters={"kid": "rp-key-1"})),
        "wrong audience": _assertion(client_id, key, aud="https://elsewhere.example/token"),
        "expired": _assertion(client_id, key, exp=now - 600),
        "iss is not sub": _assertion(client_id, key, iss="someone-else"),
        "no jti": jwt.encode({"alg": "RS256", "kid": key.kid},
                             {"iss": client_id, "sub": client_id, "aud": "http://localhost/oauth2/token",
                              "exp": now + 60}, key),
        "unsigned": _unsigned({"iss": client_id, "sub": client_id, "jti": "j",
                               "aud": "http://localhost/oauth2/token", "exp": now + 60}),
        "not a JWT": "not.a.jwt",
    }
    for problem, assertion in assertions.items():
        resp = token_post(client, {"grant_type": "client_credentials", **_jwt_auth(client_id, assertion)})
        # Not sent in the Authorization header, so 400 rather than 401 (RFC 6749 §5.2).
        assert resp.status_code == 400, (problem, resp.get_data(as_text=True))
        assert resp.get_json()["error"] == "invalid_client", problem
        assert resp.headers["Cache-Control"] == "no-store"


def test_secret_client_cannot_use_private_key_jwt(app, client, rp, jwt_client):
    # An assertion naming a client_secret_basic client is refused even if well formed.
    client_id, _, _ = rp
    _, key = jwt_client
    resp = token_post(client, {"grant_type": "authorization_code", "code": "x",
                               **_jwt_auth(client_id, _assertion(client_id, key))})
    assert _error(resp) == "invalid_client"


# --- malformed input ------------------------------------------------------------------------

MALFORMED = {
    "repeated": {"data": "grant_type=client_credentials&grant_type=client_credentials", "content_type": FORM},
    "json": {"json": {"grant_type": "client_credentials"}},
    "multipart": {"data": {"grant_type": "client_credentials", "f": (io.BytesIO(b"x"), "f.txt")},
                  "content_type": "multipart/form-data"},
    "long value": {"data": {"grant_type": "authorization_code", "code": "a" * 100_000}},
    "huge body": {"data": {"grant_type": "authorization_code", "code": "a" * 1_000_000}},
    "bad UTF-8, percent-encoded": {"data": b"grant_type=authorization_code&code=%ff%fe", "content_type": FORM},
    "bad UTF-8, raw": {"data": b"grant_type=authorization_code&code=\xff\xfe", "content_type": FORM},
    "truncated UTF-8": {"data": b"grant_type=authorization_code&code=\xc3", "content_type": FORM},
    "bad UTF-8 in a name": {"data": b"grant_type=client_credentials&%ff=1", "content_type": FORM},
    "empty": {"data": {}},
    "missing grant_type": {"data": {"code": "x"}},
    "empty grant_type": {"data": {"grant_type": ""}},
    "text/plain": {"data": "grant_type=client_credentials", "content_type": "text/plain"},
    "query string": {"data": {"grant_type": "authorization_code"}, "query_string": {"code": "x"}},
}


def test_malformed_token_requests_are_400(app, client, rp):
    client_id, secret, _ = rp
    for case, kwargs in MALFORMED.items():
        resp = client.post(TOKEN_URL, headers=basic(client_id, secret), **kwargs)
        assert resp.status_code == 400, (case, resp.status_code, resp.get_data(as_text=True))
        assert resp.get_json()["error"] == "invalid_request", case
        assert resp.headers["Cache-Control"] == "no-store", case


def test_unsupported_grant_types(app, client, rp):
    client_id, secret, _ = rp
    for grant_type in ("password", "implicit", "urn:ietf:params:oauth:grant-type:device_code",
                       "urn:ietf:params:oauth:grant-type:jwt-bearer", "token", "nonsense"):
        data = {"grant_type": grant_type, "username": "001099012345", "password": "x", "scope": "openid"}
        resp = token_post(client, data, client_id=client_id, secret=secret)
        assert _error(resp) == "unsupported_grant_type", grant_type


def test_token_endpoint_only_accepts_post(app, client):
    resp = client.get(TOKEN_URL + "?grant_type=client_credentials")
    assert resp.status_code == 405


def test_oversized_authorization_header_is_not_500(app, client):
    resp = client.post(TOKEN_URL, data={"grant_type": "client_credentials"},
                       headers={"Authorization": "Basic " + "A" * 20_000})
    assert _error(resp, 401) == "invalid_client"


def test_basic_header_not_base64_is_not_500(app, client):
    for value in ("Basic %%%", "Basic " + "w6k=", "Basic Og==", "Bearer abc"):
        resp = client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, headers={"Authorization": value})
        assert _error(resp, 401) == "invalid_client", value
