"""The demo RP against a tiny fake provider served over real HTTP on loopback.

The fake provider publishes discovery, JWKS, a token endpoint (client_secret_basic, PKCE)
and a UserInfo endpoint; its keys are real joserfc keys. The RP itself is not mocked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from demo_rp import create_app, create_local_session, get_rp
from demo_rp.logout_token import BACKCHANNEL_EVENT

CLIENT_ID = "he-thong-a"
CLIENT_SECRET = "bi-mat-cua-he-thong-a"
RP_BASE = "http://127.0.0.1:5999"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeProvider:
    """Plays the provider's metadata, JWKS, token and UserInfo endpoints."""

    def __init__(self) -> None:
        self.rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})
        self.ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})
        self.codes: dict[str, dict] = {}
        self.paths: list[str] = []
        self.token_auth: list[tuple[str, str]] = []
        self.access_tokens: dict[str, str] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def metadata(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "userinfo_endpoint": self.issuer + "/userinfo",
            "jwks_uri": self.issuer + "/jwks",
            "end_session_endpoint": self.issuer + "/logout",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    def jwks(self) -> dict:
        return {"keys": [self.rsa.as_dict(private=False), self.ec.as_dict(private=False)]}

    def issue_code(
        self, *, nonce: str, challenge: str, redirect_uri: str, sub: str, sid: str
    ) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": nonce,
            "challenge": challenge,
            "redirect_uri": redirect_uri,
            "sub": sub,
            "sid": sid,
        }
        return code

    def _token_response(self, form: dict[str, str], auth: str | None) -> tuple[int, dict]:
        if not auth or not auth.startswith("Basic "):
            return 401, {"error": "invalid_client"}
        client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        self.token_auth.append((unquote(client_id), unquote(secret)))
        if (unquote(client_id), unquote(secret)) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        grant = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        if _b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": grant["sub"],
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "auth_time": now - 5,
            "nonce": grant["nonce"],
            "sid": grant["sid"],
            "acr": "urn:eid:loa:2",
            "amr": ["pwd", "otp"],
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "rsa-1"}, claims, self.rsa)
        access_token = secrets.token_urlsafe(16)
        self.access_tokens[access_token] = grant["sub"]
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                provider.paths.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    self._json(200, provider.metadata())
                elif self.path == "/jwks":
                    self._json(200, provider.jwks())
                elif self.path == "/userinfo":
                    auth = self.headers.get("Authorization", "")
                    sub = provider.access_tokens.get(auth.removeprefix("Bearer "))
                    if sub is None:
                        self._json(401, {"error": "invalid_token"})
                        return
                    self._json(
                        200,
                        {
                            "sub": sub,
                            "name": "Nguyễn Văn An",
                            "birthdate": "1990-05-17",
                            "email": "an.nguyen@example.vn",
                        },
                    )
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self):
                provider.paths.append(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path == "/token":
                    self._json(*provider._token_response(form, self.headers.get("Authorization")))
                else:
                    self._json(404, {"error": "not_found"})

        return Handler


@pytest.fixture(scope="module")
def provider():
    fake = FakeProvider()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _rp(issuer: str):
    return create_app(
        {
            "RP_NAME": "Hệ thống A — Cổng dịch vụ công của tỉnh",
            "RP_ISSUER": issuer,
            "RP_CLIENT_ID": CLIENT_ID,
            "RP_CLIENT_SECRET": CLIENT_SECRET,
            "RP_PORT": 5999,
            "RP_BASE_URL": RP_BASE,
            "RP_SECRET_KEY": "test-secret-key",
            "TESTING": True,
        }
    )


@pytest.fixture
def rp_app(provider):
    return _rp(provider.issuer)


def logout_token(provider, *, header=None, key=None, drop=(), **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "events": {BACKCHANNEL_EVENT: {}},
        "sid": "sid-1",
        "sub": "sub-1",
    }
    claims.update(overrides)
    for name in drop:
        claims.pop(name)
    hdr = {"alg": "RS256", "kid": "rsa-1", "typ": "logout+jwt", **(header or {})}
    return jwt.encode(hdr, claims, key or provider.rsa, algorithms=[hdr["alg"]])


def _post(rp_app, token: str):
    return rp_app.test_client().post("/backchannel-logout", data={"logout_token": token})


def _refused(response, reason: str) -> None:
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_request"
    assert reason in body["error_description"]


# Back-channel logout: accepted tokens


def test_valid_logout_token_ends_sessions_with_that_sid(provider, rp_app):
    registry = get_rp(rp_app).registry
    doomed = create_local_session(rp_app, sub="sub-1", sid="sid-1", id_token="x")
    other = create_local_session(rp_app, sub="sub-1", sid="sid-2", id_token="y")

    response = _post(rp_app, logout_token(provider))

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert registry.get(doomed) is None
    assert registry.get(other) is not None


def test_sub_only_token_ends_every_session_of_that_sub(provider, rp_app):
    registry = get_rp(rp_app).registry
    first = create_local_session(rp_app, sub="sub-9", sid="s-a")
    second = create_local_session(rp_app, sub="sub-9", sid="s-b")
    stranger = create_local_session(rp_app, sub="sub-10", sid="s-c")

    response = _post(rp_app, logout_token(provider, sub="sub-9", drop=("sid",)))

    assert response.status_code == 200
    assert registry.get(first) is None and registry.get(second) is None
    assert registry.get(stranger) is not None


def test_es256_token_without_typ_and_with_aud_list_is_accepted(provider, rp_app):
    local_id = create_local_session(rp_app, sub="sub-1", sid="sid-es")
    token = jwt.encode(
        {"alg": "ES256", "kid": "ec-1"},
        {
            "iss": provider.issuer,
            "aud": ["other-client", CLIENT_ID],
            "iat": int(time.time()),
            "jti": secrets.token_urlsafe(8),
            "events": {BACKCHANNEL_EVENT: {}},
            "sid": "sid-es",
        },
        provider.ec,
        algorithms=["ES256"],
        default_type=None,
    )
    assert _post(rp_app, token).status_code == 200
    assert get_rp(rp_app).registry.get(local_id) is None


# Back-channel logout: refusals


def test_wrong_audience_is_refused(provider, rp_app):
    local_id = create_local_session(rp_app, sub="sub-1", sid="sid-1")
    _refused(_post(rp_app, logout_token(provider, aud="other-client")), "aud")
    assert get_rp(rp_app).registry.get(local_id) is not None


def test_wrong_issuer_is_refused(provider, rp_app):
    _refused(_post(rp_app, logout_token(provider, iss="http://127.0.0.1:1")), "iss")


def test_nonce_is_refused(provider, rp_app):
    _refused(_post(rp_app, logout_token(provider, nonce="n-0")), "nonce")


def test_missing_events_is_refused(provider, rp_app):
    _refused(_post(rp_app, logout_token(provider, drop=("events",))), "events")


def test_events_without_the_logout_event_is_refused(provider, rp_app):
    token = logout_token(provider, events={"http://example.com/other-event": {}})
    _refused(_post(rp_app, token), "events")


def test_alg_none_is_refused(provider, rp_app):
    now = int(time.time())
    header = _b64(json.dumps({"alg": "none", "typ": "logout+jwt"}).encode())
    payload = _b64(
        json.dumps(
            {
                "iss": provider.issuer,
                "aud": CLIENT_ID,
                "iat": now,
                "jti": "none-1",
                "events": {BACKCHANNEL_EVENT: {}},
                "sid": "sid-1",
            }
        ).encode()
    )
    _refused(_post(rp_app, f"{header}.{payload}."), "alg")


def test_hs256_is_refused(provider, rp_app):
    key = OctKey.import_key(secrets.token_bytes(32), {"kid": "rsa-1"})
    token = logout_token(provider, header={"alg": "HS256"}, key=key)
    _refused(_post(rp_app, token), "alg")


def test_replayed_jti_is_refused(provider, rp_app):
    token = logout_token(provider, jti="once-only")
    assert _post(rp_app, token).status_code == 200
    _refused(_post(rp_app, token), "replay")


def test_unknown_kid_is_refused(provider, rp_app):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "not-published"})
    token = logout_token(provider, header={"kid": "not-published"}, key=stranger)
    _refused(_post(rp_app, token), "kid")


def test_signature_by_another_key_with_a_known_kid_is_refused(provider, rp_app):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    _refused(_post(rp_app, logout_token(provider, key=stranger)), "signature")


def test_missing_sid_and_sub_is_refused(provider, rp_app):
    _refused(_post(rp_app, logout_token(provider, drop=("sid", "sub"))), "sid")


def test_missing_or_stale_iat_is_refused(provider, rp_app):
    _refused(_post(rp_app, logout_token(provider, drop=("iat",))), "iat")
    _refused(_post(rp_app, logout_token(provider, iat=int(time.time()) - 3600)), "iat")


def test_expired_token_is_refused(provider, rp_app):
    _refused(_post(rp_app, logout_token(provider, exp=int(time.time()) - 600)), "exp")


def test_missing_jti_is_refused(provider, rp_app):
    _refused(_post(rp_app, logout_token(provider, drop=("jti",))), "jti")


def test_other_typ_is_refused(provider, rp_app):
    _refused(_post(rp_app, logout_token(provider, header={"typ": "JWT"})), "typ")


def test_missing_or_garbage_token_is_refused(rp_app):
    _refused(rp_app.test_client().post("/backchannel-logout", data={}), "missing")
    _refused(_post(rp_app, "not-a-jwt"), "JWS")


# Discovery is lazy; failures are pages, not 500s


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_discovery_is_fetched_at_first_login_not_at_creation(provider):
    before = len(provider.paths)
    app = _rp(provider.issuer)
    client = app.test_client()
    assert client.get("/healthz").get_data(as_text=True) == "ok"
    assert "Đăng nhập bằng tài khoản định danh điện tử của tỉnh" in client.get("/").get_data(
        as_text=True
    )
    assert len(provider.paths) == before

    response = client.get("/login")
    assert response.status_code == 302
    assert "/.well-known/openid-configuration" in provider.paths[before:]


def test_provider_down_gives_a_page_not_a_500():
    app = _rp(f"http://127.0.0.1:{_closed_port()}")
    response = app.test_client().get("/login")
    assert response.status_code == 502
    assert "provider_unavailable" in response.get_data(as_text=True)


# The authorization code flow against the fake provider


def _start_login(client, provider) -> dict[str, str]:
    response = client.get("/login")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(provider.issuer + "/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == RP_BASE + "/callback"
    assert query["code_challenge_method"] == "S256"
    assert set(query["scope"].split()) == {"openid", "profile", "email", "phone"}
    assert query["nonce"] and query["state"] and query["code_challenge"]
    return query


def _login(client, provider, *, sub="sub-flow", sid="sid-flow"):
    query = _start_login(client, provider)
    code = provider.issue_code(
        nonce=query["nonce"],
        challenge=query["code_challenge"],
        redirect_uri=query["redirect_uri"],
        sub=sub,
        sid=sid,
    )
    return client.get(
        f"/callback?code={code}&state={query['state']}&iss={quote(provider.issuer, safe='')}"
    )


def test_login_then_backchannel_logout_ends_the_browser_session(provider, rp_app):
    client = rp_app.test_client()
    response = _login(client, provider)
    assert response.status_code == 302
    assert provider.token_auth[-1] == (CLIENT_ID, CLIENT_SECRET)

    page = client.get("/").get_data(as_text=True)
    assert "Nguyễn Văn An" in page
    for value in ("sub-flow", "sid-flow", "1990-05-17", "urn:eid:loa:2", "pwd, otp"):
        assert value in page
    assert "Đăng xuất" in page

    response = _post(rp_app, logout_token(provider, sid="sid-flow", sub="sub-flow"))
    assert response.status_code == 200

    page = client.get("/").get_data(as_text=True)
    assert "đã kết thúc" in page
    assert "Đăng nhập bằng tài khoản định danh điện tử của tỉnh" in page


def test_rp_initiated_logout_redirects_to_end_session(provider, rp_app):
    client = rp_app.test_client()
    _login(client, provider, sid="sid-rpil")
    page = client.get("/").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 400

    response = client.post("/logout", data={"csrf": csrf})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(provider.issuer + "/logout?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["post_logout_redirect_uri"] == RP_BASE + "/"
    assert query["id_token_hint"].count(".") == 2
    assert query["client_id"] == CLIENT_ID
    assert query["state"]
    assert len(get_rp(rp_app).registry) == 0

    page = client.get(f"/?state={query['state']}").get_data(as_text=True)
    assert "Bạn đã đăng xuất" in page


def test_provider_error_is_shown_in_vietnamese(provider, rp_app):
    client = rp_app.test_client()
    query = _start_login(client, provider)
    response = client.get(
        f"/callback?error=access_denied&state={query['state']}&iss={quote(provider.issuer, safe='')}"
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "access_denied" in page and "từ chối" in page


@pytest.mark.parametrize(
    ("iss", "code"),
    [("http://evil.example", "invalid_iss"), (None, "missing_iss")],
)
def test_callback_checks_the_iss_parameter(provider, rp_app, iss, code):
    client = rp_app.test_client()
    query = _start_login(client, provider)
    url = f"/callback?code=abc&state={query['state']}"
    if iss:
        url += f"&iss={quote(iss, safe='')}"
    response = client.get(url)
    assert response.status_code == 400
    assert code in response.get_data(as_text=True)


def test_unknown_state_is_refused(provider, rp_app):
    client = rp_app.test_client()
    _start_login(client, provider)
    response = client.get(f"/callback?code=abc&state=forged&iss={quote(provider.issuer, safe='')}")
    assert response.status_code == 400
    assert "mismatching_state" in response.get_data(as_text=True)


def test_id_token_with_another_nonce_is_refused(provider, rp_app):
    client = rp_app.test_client()
    query = _start_login(client, provider)
    code = provider.issue_code(
        nonce="someone-elses-nonce",
        challenge=query["code_challenge"],
        redirect_uri=query["redirect_uri"],
        sub="sub-x",
        sid="sid-x",
    )
    response = client.get(
        f"/callback?code={code}&state={query['state']}&iss={quote(provider.issuer, safe='')}"
    )
    assert response.status_code == 400
    assert "invalid_id_token" in response.get_data(as_text=True)
    assert len(get_rp(rp_app).registry) == 0
