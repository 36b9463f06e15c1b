"""The authorization endpoint: validation, prompts, login and consent hand-offs, response modes,
subjects; with the exact error codes and where they are delivered (redirect or own page)."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import urlsplit

from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.extensions import db
from idp.oidc.models import Consent, PairwiseSubject
from tests.support.forms import csrf_from
from tests.support.oidc import (
    PASSWORD,
    REDIRECT,
    approve_consent,
    authorize_url,
    bearer,
    code_flow_tokens,
    copy_cookies,
    decode_jwt,
    exchange,
    get_code,
    log_in,
    log_in_at,
    login_form_from,
    make_citizen,
    make_client,
    pkce_pair,
    query_of,
)


def _authorize(client, client_id, **params):
    """An authorization request with PKCE; returns (response, verifier)."""
    verifier, challenge = pkce_pair()
    return client.get(authorize_url(client_id, challenge=challenge, **params)), verifier


def _is_consent_page(resp) -> bool:
    return resp.status_code == 200 and 'name="decision"' in resp.get_data(as_text=True)


def _redirect_query(resp) -> dict:
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert resp.headers["Location"].startswith(REDIRECT + "?"), resp.headers["Location"]
    return query_of(resp.headers["Location"])


def _error_page(resp, error: str):
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert "Location" not in resp.headers
    assert f"<code>{error}</code>" in resp.get_data(as_text=True)


def _login_then_resume(client, resp, login="001099012345"):
    """From a redirect to the login page: log in, follow the hand-back to authorize."""
    done = log_in_at(client, login_form_from(resp), login=login)
    location = done.headers["Location"]
    assert urlsplit(location).path == "/oauth2/authorize/resume", location
    return client.get(location)


def _form_post_fields(resp) -> tuple[str, dict]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"].startswith("no-store")
    page = resp.get_data(as_text=True)
    form = re.search(r'<form method="post" action="([^"]+)"', page)
    assert form, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    return html.unescape(form.group(1)), {k: html.unescape(v) for k, v in fields.items()}


# --- requests that cannot be redirected ----------------------------------------------------

def test_unknown_or_missing_client_is_an_error_page(app, client):
    _error_page(client.get(authorize_url("no-such-client", challenge=pkce_pair()[1])), "invalid_client")
    _error_page(client.get(authorize_url(None, challenge=pkce_pair()[1])), "invalid_client")


def test_unregistered_or_missing_redirect_uri_is_an_error_page(app, client):
    client_id, _ = make_client(app)
    for uri in ("https://evil.example/cb", REDIRECT + "/extra", REDIRECT + "?x=1", None):
        resp, _ = _authorize(client, client_id, redirect_uri=uri)
        assert resp.status_code == 400, uri
        assert "Location" not in resp.headers


def test_disabled_client_is_an_error_page(app, client):
    from idp.clients import services as client_services
    from idp.timeutil import utcnow

    client_id, _ = make_client(app)
    with app.app_context():
        client_services.disable_client(client_services.get_client(client_id), now=utcnow())
    resp, _ = _authorize(client, client_id)
    _error_page(resp, "invalid_client")


def test_repeated_or_oversized_parameter_is_an_error_page(app, client):
    client_id, _ = make_client(app)
    url = authorize_url(client_id, challenge=pkce_pair()[1]) + "&state=again"
    _error_page(client.get(url), "invalid_request")
    resp, _ = _authorize(client, client_id, state="s" * 5000)
    _error_page(resp, "invalid_request")


def test_unknown_pending_request_is_an_error_page(app, client):
    make_citizen(app)
    log_in(client)
    resp = client.get("/oauth2/authorize/resume?req=does-not-exist")
    assert resp.status_code == 400 and "Location" not in resp.headers
    resp = client.get("/oauth2/authorize/resume")
    assert resp.status_code == 400
    page = client.get("/login").get_data(as_text=True)
    resp = client.post("/oauth2/authorize/consent",
                       data={"req": "does-not-exist", "decision": "allow", "csrf_token": csrf_from(page)})
    assert resp.status_code == 400 and "Location" not in resp.headers


# --- errors redirected to the client -------------------------------------------------------

def test_unsupported_response_types(app, client):
    client_id, _ = make_client(app)
    for response_type in ("token", "code id_token", "id_token", "code token", "none"):
        resp, _ = _authorize(client, client_id, response_type=response_type, state="xyz")
        query = _redirect_query(resp)
        assert query["error"] == "unsupported_response_type", (response_type, query)
        assert query["state"] == "xyz"
        assert query["iss"] == app.config["ISSUER"]
        assert "code" not in query
    # Unknown client: no redirect even for this error.
    resp = client.get(authorize_url("no-such-client", response_type="token"))
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_unsupported_response_mode(app, client):
    client_id, _ = make_client(app)
    for mode in ("fragment", "web_message", "query.jwt"):
        resp, _ = _authorize(client, client_id, response_mode=mode)
        query = _redirect_query(resp)
        assert query["error"] == "invalid_request" and query["state"] == "st-1"


def test_max_age_not_a_number(app, client):
    client_id, _ = make_client(app)
    for value in ("abc", "-1", "1.5", "99999999999"):
        resp, _ = _authorize(client, client_id, max_age=value)
        query = _redirect_query(resp)
        assert query["error"] == "invalid_request", value
        assert query["iss"] == app.config["ISSUER"]


def test_prompt_none_combined_with_another_value(app, client):
    client_id, _ = make_client(app)
    make_citizen(app)
    log_in(client)
    resp, _ = _authorize(client, client_id, prompt="none login")
    assert _redirect_query(resp)["error"] == "invalid_request"


def test_scope_handling(app, client):
    client_id, secret = make_client(app, scopes=["openid", "profile"])
    make_citizen(app)
    log_in(client)
    # Scopes unknown to the provider or not registered for the client are dropped, not granted.
    code, verifier, _ = get_code(client, client_id, scope="openid profile email admin")
    body = exchange(client, client_id, secret, code, verifier).get_json()
    assert set(body["scope"].split()) == {"openid", "profile"}
    assert set(decode_jwt(client, body["access_token"]).claims["scope"].split()) == {"openid", "profile"}
    # The consent page lists only what will be given.
    with app.app_context():
        consent = db.session.scalars(select(Consent)).one()
        assert set(consent.scopes) == {"openid", "profile"}


def test_request_without_openid_scope_gets_no_id_token(app, client):
    client_id, secret = make_client(app)
    make_citizen(app)
    log_in(client)
    code, verifier, _ = get_code(client, client_id, scope="profile", nonce=None)
    body = exchange(client, client_id, secret, code, verifier).get_json()
    assert body["scope"] == "profile" and "id_token" not in body
    # Userinfo is an OpenID Connect resource: it needs the openid scope.
    assert client.get("/oauth2/userinfo", headers=bearer(body["access_token"])).status_code == 403


def test_client_without_pkce_cannot_skip_both_pkce_and_nonce(app, client):
    """Without PKCE the nonce binds the code to the RP's session; without openid there is no nonce."""
    client_id, _ = make_client(app, require_pkce=False)
    make_citizen(app)
    log_in(client)
    resp = client.get(authorize_url(client_id, nonce=None))
    assert _redirect_query(resp)["error"] == "invalid_request"
    resp = client.get(authorize_url(client_id, nonce=None, scope="profile"))
    assert _redirect_query(resp)["error"] == "invalid_request"


def test_prompt_none_without_consent_is_consent_required(app, client):
    client_id, _ = make_client(app)
    make_citizen(app)
    log_in(client)
    resp, _ = _authorize(client, client_id, prompt="none", state="pn")
    query = _redirect_query(resp)
    assert query["error"] == "consent_required" and query["state"] == "pn"
    assert query["iss"] == app.config["ISSUER"]
    # After consent, prompt=none succeeds silently.
    get_code(client, client_id)
    resp, _ = _authorize(client, client_id, prompt="none")
    assert "code" in _redirect_query(resp)


def test_prompt_none_without_session_is_login_required(app, client):
    client_id, _ = make_client(app)
    resp, _ = _authorize(client, client_id, prompt="none")
    assert _redirect_query(resp)["error"] == "login_required"


# --- login hand-off ------------------------------------------------------------------------

def test_login_then_consent_then_code(app, client):
    client_id, secret = make_client(app)
    make_citizen(app)
    resp, verifier = _authorize(client, client_id)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    resp = _login_then_resume(client, resp)
    assert _is_consent_page(resp)
    assert "Cổng dịch vụ công" in resp.get_data(as_text=True)
    query = _redirect_query(approve_consent(client, resp))
    assert query["state"] == "st-1" and query["iss"] == app.config["ISSUER"]
    assert exchange(client, client_id, secret, query["code"], verifier).status_code == 200


def test_login_hint_prefills_the_login_form(app, client):
    client_id, _ = make_client(app)
    resp, _ = _authorize(client, client_id, login_hint="0912345678")
    page = client.get(login_form_from(resp)).get_data(as_text=True)
    assert re.search(r'<input[^>]*name="login"[^>]*value="0912345678"', page) or re.search(
        r'<input[^>]*value="0912345678"[^>]*name="login"', page), page


def test_ui_locales_selects_the_login_page_language(app, client):
    client_id, _ = make_client(app)
    resp, _ = _authorize(client, client_id, ui_locales="en-US vi")
    page = client.get(login_form_from(resp)).get_data(as_text=True)
    assert '<html lang="en">' in page and "<h1>Log in</h1>" in page
    other = app.test_client()
    resp, _ = _authorize(other, client_id)
    page = other.get(login_form_from(resp)).get_data(as_text=True)
    assert '<html lang="vi">' in page and "Đăng nhập" in page


def test_prompt_login_forces_login_and_moves_auth_time(app, client):
    client_id, secret = make_client(app)
    make_citizen(app)
    log_in(client)
    first = code_flow_tokens(client, client_id, secret)
    first_auth_time = decode_jwt(client, first["id_token"]).claims["auth_time"]
    time.sleep(1.1)
    resp, verifier = _authorize(client, client_id, prompt="login")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    resp = _login_then_resume(client, resp)
    query = _redirect_query(resp)  # consent remembered: straight back with a code
    body = exchange(client, client_id, secret, query["code"], verifier).get_json()
    assert decode_jwt(client, body["id_token"]).claims["auth_time"] > first_auth_time


def test_max_age_zero_forces_login_once(app, client):
    client_id, secret = make_client(app)
    make_citizen(app)
    log_in(client)
    get_code(client, client_id)  # consent given
    resp, verifier = _authorize(client, client_id, max_age="0")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login", resp.headers
    done = log_in_at(client, login_form_from(resp))
    time.sleep(1.1)  # the hand-back may arrive in a later second than the login
    resp = client.get(done.headers["Location"])
    query = _redirect_query(resp)
    body = exchange(client, client_id, secret, query["code"], verifier).get_json()
    assert "auth_time" in decode_jwt(client, body["id_token"]).claims


def test_max_age_zero_with_prompt_none_is_login_required(app, client):
    client_id, _ = make_client(app)
    make_citizen(app)
    log_in(client)
    get_code(client, client_id)
    resp, _ = _authorize(client, client_id, max_age="0", prompt="none")
    assert _redirect_query(resp)["error"] == "login_required"


def test_max_age_respected_when_recent(app, client):
    client_id, _ = make_client(app)
    make_citizen(app)
    log_in(client)
    get_code(client, client_id)
    resp, _ = _authorize(client, client_id, max_age="3600")
    assert "code" in _redirect_query(resp)


def test_pending_request_survives_a_new_instance(app, client, make_app):
    client_id, secret = make_client(app)
    make_citizen(app)
    resp, verifier = _authorize(client, client_id, state="cross")
    login_url = login_form_from(resp)

    other_app = make_app()
    browser = other_app.test_client()
    copy_cookies(client, browser)
    done = log_in_at(browser, login_url)
    resp = browser.get(done.headers["Location"])
    assert _is_consent_page(resp)
    query = _redirect_query(approve_consent(browser, resp))
    assert query["state"] == "cross"
    # The first instance redeems the code the second one issued.
    assert exchange(client, client_id, secret, query["code"], verifier).status_code == 200


# --- consent ------------------------------------------------------------------------------

def test_consent_is_remembered_and_asked_again_for_more(app, client):
    client_id, _ = make_client(app)
    make_citizen(app)
    log_in(client)
    resp, _ = _authorize(client, client_id, scope="openid profile")
    assert _is_consent_page(resp)
    assert "code" in _redirect_query(approve_consent(client, resp))
    # Same scopes, or fewer: no page.
    resp, _ = _authorize(client, client_id, scope="openid profile")
    assert "code" in _redirect_query(resp)
    resp, _ = _authorize(client, client_id, scope="openid")
    assert "code" in _redirect_query(resp)
    # More scopes: asked again, listing them.
    resp, _ = _authorize(client, client_id, scope="openid profile email", ui_locales="en")
    assert _is_consent_page(resp)
    assert "Your e-mail address" in resp.get_data(as_text=True)
    # prompt=consent always asks.
    resp, _ = _authorize(client, client_id, scope="openid", prompt="consent")
    assert _is_consent_page(resp)


def test_first_party_client_skips_consent(app, client):
    client_id, _ = make_client(app, first_party=True)
    make_citizen(app)
    log_in(client)
    resp, _ = _authorize(client, client_id, scope="openid profile email")
    assert "code" in _redirect_query(resp)


def test_declining_consent_is_access_denied(app, client):
    client_id, _ = make_client(app)
    make_citizen(app)
    log_in(client)
    resp, _ = _authorize(client, client_id, state="deny-me")
    page = resp.get_data(as_text=True)
    req = page.split('name="req" value="')[1].split('"')[0]
    resp = client.post("/oauth2/authorize/consent", data={"req": req, "decision": "deny", "csrf_token": csrf_from(page)})
    query = _redirect_query(resp)
    assert query["error"] == "access_denied" and query["state"] == "deny-me"
    assert query["iss"] == app.config["ISSUER"]
    with app.app_context():
        assert db.session.scalars(select(Consent)).all() == []
    # The pending request is gone: the same form cannot be replayed to allow.
    resp = client.post("/oauth2/authorize/consent", data={"req": req, "decision": "allow", "csrf_token": csrf_from(page)})
    assert resp.status_code == 400


def test_consent_post_needs_csrf(app, client):
    client_id, _ = make_client(app)
    make_citizen(app)
    log_in(client)
    resp, _ = _authorize(client, client_id)
    page = resp.get_data(as_text=True)
    req = page.split('name="req" value="')[1].split('"')[0]
    resp = client.post("/oauth2/authorize/consent", data={"req": req, "decision": "allow"})
    assert resp.status_code == 400 and "Location" not in resp.headers


# --- form_post -----------------------------------------------------------------------------

def test_form_post_success(app, client):
    client_id, secret = make_client(app)
    make_citizen(app)
    log_in(client)
    resp, verifier = _authorize(client, client_id, response_mode="form_post", state="fp")
    assert _is_consent_page(resp)
    action, fields = _form_post_fields(approve_consent(client, resp))
    assert action == REDIRECT
    assert set(fields) == {"code", "state", "iss"}
    assert fields["state"] == "fp" and fields["iss"] == app.config["ISSUER"]
    assert exchange(client, client_id, secret, fields["code"], verifier).status_code == 200
    # Consent remembered: the form comes straight from the authorization endpoint.
    resp, _ = _authorize(client, client_id, response_mode="form_post")
    action, fields = _form_post_fields(resp)
    assert action == REDIRECT and "code" in fields


def test_form_post_errors(app, client):
    client_id, _ = make_client(app)
    make_citizen(app)
    log_in(client)
    resp, _ = _authorize(client, client_id, response_mode="form_post", response_type="token", state="e1")
    action, fields = _form_post_fields(resp)
    assert action == REDIRECT
    assert fields["error"] == "unsupported_response_type" and fields["state"] == "e1"
    assert fields["iss"] == app.config["ISSUER"]
    resp, _ = _authorize(client, client_id, response_mode="form_post", prompt="none", state="e2")
    _, fields = _form_post_fields(resp)
    assert fields["error"] == "consent_required" and fields["state"] == "e2"
    resp, _ = _authorize(client, client_id, response_mode="form_post", state="e3")
    page = resp.get_data(as_text=True)
    req = page.split('name="req" value="')[1].split('"')[0]
    resp = client.post("/oauth2/authorize/consent", data={"req": req, "decision": "deny", "csrf_token": csrf_from(page)})
    _, fields = _form_post_fields(resp)
    assert fields["error"] == "access_denied" and fields["state"] == "e3"


def test_form_post_escapes_values(app, client):
    client_id, _ = make_client(app)
    resp, _ = _authorize(client, client_id, response_mode="form_post", response_type="token",
                         state='"><script>alert(1)</script>')
    page = resp.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    _, fields = _form_post_fields(resp)
    assert fields["state"] == '"><script>alert(1)</script>'


# --- subjects and ID tokens ------------------------------------------------------------------

def test_pairwise_subjects(app, client):
    identity_id = make_citizen(app)
    a1, s1 = make_client(app, subject_type="pairwise", sector_identifier="thue.example.vn", first_party=True)
    a2, s2 = make_client(app, subject_type="pairwise", sector_identifier="thue.example.vn", first_party=True)
    b, sb = make_client(app, subject_type="pairwise", sector_identifier="yte.example.vn", first_party=True)
    pub, sp = make_client(app, first_party=True)
    log_in(client)

    def sub_of(client_id, secret):
        body = code_flow_tokens(client, client_id, secret)
        sub = decode_jwt(client, body["id_token"]).claims["sub"]
        assert decode_jwt(client, body["access_token"]).claims["sub"] == sub
        info = client.get("/oauth2/userinfo", headers=bearer(body["access_token"]))
        assert info.status_code == 200, info.get_data(as_text=True)
        assert info.get_json()["sub"] == sub and info.get_json()["name"] == "Nguyễn Văn An"
        return sub

    sub_a1 = sub_of(a1, s1)
    assert sub_of(a1, s1) == sub_a1  # stable
    assert sub_of(a2, s2) == sub_a1  # same sector
    sub_b = sub_of(b, sb)
    assert sub_b != sub_a1
    assert str(identity_id) not in (sub_a1, sub_b)
    assert sub_of(pub, sp) == str(identity_id)
    with app.app_context():
        rows = db.session.scalars(select(PairwiseSubject)).all()
        assert {(r.sector, r.sub) for r in rows} == {("thue.example.vn", sub_a1), ("yte.example.vn", sub_b)}
        assert {r.identity_id for r in rows} == {identity_id}


def test_pairwise_subject_differs_per_person(app, client):
    a, sa = make_client(app, subject_type="pairwise", sector_identifier="thue.example.vn", first_party=True)
    make_citizen(app)
    make_citizen(app, personal_number="001099054321", phone="0912345679", email="binh@example.vn",
                 full_name="Trần Văn Bình")
    log_in(client)
    first = decode_jwt(client, code_flow_tokens(client, a, sa)["id_token"]).claims["sub"]
    other = app.test_client()
    log_in(other, login="001099054321", password=PASSWORD)
    body = code_flow_tokens(other, a, sa)
    second = decode_jwt(other, body["id_token"]).claims["sub"]
    assert first != second
    assert other.get("/oauth2/userinfo", headers=bearer(body["access_token"])).get_json()["name"] == "Trần Văn Bình"


def test_es256_id_token(app, client):
    client_id, secret = make_client(app, id_token_signed_response_alg="ES256")
    make_citizen(app)
    log_in(client)
    body = code_flow_tokens(client, client_id, secret)
    jwks = client.get("/oauth2/jwks").get_json()
    token = decode_jwt(client, body["id_token"], algorithms=["ES256"])
    assert token.header["alg"] == "ES256" and token.header.get("kid")
    published = {k["kid"]: k for k in jwks["keys"]}
    assert published[token.header["kid"]]["kty"] == "EC"
    assert published[token.header["kid"]]["alg"] == "ES256"
    assert token.claims["aud"] == [client_id] and token.claims["nonce"] == "n-1"
    assert token.claims["at_hash"]
    # The access token stays RS256 (RFC 9068 for resource servers).
    access = decode_jwt(client, body["access_token"], algorithms=["RS256"])
    assert access.header["alg"] == "RS256"
    KeySet.import_key_set(jwks)  # the published set imports cleanly
