"""Helpers for protocol tests: a registered client, a logged-in citizen, PKCE, the code flow."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import date
from urllib.parse import parse_qs, urlencode, urlsplit

from idp.accounts import services as account_services
from idp.clients import services as client_services
from idp.timeutil import utcnow
from tests.support.forms import csrf_from, submit

PASSWORD = "một buổi sáng mùa thu ở hà nội"
REDIRECT = "http://127.0.0.1:9000/cb"


def make_client(app, **changes):
    """Create a client; returns (client_id, secret)."""
    fields = dict(
        name="Cổng dịch vụ công",
        agency="Văn phòng UBND tỉnh",
        redirect_uris=[REDIRECT],
        post_logout_redirect_uris=["http://127.0.0.1:9000/"],
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid", "profile", "email", "phone", "national_id", "offline_access"],
    )
    fields.update(changes)
    with app.app_context():
        client, secret = client_services.create_client(config=app.config, now=utcnow(), **fields)
        return client.client_id, secret


def make_citizen(app, personal_number="001099012345", **changes):
    fields = dict(
        personal_number=personal_number,
        full_name="Nguyễn Văn An",
        birth_date=date(1999, 5, 14),
        gender="male",
        phone="0912345678",
        email="an@example.vn",
        password=PASSWORD,
    )
    fields.update(changes)
    with app.app_context():
        identity = account_services.register_citizen(config=app.config, now=utcnow(), **fields)
        return identity.id


def log_in(client, login="001099012345", password=PASSWORD):
    resp = submit(client, "/login", {"login": login, "password": password})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return resp


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(client_id, *, challenge=None, scope="openid profile", state="st-1", nonce="n-1", **extra):
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": state,
        "nonce": nonce,
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return "/oauth2/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def query_of(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def approve_consent(client, consent_page):
    html = consent_page.get_data(as_text=True)
    req = html.split('name="req" value="')[1].split('"')[0]
    return client.post(
        "/oauth2/authorize/consent",
        data={"req": req, "decision": "allow", "csrf_token": csrf_from(html)},
    )


def get_code(client, client_id, *, scope="openid profile", **extra):
    """Run authorize (and consent if asked); returns (code, verifier, final redirect query)."""
    verifier, challenge = pkce_pair()
    resp = client.get(authorize_url(client_id, challenge=challenge, scope=scope, **extra))
    if resp.status_code == 200 and 'name="decision"' in resp.get_data(as_text=True):
        resp = approve_consent(client, resp)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    query = query_of(resp.headers["Location"])
    assert "code" in query, query
    return query["code"], verifier, query


def basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def exchange(client, client_id, secret, code, verifier, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    data.update(extra)
    return client.post("/oauth2/token", data=data, headers=basic(client_id, secret))


# --- additions for the protocol test suites ------------------------------------------------

TOKEN_URL = "/oauth2/token"


def bearer(token):
    return {"Authorization": "Bearer " + token}


def token_post(client, data, *, client_id=None, secret=None, headers=None, **kwargs):
    """POST to the token endpoint; client_secret_basic when client_id and secret are given."""
    all_headers = dict(headers or {})
    if client_id is not None and secret is not None:
        all_headers.update(basic(client_id, secret))
    return client.post(TOKEN_URL, data=data, headers=all_headers, **kwargs)


def refresh(client, client_id, secret, refresh_token, **extra):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    data.update(extra)
    return token_post(client, data, client_id=client_id, secret=secret)


def introspect(client, client_id, secret, token, **extra):
    headers = basic(client_id, secret) if secret is not None else {}
    return client.post("/oauth2/introspect", data={"token": token, **extra}, headers=headers)


def revoke(client, client_id, secret, token, **extra):
    headers = basic(client_id, secret) if secret is not None else {}
    return client.post("/oauth2/revoke", data={"token": token, **extra}, headers=headers)


def server_jwks(client):
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(client.get("/oauth2/jwks").get_json())


def decode_jwt(client, token, algorithms=("RS256",)):
    """Verify a token signed by the provider against its published JWKS."""
    from joserfc import jwt

    return jwt.decode(token, server_jwks(client), algorithms=list(algorithms))


def copy_cookies(source, target):
    """Give target (another app's test client) the browser cookies of source."""
    for cookie in list(source._cookies.values()):
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def login_form_from(resp) -> str:
    """The login URL an authorization request redirected to (a local path)."""
    location = resp.headers["Location"]
    parts = urlsplit(location)
    assert parts.path == "/login", location
    return parts.path + ("?" + parts.query if parts.query else "")


def log_in_at(client, login_url, login="001099012345", password=PASSWORD):
    """Submit the login form at login_url (it carries next=); returns the redirect response."""
    resp = submit(client, login_url, {"login": login, "password": password})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return resp


def code_flow_tokens(client, client_id, secret, *, scope="openid profile", **extra):
    """A code flow for a logged-in browser; returns the token response body."""
    code, verifier, _ = get_code(client, client_id, scope=scope, **extra)
    resp = exchange(client, client_id, secret, code, verifier)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()
