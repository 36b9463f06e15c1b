"""Provider metadata (OpenID Connect Discovery 1.0, RFC 8414) and the published JWKS."""

from __future__ import annotations

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc.jwk import KeySet

WELL_KNOWN = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")
ENDPOINTS = (
    "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint",
    "introspection_endpoint", "revocation_endpoint",
)
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def test_metadata(app, client):
    for path in WELL_KNOWN:
        _check_metadata(app, client.get(path))


def _check_metadata(app, resp):
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    meta = resp.get_json()
    issuer = app.config["ISSUER"]
    assert meta["issuer"] == issuer
    for name in ENDPOINTS:
        assert meta[name].startswith(issuer + "/"), name
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["response_modes_supported"]) == {"query", "form_post"}
    assert "implicit" not in meta["grant_types_supported"]
    assert "password" not in meta["grant_types_supported"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["subject_types_supported"]) == {"public", "pairwise"}
    assert set(meta["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    assert "openid" in meta["scopes_supported"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
    # Introspection is for confidential clients only.
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]


def test_both_documents_agree(app, client):
    first, second = (client.get(path).get_json() for path in WELL_KNOWN)
    assert first == second


def test_every_advertised_endpoint_exists(app, client):
    meta = client.get(WELL_KNOWN[0]).get_json()
    issuer = app.config["ISSUER"]
    for name in ENDPOINTS:
        path = meta[name][len(issuer):]
        resp = client.get(path) if name in ("jwks_uri", "authorization_endpoint", "end_session_endpoint",
                                           "userinfo_endpoint") else client.post(path)
        assert resp.status_code not in (404, 405, 500), (name, resp.status_code)


def _https_metadata(make_app, path):
    # Authlib's validators require an https issuer, so these run with a production-like one.
    app = make_app(ISSUER="https://id.example.gov.vn")
    meta = app.test_client().get(path).get_json()
    assert meta["issuer"] == "https://id.example.gov.vn"
    return meta


def test_metadata_validates_as_openid_provider_metadata(make_app):
    OpenIDProviderMetadata(_https_metadata(make_app, WELL_KNOWN[0])).validate()


def test_metadata_validates_as_rfc8414_metadata(make_app):
    # RFC 8414 §2: the *_auth_signing_alg_values_supported entries must be present when
    # private_key_jwt is among an endpoint's methods.
    AuthorizationServerMetadata(_https_metadata(make_app, WELL_KNOWN[1])).validate()


def test_metadata_with_a_path_issuer(make_app):
    app = make_app(ISSUER="https://gov.example.vn/eid")
    meta = app.test_client().get(WELL_KNOWN[0]).get_json()
    assert meta["issuer"] == "https://gov.example.vn/eid"
    for name in ENDPOINTS:
        assert meta[name].startswith("https://gov.example.vn/eid/"), name


def test_jwks(app, client):
    resp = client.get("/oauth2/jwks")
    assert resp.status_code == 200
    assert "max-age" in resp.headers["Cache-Control"]
    jwks = resp.get_json()
    assert jwks["keys"]
    kids = [key["kid"] for key in jwks["keys"]]
    assert len(kids) == len(set(kids))
    for key in jwks["keys"]:
        assert key.get("kid") and key.get("alg") and key.get("use") == "sig", key
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["kty"] in ("RSA", "EC")
    KeySet.import_key_set(jwks)


def test_jwks_publishes_both_algorithms_once_used(app, client):
    from tests.support.oidc import code_flow_tokens, log_in, make_citizen, make_client

    client_id, secret = make_client(app, id_token_signed_response_alg="ES256")
    make_citizen(app)
    log_in(client)
    code_flow_tokens(client, client_id, secret)
    algs = {key["alg"] for key in client.get("/oauth2/jwks").get_json()["keys"]}
    assert {"RS256", "ES256"} <= algs
    for key in client.get("/oauth2/jwks").get_json()["keys"]:
        assert not PRIVATE_MEMBERS & set(key), key
