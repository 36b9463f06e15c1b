"""Logout: RP-initiated (OpenID Connect RP-Initiated Logout 1.0) and back-channel
(OpenID Connect Back-Channel Logout 1.0) with a real HTTP receiver on loopback."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import select

from idp.accounts.sessions import end_all_sessions
from idp.extensions import db
from idp.oidc.logout import deliver_due
from idp.oidc.models import LogoutDelivery
from idp.oidc.signing import signing_key_set
from idp.store import get_store
from idp.timeutil import utcnow
from tests.support.forms import csrf_from, submit
from tests.support.oidc import (
    basic,
    exchange,
    get_code,
    log_in,
    make_citizen,
    make_client,
)
from tests.support.receiver import Receiver, Step, closed_port_url, validate_logout_token

POST_LOGOUT = "http://127.0.0.1:9000/"
COOKIE = "idp_sid"
TIMEOUT = 0.5
MAX_ATTEMPTS = 3
RETRY_DELAY = 10


@pytest.fixture
def app(make_app):
    return make_app(
        BACKCHANNEL_TIMEOUT=TIMEOUT,
        BACKCHANNEL_MAX_ATTEMPTS=MAX_ATTEMPTS,
        BACKCHANNEL_RETRY_DELAY=RETRY_DELAY,
    )


@pytest.fixture
def receiver():
    with Receiver() as rec:
        yield rec


# --- helpers -------------------------------------------------------------------------------

def tokens_for(client, client_id, secret, **extra):
    code, verifier, _ = get_code(client, client_id, **extra)
    resp = exchange(client, client_id, secret, code, verifier)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def jwks_of(client) -> KeySet:
    return KeySet.import_key_set(client.get("/oauth2/jwks").get_json())


def id_claims(client, id_token, alg="RS256") -> dict:
    return dict(jwt.decode(id_token, jwks_of(client), algorithms=[alg]).claims)


def refresh(client, client_id, secret, refresh_token):
    return client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=basic(client_id, secret),
    )


def assert_refresh_refused(client, client_id, secret, refresh_token):
    resp = refresh(client, client_id, secret, refresh_token)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"] == "invalid_grant"


def sso_cookie(client) -> str | None:
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie else None


def session_alive(app, cookie_value: str) -> bool:
    """Whether the server still knows the SSO session (a fresh browser replays the cookie)."""
    browser = app.test_client()
    browser.set_cookie(COOKIE, cookie_value)
    resp = browser.get("/account")
    if resp.status_code == 200:
        return True
    assert resp.status_code == 302 and "/login" in resp.headers["Location"], resp.status_code
    return False


def assert_logged_out(app, client, old_cookie: str):
    resp = client.get("/account")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert not session_alive(app, old_cookie)


def assert_cookie_cleared(resp):
    cleared = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    assert cleared, resp.headers
    assert cleared[0].startswith(COOKIE + "=;") and "Expires=Thu, 01 Jan 1970" in cleared[0], cleared


def logout_url(**params) -> str:
    return "/oauth2/logout?" + urlencode(params)


def deliver(app, **kwargs) -> int:
    with app.app_context():
        return deliver_due(**kwargs)


def deliveries(app) -> list[SimpleNamespace]:
    with app.app_context():
        rows = db.session.scalars(select(LogoutDelivery).order_by(LogoutDelivery.id)).all()
        return [
            SimpleNamespace(**{c.name: getattr(r, c.name) for c in LogoutDelivery.__table__.columns})
            for r in rows
        ]


def account_logout(client):
    resp = submit(client, "/logout", {}, form_url="/account")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return resp


@pytest.fixture
def citizen(app):
    return make_citizen(app)


# --- RP-initiated logout -------------------------------------------------------------------

@pytest.mark.parametrize("with_client_id", [True, False], ids=["client_id", "hint_only"])
def test_rp_logout_redirects_to_registered_uri_with_state(app, client, citizen, with_client_id):
    client_id, secret = make_client(app)
    log_in(client)
    old_cookie = sso_cookie(client)
    id_token = tokens_for(client, client_id, secret)["id_token"]
    params = {"id_token_hint": id_token, "post_logout_redirect_uri": POST_LOGOUT, "state": "bye-1"}
    if with_client_id:
        params["client_id"] = client_id
    resp = client.get(logout_url(**params))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert resp.headers["Location"] == POST_LOGOUT + "?state=bye-1"
    assert resp.headers["Cache-Control"] == "no-store"
    assert_cookie_cleared(resp)
    assert sso_cookie(client) is None
    assert_logged_out(app, client, old_cookie)


def test_rp_logout_without_state_redirects_to_the_bare_uri(app, client, citizen):
    client_id, secret = make_client(app)
    log_in(client)
    id_token = tokens_for(client, client_id, secret)["id_token"]
    resp = client.get(logout_url(id_token_hint=id_token, post_logout_redirect_uri=POST_LOGOUT))
    assert resp.status_code == 302 and resp.headers["Location"] == POST_LOGOUT


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example/",
        "http://127.0.0.1:9000",  # no trailing slash: not the registered string
        "http://127.0.0.1:9000/other",
        "http://127.0.0.1:9001/",
        "http://127.0.0.1:9000/?x=1",
        "http://127.0.0.1:9000/cb",  # a redirect_uri, not a post-logout URI
    ],
)
def test_rp_logout_never_redirects_to_unregistered_uri(app, client, citizen, uri):
    client_id, secret = make_client(app)
    log_in(client)
    old_cookie = sso_cookie(client)
    id_token = tokens_for(client, client_id, secret)["id_token"]
    resp = client.get(logout_url(id_token_hint=id_token, client_id=client_id,
                                 post_logout_redirect_uri=uri, state="s"))
    assert resp.status_code == 200
    assert "Location" not in resp.headers
    assert uri not in resp.get_data(as_text=True)
    # A valid hint: the logout itself still happens, only the redirection is refused.
    assert_cookie_cleared(resp)
    assert_logged_out(app, client, old_cookie)


def test_rp_logout_uri_of_another_client_is_refused(app, client, citizen):
    client_id, secret = make_client(app)
    make_client(app, post_logout_redirect_uris=["http://127.0.0.1:9100/bye"])
    log_in(client)
    id_token = tokens_for(client, client_id, secret)["id_token"]
    resp = client.get(logout_url(id_token_hint=id_token, post_logout_redirect_uri="http://127.0.0.1:9100/bye"))
    assert resp.status_code == 200 and "Location" not in resp.headers


def test_rp_logout_without_hint_asks_for_confirmation(app, client, citizen):
    client_id, _ = make_client(app)
    log_in(client)
    old_cookie = sso_cookie(client)
    url = logout_url(client_id=client_id, post_logout_redirect_uri=POST_LOGOUT, state="s-2")
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'method="post"' in html and 'name="csrf_token"' in html
    assert "Location" not in page.headers
    assert session_alive(app, old_cookie)  # a GET alone logs nobody out
    assert client.get("/account").status_code == 200

    # A POST without the CSRF token (a cross-site form) does not log out either.
    forged = client.post("/oauth2/logout", data={"client_id": client_id})
    assert forged.status_code == 200 and 'name="csrf_token"' in forged.get_data(as_text=True)
    assert session_alive(app, old_cookie)

    confirmed = client.post(
        "/oauth2/logout",
        data={"client_id": client_id, "post_logout_redirect_uri": POST_LOGOUT, "state": "s-2",
              "csrf_token": csrf_from(html)},
    )
    # Without an id_token_hint the OP cannot tell the RP asked: no redirection.
    assert confirmed.status_code == 200 and "Location" not in confirmed.headers
    assert_cookie_cleared(confirmed)
    assert_logged_out(app, client, old_cookie)


def test_rp_logout_without_hint_and_without_session_still_confirms(client):
    page = client.get("/oauth2/logout")
    assert page.status_code == 200 and 'name="csrf_token"' in page.get_data(as_text=True)
    done = client.post("/oauth2/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert done.status_code == 200


def _forged_id_token(real_claims: dict, key, kid: str, alg="RS256") -> str:
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    return jwt.encode(header, dict(real_claims), key)


@pytest.mark.parametrize("variant", ["unknown_kid", "our_kid", "ec_unknown_kid", "no_kid", "unsigned", "garbage"])
def test_rp_logout_hint_signed_by_someone_else_is_refused(app, client, citizen, variant):
    client_id, secret = make_client(app)
    log_in(client)
    old_cookie = sso_cookie(client)
    id_token = tokens_for(client, client_id, secret)["id_token"]
    real = jwt.decode(id_token, jwks_of(client), algorithms=["RS256"])
    rsa = RSAKey.generate_key(2048)
    if variant == "unknown_kid":
        forged = _forged_id_token(real.claims, rsa, rsa.thumbprint())
    elif variant == "our_kid":
        forged = _forged_id_token(real.claims, rsa, real.header["kid"])
    elif variant == "ec_unknown_kid":
        ec = ECKey.generate_key("P-256")
        forged = _forged_id_token(real.claims, ec, ec.thumbprint(), alg="ES256")
    elif variant == "no_kid":
        forged = jwt.encode({"alg": "RS256"}, dict(real.claims), rsa)
    elif variant == "unsigned":
        _, payload, _ = id_token.split(".")
        none = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=").decode()
        forged = f"{none}.{payload}."
    else:
        forged = "not-a-jwt"
    resp = client.get(logout_url(id_token_hint=forged, post_logout_redirect_uri=POST_LOGOUT, state="s"))
    assert resp.status_code == 400, resp.get_data(as_text=True)[:500]
    assert "Location" not in resp.headers
    assert "invalid_request" in resp.get_data(as_text=True)
    assert session_alive(app, old_cookie)
    assert client.get("/account").status_code == 200


def test_rp_logout_client_id_must_match_aud(app, client, citizen):
    client_id, secret = make_client(app)
    other_id, _ = make_client(app)
    log_in(client)
    old_cookie = sso_cookie(client)
    id_token = tokens_for(client, client_id, secret)["id_token"]
    resp = client.get(logout_url(id_token_hint=id_token, client_id=other_id,
                                 post_logout_redirect_uri=POST_LOGOUT, state="s"))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert "invalid_request" in resp.get_data(as_text=True)
    assert session_alive(app, old_cookie)


def test_rp_logout_accepts_an_expired_hint(app, client, citizen):
    """RP-Initiated Logout §2: an expired ID token from a (recent) session is still a valid hint."""
    client_id, secret = make_client(app)
    log_in(client)
    old_cookie = sso_cookie(client)
    id_token = tokens_for(client, client_id, secret)["id_token"]
    claims = id_claims(client, id_token)
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    with app.app_context():
        expired = jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, signing_key_set("RS256"))
    resp = client.get(logout_url(id_token_hint=expired, post_logout_redirect_uri=POST_LOGOUT))
    assert resp.status_code == 302 and resp.headers["Location"] == POST_LOGOUT
    assert not session_alive(app, old_cookie)


def test_rp_logout_from_another_browser_ends_the_hinted_session(app, client, citizen):
    """The RP's back end (no cookie) sends the hint: the session named by its sid ends."""
    client_id, secret = make_client(app)
    log_in(client)
    old_cookie = sso_cookie(client)
    id_token = tokens_for(client, client_id, secret)["id_token"]
    stranger = app.test_client()
    resp = stranger.get(logout_url(id_token_hint=id_token, post_logout_redirect_uri=POST_LOGOUT, state="x"))
    assert resp.status_code == 302 and resp.headers["Location"] == POST_LOGOUT + "?state=x"
    assert_logged_out(app, client, old_cookie)


# --- back-channel logout -------------------------------------------------------------------

def _three_clients(app, receiver):
    """A (public sub, RS256) and B (pairwise sub, ES256) with back-channel URIs; C registered
    with one too but never used; D takes part but has no back-channel URI."""
    a = make_client(app, name="A", backchannel_logout_uri=receiver.url("/bc/a"))
    b = make_client(app, name="B", backchannel_logout_uri=receiver.url("/bc/b"),
                    subject_type="pairwise", id_token_signed_response_alg="ES256")
    c = make_client(app, name="C", backchannel_logout_uri=receiver.url("/bc/c"))
    d = make_client(app, name="D")
    return a, b, c, d


@pytest.mark.parametrize("how", ["account_logout", "rp_initiated", "rp_initiated_other_browser"])
def test_backchannel_logout_reaches_each_client_of_the_session(app, client, citizen, receiver, how):
    (a_id, a_secret), (b_id, b_secret), _, (d_id, d_secret) = _three_clients(app, receiver)
    log_in(client)
    got_a = tokens_for(client, a_id, a_secret)
    got_b = tokens_for(client, b_id, b_secret)
    got_d = tokens_for(client, d_id, d_secret)
    claims_a = id_claims(client, got_a["id_token"])
    claims_b = id_claims(client, got_b["id_token"], alg="ES256")
    assert claims_a["sid"] == claims_b["sid"]
    assert claims_a["sub"] == str(citizen) and claims_b["sub"] != str(citizen)  # pairwise

    if how == "account_logout":
        account_logout(client)
    elif how == "rp_initiated":
        resp = client.get(logout_url(id_token_hint=got_a["id_token"], post_logout_redirect_uri=POST_LOGOUT))
        assert resp.status_code == 302
    else:
        resp = app.test_client().get(logout_url(id_token_hint=got_b["id_token"]))
        assert resp.status_code == 200
    assert receiver.received == []  # queued, not sent from the request

    assert deliver(app) == 2
    jwks = jwks_of(client)
    for path, client_id, claims, alg in (("/bc/a", a_id, claims_a, "RS256"), ("/bc/b", b_id, claims_b, "ES256")):
        posts = receiver.posts(path)
        assert len(posts) == 1, path
        assert posts[0].content_type.startswith("application/x-www-form-urlencoded")
        assert set(posts[0].form) == {"logout_token"}
        token = posts[0].form["logout_token"]
        logout = validate_logout_token(token, jwks, issuer=app.config["ISSUER"], client_id=client_id)
        assert jwt.decode(token, jwks, algorithms=[alg]).header["alg"] == alg
        assert logout["sid"] == claims["sid"]
        assert logout["sub"] == claims["sub"]
    assert receiver.posts("/bc/c") == []  # registered, but not part of this session
    assert len(receiver.received) == 2

    rows = deliveries(app)
    assert sorted(r.client_id for r in rows) == sorted([a_id, b_id])
    assert all(r.delivered_at is not None and r.attempts == 1 and r.last_error is None for r in rows)
    jtis = {validate_logout_token(p.form["logout_token"], jwks, issuer=app.config["ISSUER"],
                                  client_id=cid)["jti"]
            for p, cid in ((receiver.posts("/bc/a")[0], a_id), (receiver.posts("/bc/b")[0], b_id))}
    assert len(jtis) == 2

    # The session's refresh tokens are revoked for every client, with or without back-channel.
    for client_id, secret, got in ((a_id, a_secret, got_a), (b_id, b_secret, got_b), (d_id, d_secret, got_d)):
        assert_refresh_refused(client, client_id, secret, got["refresh_token"])

    # Delivered once: another round sends nothing, and a repeated logout queues nothing new.
    assert deliver(app) == 0
    again = app.test_client().get(logout_url(id_token_hint=got_a["id_token"]))
    assert again.status_code == 200
    assert deliver(app) == 0
    assert len(receiver.received) == 2 and len(deliveries(app)) == 2


def test_backchannel_only_for_the_session_that_ended(app, citizen, receiver):
    (a_id, a_secret), (b_id, b_secret), _, _ = _three_clients(app, receiver)
    first, second = app.test_client(), app.test_client()
    log_in(first)
    log_in(second)
    one = tokens_for(first, a_id, a_secret)
    two = tokens_for(second, b_id, b_secret)
    two_a = tokens_for(second, a_id, a_secret)
    sid_one = id_claims(first, one["id_token"])["sid"]
    assert sid_one != id_claims(second, two_a["id_token"])["sid"]

    account_logout(first)
    assert deliver(app) == 1
    [post] = receiver.posts("/bc/a")
    claims = validate_logout_token(post.form["logout_token"], jwks_of(first), issuer=app.config["ISSUER"],
                                   client_id=a_id)
    assert claims["sid"] == sid_one
    assert receiver.posts("/bc/b") == []
    assert_refresh_refused(first, a_id, a_secret, one["refresh_token"])
    # The other browser's session and its tokens live on.
    assert second.get("/account").status_code == 200
    assert refresh(second, b_id, b_secret, two["refresh_token"]).status_code == 200
    assert refresh(second, a_id, a_secret, two_a["refresh_token"]).status_code == 200


def test_login_as_someone_else_ends_the_previous_session_and_tells_its_clients(app, client, citizen, receiver):
    (a_id, a_secret), *_ = _three_clients(app, receiver)
    make_citizen(app, personal_number="001199012346", full_name="Trần Thị Bình", gender="female",
                 phone="0912345679", email="binh@example.vn")
    log_in(client)
    got = tokens_for(client, a_id, a_secret)
    sid = id_claims(client, got["id_token"])["sid"]
    log_in(client, login="001199012346")  # another person in the same browser
    assert deliver(app) == 1
    claims = validate_logout_token(receiver.posts("/bc/a")[0].form["logout_token"], jwks_of(client),
                                   issuer=app.config["ISSUER"], client_id=a_id)
    assert claims["sid"] == sid and claims["sub"] == str(citizen)
    assert_refresh_refused(client, a_id, a_secret, got["refresh_token"])


def test_same_person_logging_in_again_keeps_the_session(app, client, citizen, receiver):
    """A re-authentication (prompt=login, max_age) keeps the sid: the systems stay logged in."""
    (a_id, a_secret), *_ = _three_clients(app, receiver)
    log_in(client)
    got = tokens_for(client, a_id, a_secret)
    sid = id_claims(client, got["id_token"])["sid"]
    log_in(client)
    assert deliver(app) == 0 and receiver.received == []
    assert refresh(client, a_id, a_secret, got["refresh_token"]).status_code == 200
    again = tokens_for(client, a_id, a_secret)
    assert id_claims(client, again["id_token"])["sid"] == sid


def test_end_all_sessions_queues_logout_tokens_for_every_session(app, citizen, receiver):
    (a_id, a_secret), (b_id, b_secret), _, _ = _three_clients(app, receiver)
    first, second = app.test_client(), app.test_client()
    log_in(first)
    log_in(second)
    one_a = tokens_for(first, a_id, a_secret)
    two_a = tokens_for(second, a_id, a_secret)
    two_b = tokens_for(second, b_id, b_secret)
    sid_one = id_claims(first, one_a["id_token"])["sid"]
    sid_two = id_claims(second, two_a["id_token"])["sid"]
    cookies = [sso_cookie(first), sso_cookie(second)]

    with app.app_context():
        assert end_all_sessions(get_store(), str(citizen)) == 2
        rows = db.session.scalars(select(LogoutDelivery)).all()
        assert sorted(r.client_id for r in rows) == sorted([a_id, a_id, b_id])
    assert deliver(app) == 3

    jwks = jwks_of(first)
    a_sids = sorted(
        validate_logout_token(p.form["logout_token"], jwks, issuer=app.config["ISSUER"], client_id=a_id)["sid"]
        for p in receiver.posts("/bc/a")
    )
    assert a_sids == sorted([sid_one, sid_two])
    [b_post] = receiver.posts("/bc/b")
    b_claims = validate_logout_token(b_post.form["logout_token"], jwks, issuer=app.config["ISSUER"], client_id=b_id)
    assert b_claims["sid"] == sid_two
    assert b_claims["sub"] == id_claims(second, two_b["id_token"], alg="ES256")["sub"]
    assert receiver.posts("/bc/c") == []
    for cookie in cookies:
        assert not session_alive(app, cookie)
    for browser, cid, secret, got in ((first, a_id, a_secret, one_a), (second, a_id, a_secret, two_a),
                                      (second, b_id, b_secret, two_b)):
        assert_refresh_refused(browser, cid, secret, got["refresh_token"])


# --- delivery: retries, giving up, bounded attempts ------------------------------------------

def _one_session_with(app, client, backchannel_uri):
    client_id, secret = make_client(app, backchannel_logout_uri=backchannel_uri)
    log_in(client)
    got = tokens_for(client, client_id, secret)
    account_logout(client)
    return client_id, got


def test_failed_delivery_is_retried_later(app, client, citizen, receiver):
    receiver.script("/bc", 503)
    client_id, got = _one_session_with(app, client, receiver.url("/bc"))
    t0 = utcnow()
    assert deliver(app, now=t0) == 0
    [row] = deliveries(app)
    assert row.attempts == 1 and row.delivered_at is None and row.gave_up_at is None
    assert row.last_error == "HTTP 503"
    assert row.next_attempt_at == t0 + timedelta(seconds=RETRY_DELAY)

    # Not due yet: nothing is sent.
    assert deliver(app, now=t0 + timedelta(seconds=RETRY_DELAY - 1)) == 0
    assert len(receiver.posts("/bc")) == 1

    assert deliver(app, now=row.next_attempt_at + timedelta(seconds=1)) == 1
    [row] = deliveries(app)
    assert row.attempts == 2 and row.delivered_at is not None and row.last_error is None
    first, second = receiver.posts("/bc")
    assert first.form["logout_token"] == second.form["logout_token"]
    claims = validate_logout_token(second.form["logout_token"], jwks_of(client), issuer=app.config["ISSUER"],
                                   client_id=client_id)
    assert claims["sid"] == id_claims(client, got["id_token"])["sid"]
    assert deliver(app, now=row.next_attempt_at + timedelta(days=1)) == 0
    assert len(receiver.posts("/bc")) == 2


def test_delivery_gives_up_after_max_attempts(app, client, citizen):
    _one_session_with(app, client, closed_port_url("/bc"))
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert deliver(app, now=now) == 0
        [row] = deliveries(app)
        assert row.attempts == attempt and row.delivered_at is None
        assert row.last_error and "ConnectionError" in row.last_error
        # The delay doubles with every failed attempt.
        assert row.next_attempt_at - now == timedelta(seconds=RETRY_DELAY * 2 ** (attempt - 1))
        if attempt < MAX_ATTEMPTS:
            assert row.gave_up_at is None
        now = row.next_attempt_at + timedelta(seconds=1)
    assert row.gave_up_at is not None
    assert deliver(app, now=now + timedelta(days=30)) == 0
    assert deliveries(app)[0].attempts == MAX_ATTEMPTS


def test_each_attempt_is_bounded_by_the_timeout(app, client, citizen, receiver):
    receiver.script("/slow1", Step(status=200, delay=5))
    receiver.script("/slow2", Step(status=200, delay=5))
    slow = [make_client(app, name=f"slow {n}", backchannel_logout_uri=receiver.url(f"/slow{n}")) for n in (1, 2)]
    log_in(client)
    for client_id, secret in slow:
        tokens_for(client, client_id, secret)
    account_logout(client)
    started = time.monotonic()
    assert deliver(app) == 0
    elapsed = time.monotonic() - started
    # Two attempts, each cut off at the timeout (plus a margin for the test machine).
    assert elapsed < 2 * TIMEOUT + 1.5, elapsed
    assert len(receiver.received) == 2
    rows = deliveries(app)
    assert len(rows) == 2
    for row in rows:
        assert row.attempts == 1 and row.delivered_at is None
        assert "Timeout" in row.last_error, row.last_error


def test_a_slowly_trickling_answer_does_not_stall_delivery(app, client, citizen, receiver):
    """The status line and headers come at once, the body one byte every 0.2 s for 6 s: the
    status is all that matters, so the attempt must not wait for the body."""
    receiver.script("/drip", Step(status=200, drip=0.2, drip_for=6))
    _one_session_with(app, client, receiver.url("/drip"))
    started = time.monotonic()
    assert deliver(app) == 1
    assert time.monotonic() - started < TIMEOUT + 1.5
    [row] = deliveries(app)
    assert row.delivered_at is not None


def test_redirect_is_not_followed_and_counts_as_failure(app, client, citizen, receiver):
    receiver.script("/moved", 307)
    _one_session_with(app, client, receiver.url("/moved"))
    assert deliver(app) == 0
    [row] = deliveries(app)
    assert row.last_error == "HTTP 307" and row.attempts == 1
    assert len(receiver.received) == 1


def test_204_counts_as_delivered(app, client, citizen, receiver):
    receiver.script("/nc", 204)
    _one_session_with(app, client, receiver.url("/nc"))
    assert deliver(app) == 1


@pytest.mark.parametrize("kind", ["access_token", "logout_token"])
def test_rp_logout_hint_must_be_an_id_token(app, client, citizen, receiver, kind):
    """Other JWTs the provider signs (access tokens go to resource servers, logout tokens to
    RPs) carry sid and aud too: as id_token_hint they must not end a session."""
    client_id, secret = make_client(app, backchannel_logout_uri=receiver.url("/bc"))
    log_in(client)
    old_cookie = sso_cookie(client)
    got = tokens_for(client, client_id, secret)
    if kind == "access_token":
        hint = got["access_token"]
    else:
        # A logout token of an earlier session of the same person.
        other = app.test_client()
        log_in(other)
        tokens_for(other, client_id, secret)
        account_logout(other)
        assert deliver(app) == 1
        hint = receiver.posts("/bc")[0].form["logout_token"]
    resp = client.get(logout_url(id_token_hint=hint, post_logout_redirect_uri=POST_LOGOUT, state="s"))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert session_alive(app, old_cookie)
