"""Password login, the SSO session, logout, throttling, and what the pages reveal."""

from __future__ import annotations

from datetime import date

import pytest

from idp.accounts import services
from idp.extensions import db
from idp.identity.models import Identity
from idp.timeutil import utcnow
from tests.support.forms import submit

PASSWORD = "một buổi sáng mùa thu ở hà nội"


@pytest.fixture
def citizen(app):
    # No app context stays pushed: requests must get a fresh `g` each time, as in production.
    with app.app_context():
        identity = services.register_citizen(
            personal_number="001099012345",
            full_name="Nguyễn Văn An",
            birth_date=date(1999, 5, 14),
            gender="male",
            phone="0912345678",
            email="an@example.vn",
            password=PASSWORD,
            config=app.config,
            now=utcnow(),
        )
        return identity.id


def login(client, login_id, password=PASSWORD):
    return submit(client, "/login", {"login": login_id, "password": password})


def sid_cookie(client):
    cookie = client.get_cookie("idp_sid")
    return cookie.value if cookie else None


@pytest.mark.parametrize("login_id", ["001099012345", "0912345678", "+84 912 345 678", "AN@example.vn"])
def test_login_by_personal_number_phone_or_email(client, citizen, login_id):
    resp = login(client, login_id)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/account")
    set_cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    page = client.get("/account").get_data(as_text=True)
    assert "Nguyễn Văn An" in page


def test_each_login_gets_a_new_session_id_and_logout_ends_it(client, citizen, app):
    login(client, "001099012345")
    first = sid_cookie(client)
    login(client, "001099012345")
    second = sid_cookie(client)
    assert first and second and first != second
    assert len(second) >= 43  # 32 random bytes, URL-safe base64
    # The previous cookie no longer opens the account.
    stale = app.test_client()
    stale.set_cookie("idp_sid", first)
    assert stale.get("/account").status_code == 302
    assert client.get("/account").status_code == 200
    page = client.get("/account").get_data(as_text=True)
    resp = client.post("/logout", data={"csrf_token": page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]})
    assert resp.status_code == 302
    replay = app.test_client()
    replay.set_cookie("idp_sid", second)
    assert replay.get("/account").status_code == 302
    assert client.get("/account").status_code == 302


def test_store_holds_no_usable_cookie_value(client, citizen, app):
    login(client, "001099012345")
    cookie = sid_cookie(client)
    store = app.extensions["idp_store"]
    with app.app_context():
        from idp.accounts.sessions import digest

        assert store.get("sso-cookie:" + cookie) is None
        assert store.get("sso-cookie:" + digest(cookie)) is not None


def test_wrong_password_and_unknown_account_look_the_same(client, citizen):
    wrong = login(client, "001099012345", "sai mật khẩu rồi bạn ơi")
    unknown = login(client, "001199012345", "sai mật khẩu rồi bạn ơi")
    assert wrong.status_code == unknown.status_code == 401

    def summary(resp):
        html = resp.get_data(as_text=True)
        return html.split('class="error-summary"', 1)[1].split("</div>", 1)[0]

    assert summary(wrong) == summary(unknown)
    assert "Thông tin đăng nhập không đúng" in summary(wrong)


def test_idle_timeout_ends_session(make_app, citizen):
    app = make_app(SESSION_IDLE_TIMEOUT=0)
    client = app.test_client()
    assert login(client, "001099012345").status_code == 302
    import time

    time.sleep(1.1)
    assert client.get("/account").status_code == 302


def test_locked_account_cannot_log_in(client, citizen, app):
    from idp.identity.models import IdentityStatus

    with app.app_context():
        db.session.get(Identity, citizen).status = IdentityStatus.LOCKED
        db.session.commit()
    resp = login(client, "001099012345")
    assert resp.status_code == 403
    assert sid_cookie(client) is None


def test_throttle_per_account_counts_unknown_accounts_too(make_app, citizen):
    app = make_app(LOGIN_THROTTLE_PER_ACCOUNT=3)
    client = app.test_client()
    for _ in range(3):
        assert login(client, "001199012345", "không đúng đâu nhé bạn").status_code == 401
    resp = login(client, "001199012345", "không đúng đâu nhé bạn")
    assert resp.status_code == 429
    assert "Quá nhiều lần thử" in resp.get_data(as_text=True)
    # The known account is throttled after the same number of failures, even with the right password.
    for _ in range(3):
        login(client, "001099012345", "không đúng đâu nhé bạn")
    assert login(client, "001099012345").status_code == 429


def test_throttle_per_address(make_app, citizen):
    app = make_app(LOGIN_THROTTLE_PER_ADDRESS=4, LOGIN_THROTTLE_PER_ACCOUNT=100)
    client = app.test_client()
    for n in range(4):
        assert login(client, f"00119901234{n}", "không đúng đâu nhé bạn").status_code == 401
    assert login(client, "001099012345").status_code == 429


def test_password_hash_upgraded_when_parameters_change(make_app, citizen, app):
    from idp.accounts.models import PasswordCredential

    with app.app_context():
        old = db.session.get(PasswordCredential, citizen).hash
    upgraded = make_app(ARGON2_MEMORY_KIB=2048, ARGON2_TIME_COST=2)
    assert login(upgraded.test_client(), "001099012345").status_code == 302
    with app.app_context():
        new = db.session.get(PasswordCredential, citizen).hash
    assert new != old and "m=2048,t=2" in new


def test_security_headers_and_vietnamese_default(client):
    resp = client.get("/login")
    assert resp.status_code == 200
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    html = resp.get_data(as_text=True)
    assert 'lang="vi"' in html and "Đăng nhập" in html


def test_english_switch(client):
    client.get("/lang/en")
    html = client.get("/login").get_data(as_text=True)
    assert 'lang="en"' in html and "Log in" in html


def test_https_issuer_gives_host_prefixed_secure_cookie(make_app, citizen):
    app = make_app(ISSUER="https://id.example.vn")
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost")
    from tests.support.forms import csrf_from

    resp = client.post(
        "/login",
        data={"login": "001099012345", "password": PASSWORD, "csrf_token": csrf_from(page.get_data(as_text=True))},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
    )
    assert resp.status_code == 302
    cookies = resp.headers.getlist("Set-Cookie")
    sso = [c for c in cookies if c.startswith("__Host-idp_sid=")]
    assert sso and "Secure" in sso[0] and "Path=/" in sso[0] and "Domain" not in sso[0]
    assert "Strict-Transport-Security" in resp.headers


def test_open_redirect_refused(client, citizen):
    resp = submit(client, "/login?next=//evil.example/x", {"login": "001099012345", "password": PASSWORD}, form_url="/login")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/account")
