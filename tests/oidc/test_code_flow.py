"""The authorization code flow end to end through the test client, with exact error codes."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.oidc import (
    REDIRECT,
    authorize_url,
    exchange,
    get_code,
    log_in,
    make_citizen,
    make_client,
    pkce_pair,
    query_of,
)


def test_full_code_flow(app, client):
    client_id, secret = make_client(app)
    identity_id = make_citizen(app)
    log_in(client)
    code, verifier, query = get_code(client, client_id)
    assert query["state"] == "st-1"
    assert query["iss"] == app.config["ISSUER"]
    resp = exchange(client, client_id, secret, code, verifier)
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    jwks = KeySet.import_key_set(client.get("/oauth2/jwks").get_json())
    id_token = jwt.decode(body["id_token"], jwks, algorithms=["RS256"])
    claims = id_token.claims
    assert claims["iss"] == app.config["ISSUER"]
    assert claims["aud"] == [client_id]
    assert claims["sub"] == str(identity_id)
    assert claims["nonce"] == "n-1"
    assert claims["acr"] == "urn:eid:loa:low" and claims["amr"] == ["pwd"]
    for name in ("auth_time", "sid", "at_hash", "exp", "iat"):
        assert name in claims
    access = jwt.decode(body["access_token"], jwks, algorithms=["RS256"])
    assert access.header["typ"] == "at+jwt"
    assert access.claims["client_id"] == client_id
    assert access.claims["sid"] == claims["sid"]
    assert "refresh_token" in body
    info = client.get("/oauth2/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.status_code == 200, info.get_data(as_text=True)
    assert info.get_json()["name"] == "Nguyễn Văn An"
    assert info.get_json()["family_name"] == "Nguyễn"


def test_code_is_single_use_and_reuse_revokes(app, client):
    client_id, secret = make_client(app)
    make_citizen(app)
    log_in(client)
    code, verifier, _ = get_code(client, client_id)
    first = exchange(client, client_id, secret, code, verifier).get_json()
    second = exchange(client, client_id, secret, code, verifier)
    assert second.status_code == 400 and second.get_json()["error"] == "invalid_grant"
    # What the first redemption issued is now dead.
    refreshed = client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers={"Authorization": exchange.__globals__["basic"](client_id, secret)["Authorization"]},
    )
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    info = client.get("/oauth2/userinfo", headers={"Authorization": "Bearer " + first["access_token"]})
    assert info.status_code == 401


def test_unknown_client_gets_error_page_not_redirect(client):
    resp = client.get(authorize_url("nope", challenge=pkce_pair()[1]))
    assert resp.status_code == 400
    assert "invalid_client" in resp.get_data(as_text=True)


def test_unregistered_redirect_uri_gets_error_page(app, client):
    client_id, _ = make_client(app)
    resp = client.get(authorize_url(client_id, challenge=pkce_pair()[1], redirect_uri="https://evil.example/cb"))
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_missing_pkce_redirects_invalid_request(app, client):
    client_id, _ = make_client(app)
    resp = client.get(authorize_url(client_id))
    assert resp.status_code == 302
    q = query_of(resp.headers["Location"])
    assert resp.headers["Location"].startswith(REDIRECT)
    assert q["error"] == "invalid_request" and q["state"] == "st-1" and q["iss"] == app.config["ISSUER"]


def test_plain_pkce_refused(app, client):
    client_id, _ = make_client(app)
    v, _ = pkce_pair()
    resp = client.get(authorize_url(client_id, code_challenge=v, code_challenge_method="plain"))
    assert query_of(resp.headers["Location"])["error"] == "invalid_request"


def test_prompt_none_without_session(app, client):
    client_id, _ = make_client(app)
    resp = client.get(authorize_url(client_id, challenge=pkce_pair()[1], prompt="none"))
    assert query_of(resp.headers["Location"])["error"] == "login_required"
