"""Introspection (RFC 7662) and revocation (RFC 7009): client authentication, ownership,
what each kind of token shows, and that revocation takes effect everywhere."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.oidc.models import RefreshToken
from tests.support.oidc import (
    basic,
    bearer,
    code_flow_tokens,
    decode_jwt,
    introspect,
    log_in,
    make_citizen,
    make_client,
    refresh,
    revoke,
)


@pytest.fixture
def issued(app, client):
    """A client, a citizen and the tokens of one code flow."""
    client_id, secret = make_client(app)
    identity_id = make_citizen(app)
    log_in(client)
    tokens = code_flow_tokens(client, client_id, secret, scope="openid profile email")
    return client_id, secret, identity_id, tokens


def _json_ok(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.get_json()


@pytest.mark.parametrize("endpoint", ["/oauth2/introspect", "/oauth2/revoke"])
def test_client_authentication_is_required(app, client, issued, endpoint):
    client_id, secret, _, tokens = issued
    for headers, data in (
        ({}, {"token": tokens["access_token"]}),
        (basic(client_id, secret + "x"), {"token": tokens["access_token"]}),
        (basic("nobody", "x"), {"token": tokens["access_token"]}),
        ({}, {"token": tokens["access_token"], "client_id": client_id}),  # a confidential client
    ):
        resp = client.post(endpoint, data=data, headers=headers)
        assert resp.status_code == 401, (endpoint, headers, resp.get_data(as_text=True))
        assert resp.get_json()["error"] == "invalid_client"
        assert resp.headers["Cache-Control"] == "no-store"
    # Nothing was revoked by the refused requests.
    assert client.get("/oauth2/userinfo", headers=bearer(tokens["access_token"])).status_code == 200


def test_introspect_access_token(app, client, issued):
    client_id, secret, identity_id, tokens = issued
    body = _json_ok(introspect(client, client_id, secret, tokens["access_token"]))
    claims = decode_jwt(client, tokens["access_token"]).claims
    assert body["active"] is True
    assert set(body["scope"].split()) == {"openid", "profile", "email"}
    assert body["client_id"] == client_id
    assert body["sub"] == str(identity_id)
    assert body["exp"] == claims["exp"] and body["exp"] > time.time()
    assert body["token_type"] == "Bearer"
    assert body["iss"] == app.config["ISSUER"]
    assert "_family" not in body
    # With the right hint, and with a wrong one (the search extends to every type).
    for hint in ("access_token", "refresh_token"):
        assert _json_ok(introspect(client, client_id, secret, tokens["access_token"], token_type_hint=hint))["active"]


def test_introspect_refresh_token(app, client, issued):
    client_id, secret, identity_id, tokens = issued
    body = _json_ok(introspect(client, client_id, secret, tokens["refresh_token"], token_type_hint="refresh_token"))
    assert body["active"] is True
    assert body["client_id"] == client_id
    assert body["sub"] == str(identity_id)
    assert set(body["scope"].split()) == {"openid", "profile", "email"}
    assert body["token_type"] == "refresh_token"
    assert "_family" not in body
    with app.app_context():
        row = db.session.scalars(select(RefreshToken)).one()
        idle = (row.expires_at - row.issued_at).total_seconds()
    # exp is the idle expiry in UTC epoch seconds (the stored times are naive UTC).
    assert abs(body["exp"] - (time.time() + idle)) < 30
    assert abs(body["iat"] - time.time()) < 30
    # A wrong hint still finds it.
    assert _json_ok(introspect(client, client_id, secret, tokens["refresh_token"], token_type_hint="access_token"))["active"]
    # A rotated refresh token is inactive.
    assert refresh(client, client_id, secret, tokens["refresh_token"]).status_code == 200
    assert _json_ok(introspect(client, client_id, secret, tokens["refresh_token"])) == {"active": False}


@pytest.fixture
def local_time_zone(monkeypatch):
    """Run with the server clock in Vietnam's time zone (UTC+7), as a deployment there may."""
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_introspection_times_do_not_depend_on_the_local_time_zone(app, client, issued, local_time_zone):
    client_id, secret, _, tokens = issued
    assert time.localtime().tm_gmtoff == 7 * 3600
    body = _json_ok(introspect(client, client_id, secret, tokens["refresh_token"]))
    assert abs(body["iat"] - time.time()) < 30


def test_introspect_other_clients_token_is_inactive(app, client, issued):
    client_id, secret, _, tokens = issued
    other_id, other_secret = make_client(app)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert _json_ok(introspect(client, other_id, other_secret, token)) == {"active": False}


def test_introspect_garbage_and_malformed(app, client, issued):
    client_id, secret, _, tokens = issued
    # The ID token is not an access token, even though it is signed with the same keys.
    for token in ("garbage", "a.b.c", "x" * 4000, tokens["id_token"], tokens["access_token"][:-4] + "AAAA"):
        assert _json_ok(introspect(client, client_id, secret, token)) == {"active": False}
    # Longer than any parameter may be: refused as malformed, not looked up.
    resp = introspect(client, client_id, secret, "x" * 9000)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"
    resp = client.post("/oauth2/introspect", data={}, headers=basic(client_id, secret))
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"
    # An unknown hint: Authlib answers unsupported_token_type with status 401 (its
    # ForbiddenError), where RFC 6749 §5.2 would have 400; the code is what clients act on.
    resp = introspect(client, client_id, secret, tokens["access_token"], token_type_hint="id_token")
    assert resp.status_code in (400, 401) and resp.get_json()["error"] == "unsupported_token_type"
    for kwargs in (
        {"json": {"token": tokens["access_token"]}},
        {"data": b"token=%ff%fe", "content_type": "application/x-www-form-urlencoded"},
        {"data": f"token={tokens['access_token']}&token=x", "content_type": "application/x-www-form-urlencoded"},
    ):
        resp = client.post("/oauth2/introspect", headers=basic(client_id, secret), **kwargs)
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request", kwargs


def test_public_client_cannot_introspect(app, client):
    client_id, _ = make_client(app, client_type="public")
    resp = client.post("/oauth2/introspect", data={"token": "x", "client_id": client_id})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"


def test_client_secret_post_introspection(app, client):
    client_id, secret = make_client(app, auth_method="client_secret_post")
    make_citizen(app)
    log_in(client)
    from tests.support.oidc import REDIRECT, get_code

    code, verifier, _ = get_code(client, client_id)
    body = client.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                              "code_verifier": verifier, "client_id": client_id,
                                              "client_secret": secret}).get_json()
    resp = client.post("/oauth2/introspect", data={"token": body["access_token"], "client_id": client_id,
                                                   "client_secret": secret})
    assert _json_ok(resp)["active"] is True


def test_revoke_access_token(app, client, issued):
    client_id, secret, _, tokens = issued
    resp = revoke(client, client_id, secret, tokens["access_token"], token_type_hint="access_token")
    assert _json_ok(resp) == {}
    assert _json_ok(introspect(client, client_id, secret, tokens["access_token"])) == {"active": False}
    info = client.get("/oauth2/userinfo", headers=bearer(tokens["access_token"]))
    assert info.status_code == 401
    assert "invalid_token" in info.headers.get("WWW-Authenticate", "")
    # The refresh token was not touched.
    assert refresh(client, client_id, secret, tokens["refresh_token"]).status_code == 200


def test_revoke_refresh_token(app, client, issued):
    client_id, secret, _, tokens = issued
    assert _json_ok(revoke(client, client_id, secret, tokens["refresh_token"], token_type_hint="refresh_token")) == {}
    resp = refresh(client, client_id, secret, tokens["refresh_token"])
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    assert _json_ok(introspect(client, client_id, secret, tokens["refresh_token"])) == {"active": False}
    with app.app_context():
        row = db.session.scalars(select(RefreshToken)).one()
        assert row.revoked_reason == "revoked_by_client"


def test_revoke_refresh_token_with_wrong_hint(app, client, issued):
    """RFC 7009 §2.1: a wrong hint must not leave the token alive."""
    client_id, secret, _, tokens = issued
    assert _json_ok(revoke(client, client_id, secret, tokens["refresh_token"], token_type_hint="access_token")) == {}
    resp = refresh(client, client_id, secret, tokens["refresh_token"])
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    assert _json_ok(revoke(client, client_id, secret, tokens["access_token"], token_type_hint="refresh_token")) == {}
    assert client.get("/oauth2/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


def test_revoke_rotated_refresh_token_ends_the_family(app, client, issued):
    client_id, secret, _, tokens = issued
    newer = refresh(client, client_id, secret, tokens["refresh_token"]).get_json()["refresh_token"]
    assert _json_ok(revoke(client, client_id, secret, newer)) == {}
    resp = refresh(client, client_id, secret, newer)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


def test_revoking_another_clients_token_leaves_it_working(app, client, issued):
    client_id, secret, _, tokens = issued
    other_id, other_secret = make_client(app)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert _json_ok(revoke(client, other_id, other_secret, token)) == {}
    assert client.get("/oauth2/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    assert _json_ok(introspect(client, client_id, secret, tokens["access_token"]))["active"] is True
    assert refresh(client, client_id, secret, tokens["refresh_token"]).status_code == 200


def test_revoke_garbage_is_200(app, client, issued):
    client_id, secret, _, tokens = issued
    for token in ("garbage", "a.b.c", "x" * 4000, tokens["id_token"]):
        assert _json_ok(revoke(client, client_id, secret, token)) == {}
    resp = revoke(client, client_id, secret, "x" * 9000)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"
    # Revoking twice is fine too.
    assert _json_ok(revoke(client, client_id, secret, tokens["access_token"])) == {}
    assert _json_ok(revoke(client, client_id, secret, tokens["access_token"])) == {}
    resp = client.post("/oauth2/revoke", data={}, headers=basic(client_id, secret))
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"


def test_public_client_revokes_its_own_refresh_token(app, client):
    from tests.support.oidc import REDIRECT, get_code

    client_id, _ = make_client(app, client_type="public")
    make_citizen(app)
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    body = client.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                              "redirect_uri": REDIRECT, "code_verifier": verifier}).get_json()
    resp = client.post("/oauth2/revoke", data={"token": body["refresh_token"], "client_id": client_id})
    assert _json_ok(resp) == {}
    resp = client.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                              "client_id": client_id})
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
