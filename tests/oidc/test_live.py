"""The provider under a real HTTP server on loopback, driven by a real relying party
(Authlib's requests client) and a requests.Session playing the browser; then two provider
processes sharing the database and the store."""

from __future__ import annotations

import base64
import hashlib
import time
from types import SimpleNamespace

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.oidc.keys import ensure_keys, rotate
from idp.timeutil import utcnow
from tests.support import browser as b
from tests.support.live import LiveServer
from tests.support.oidc import make_citizen, make_client
from tests.support.receiver import Receiver, validate_logout_token

pytestmark = pytest.mark.slow

COOKIE = "idp_sid"


@pytest.fixture
def receiver():
    with Receiver() as rec:
        yield rec


@pytest.fixture
def seeded(make_app, receiver):
    """A client and a citizen, created through an app on the same database and store."""
    app = make_app()
    client_id, secret = make_client(
        app,
        redirect_uris=[receiver.url("/cb")],
        post_logout_redirect_uris=[receiver.url("/bye")],
        backchannel_logout_uri=receiver.url("/bc"),
    )
    identity_id = make_citizen(app)
    with app.app_context():
        ensure_keys(now=utcnow(), config=app.config)  # not left to two servers racing
    return SimpleNamespace(app=app, client_id=client_id, secret=secret, identity_id=identity_id)


def server_config(base_config, **extra) -> dict:
    return {**base_config, "SERVER_NAME": None, "KEY_CACHE_SECONDS": 1, **extra}


# --- helpers -------------------------------------------------------------------------------

def metadata(base: str) -> dict:
    resp = requests.get(base + "/.well-known/openid-configuration", timeout=10)
    assert resp.status_code == 200
    return resp.json()


def fetch_jwks(base: str) -> KeySet:
    resp = requests.get(base + "/oauth2/jwks", timeout=10)
    assert resp.status_code == 200
    return KeySet.import_key_set(resp.json())


def jwks_kids(base: str) -> set[str]:
    return {k["kid"] for k in requests.get(base + "/oauth2/jwks", timeout=10).json()["keys"]}


def rp_session(seeded, receiver) -> OAuth2Session:
    return OAuth2Session(
        seeded.client_id,
        seeded.secret,
        scope="openid profile",
        redirect_uri=receiver.url("/cb"),
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )


def code_flow(seeded, receiver, browser, *, authorize_at: str, token_at: str, issuer: str, **params):
    """A real RP's code flow: returns (token response, verified ID token)."""
    rp = rp_session(seeded, receiver)
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = rp.create_authorization_url(
        authorize_at + "/oauth2/authorize", code_verifier=verifier, nonce=nonce, **params
    )
    assert "code_challenge_method=S256" in url
    location = b.authorize(browser, url, stop_at=receiver.url("/cb"))
    query = b.query_of(location)
    assert query["state"] == state and query["iss"] == issuer and "code" in query
    token = rp.fetch_token(token_at + "/oauth2/token", authorization_response=location, state=state,
                           code_verifier=verifier)
    id_token = verify_id_token(token, fetch_jwks(token_at), issuer=issuer, client_id=seeded.client_id, nonce=nonce)
    return rp, token, id_token


def verify_id_token(token: dict, jwks: KeySet, *, issuer: str, client_id: str, nonce: str):
    """What an RP checks (OIDC Core 3.1.3.7), with the keys fetched over HTTP."""
    decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
    claims = decoded.claims
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
        sid={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(claims)
    assert claims["aud"] == [client_id]
    # at_hash: left half of SHA-256 of the access token.
    digest = hashlib.sha256(token["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert decoded.header["alg"] == "RS256" and decoded.header["kid"]
    return decoded


def refresh_raw(base: str, seeded, refresh_token: str) -> requests.Response:
    return requests.post(
        base + "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(seeded.client_id, seeded.secret),
        timeout=10,
    )


def account_status(base: str, cookie_value: str) -> int:
    """The account page for a fresh browser holding only this SSO cookie."""
    fresh = requests.Session()
    fresh.cookies.set(COOKIE, cookie_value, domain="127.0.0.1", path="/")
    resp = fresh.get(base + "/account", allow_redirects=False, timeout=10)
    if resp.status_code == 302:
        assert "/login" in resp.headers["Location"]
    return resp.status_code


def poll(predicate, *, timeout: float = 10.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


# --- one provider, a real RP ---------------------------------------------------------------

def test_real_relying_party_against_live_provider(seeded, receiver, base_config):
    started = time.monotonic()
    config = server_config(base_config, BACKCHANNEL_WORKER=True)
    with requests.Session() as browser, LiveServer(config, issuer_is_url=True) as server:
        issuer = server.url
        meta = metadata(issuer)
        assert meta["issuer"] == issuer
        assert meta["end_session_endpoint"] == issuer + "/oauth2/logout"

        rp, token, id_token = code_flow(seeded, receiver, browser, authorize_at=issuer, token_at=issuer,
                                        issuer=issuer)
        claims = id_token.claims
        assert claims["sub"] == str(seeded.identity_id)
        assert token["token_type"].lower() == "bearer" and token["refresh_token"]
        sso = browser.cookies.get(COOKIE)
        assert sso

        info = rp.get(meta["userinfo_endpoint"], timeout=10)
        assert info.status_code == 200, info.text
        assert info.json()["sub"] == claims["sub"] and info.json()["name"] == "Nguyễn Văn An"

        refreshed = rp.refresh_token(meta["token_endpoint"])
        assert refreshed["access_token"] != token["access_token"]
        assert refreshed["refresh_token"] != token["refresh_token"]
        access = jwt.decode(refreshed["access_token"], fetch_jwks(issuer), algorithms=["RS256"])
        assert access.header["typ"] == "at+jwt" and access.claims["sid"] == claims["sid"]

        seen = rp.introspect_token(meta["introspection_endpoint"], token=refreshed["access_token"])
        assert seen.status_code == 200
        body = seen.json()
        assert body["active"] is True and body["client_id"] == seeded.client_id and body["sub"] == claims["sub"]

        revoked = rp.revoke_token(meta["revocation_endpoint"], token=refreshed["access_token"],
                                  token_type_hint="access_token")
        assert revoked.status_code == 200
        assert rp.introspect_token(meta["introspection_endpoint"], token=refreshed["access_token"]).json() == {
            "active": False
        }
        denied = requests.get(meta["userinfo_endpoint"], timeout=10,
                              headers={"Authorization": "Bearer " + refreshed["access_token"]})
        assert denied.status_code == 401

        # RP-initiated logout with the ID token as hint; back to the registered URI with state.
        bye = browser.get(
            meta["end_session_endpoint"],
            params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": receiver.url("/bye"),
                    "state": "bye-1"},
            allow_redirects=False,
            timeout=10,
        )
        assert bye.status_code == 302, bye.text[:300]
        assert bye.headers["Location"] == receiver.url("/bye") + "?state=bye-1"
        assert browser.cookies.get(COOKIE) is None
        assert account_status(issuer, sso) == 302

        # The provider's own worker delivers the back-channel logout token.
        posts = receiver.wait_for_posts("/bc", 1, timeout=10)
        assert len(posts) == 1, "no back-channel logout within 10 s"
        logout = validate_logout_token(posts[0].form["logout_token"], fetch_jwks(issuer), issuer=issuer,
                                       client_id=seeded.client_id, algorithms=("RS256",))
        assert logout["sid"] == claims["sid"] and logout["sub"] == claims["sub"]

        gone = refresh_raw(issuer, seeded, refreshed["refresh_token"])
        assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"
    assert time.monotonic() - started < 60


# --- two provider processes, one database and store ----------------------------------------

@pytest.fixture
def two_servers(seeded, base_config):
    config = server_config(base_config, BACKCHANNEL_WORKER=True)
    a = LiveServer(config, issuer_is_url=True)
    try:
        b_server = LiveServer({**config, "ISSUER": a.url})  # one issuer string for both
    except BaseException:
        a.stop()
        raise
    yield a, b_server
    b_server.stop()
    a.stop()


def test_two_processes_share_codes_sessions_and_keys(seeded, receiver, two_servers):
    a, b_server = two_servers
    issuer = a.url
    assert a.process.pid != b_server.process.pid
    assert metadata(b_server.url)["issuer"] == issuer
    browser = requests.Session()

    # A code issued through A is redeemed at B.
    rp, token, id_token = code_flow(seeded, receiver, browser, authorize_at=a.url, token_at=b_server.url,
                                    issuer=issuer)
    sid = id_token.claims["sid"]
    fetch_jwks(a.url)  # same keys at both
    assert jwks_kids(a.url) == jwks_kids(b_server.url)

    # The SSO cookie made at A is a session at B.
    sso = browser.cookies.get(COOKIE)
    assert account_status(b_server.url, sso) == 200
    # ... so B issues a code without a login (prompt=none), and A redeems it.
    _, token_b, id_b = code_flow(seeded, receiver, browser, authorize_at=b_server.url, token_at=a.url,
                                 issuer=issuer, prompt="none")
    assert id_b.claims["sid"] == sid
    # Tokens from either process work at the other.
    for base, access in ((a.url, token_b["access_token"]), (b_server.url, token["access_token"])):
        info = requests.get(base + "/oauth2/userinfo", headers={"Authorization": "Bearer " + access}, timeout=10)
        assert info.status_code == 200, info.text

    # Key rotation in this process: after KEY_CACHE_SECONDS both servers publish and use it.
    old_kid = id_token.header["kid"]
    before = jwks_kids(a.url)
    with seeded.app.app_context():
        promoted, fresh = rotate("RS256", now=utcnow(), config=seeded.app.config)
    assert promoted.kid != old_kid and promoted.kid in before  # it was published as NEXT
    for server in (a, b_server):
        assert poll(lambda s=server: fresh.kid in jwks_kids(s.url)), f"{server.url} never served the new key"
        kids = jwks_kids(server.url)
        assert {old_kid, promoted.kid, fresh.kid} <= kids  # the retired key stays published
    for server in (a, b_server):
        _, new_token, new_id = code_flow(seeded, receiver, browser, authorize_at=server.url, token_at=server.url,
                                         issuer=issuer, prompt="none")
        assert new_id.header["kid"] == promoted.kid, server.url
        access = jwt.decode(new_token["access_token"], fetch_jwks(server.url), algorithms=["RS256"])
        assert access.header["kid"] == promoted.kid
        # Tokens signed before the rotation still verify at both.
        jwt.decode(token["id_token"], fetch_jwks(server.url), algorithms=["RS256"])

    # Log out at B: the session is gone at A too.
    out = b.log_out(browser, b_server.url)
    assert out.status_code == 302
    assert account_status(a.url, sso) == 302
    assert account_status(b_server.url, sso) == 302
    gone = refresh_raw(a.url, seeded, token["refresh_token"])
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"

    # Both processes run a delivery worker; the RP still gets the logout token once.
    posts = receiver.wait_for_posts("/bc", 1, timeout=10)
    assert len(posts) == 1, "no back-channel logout within 10 s"
    logout = validate_logout_token(posts[0].form["logout_token"], fetch_jwks(a.url), issuer=issuer,
                                   client_id=seeded.client_id, algorithms=("RS256",))
    assert logout["sid"] == sid
    time.sleep(2.5)  # a full worker interval of the other process
    assert len(receiver.posts("/bc")) == 1


def test_login_started_at_one_process_finishes_at_the_other(seeded, receiver, two_servers):
    """The pending authorization request lives in the shared store: A asks for a login, the
    form is posted to B, B resumes A's request, and the code is redeemed at A."""
    a, b_server = two_servers
    rp = rp_session(seeded, receiver)
    verifier = generate_token(48)
    url, state = rp.create_authorization_url(a.url + "/oauth2/authorize", code_verifier=verifier, nonce="n")
    browser = requests.Session()
    location = b.authorize(browser, url, stop_at=receiver.url("/cb"), login_base=b_server.url)
    assert b.query_of(location)["state"] == state
    token = rp.fetch_token(a.url + "/oauth2/token", authorization_response=location, state=state,
                           code_verifier=verifier)
    verify_id_token(token, fetch_jwks(b_server.url), issuer=a.url, client_id=seeded.client_id, nonce="n")
