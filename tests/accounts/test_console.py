"""The citizen's account console (issue #4 item 7): pages, password change, sessions,
activity, "download my data"."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.accounts import factors
from idp.accounts.models import AccountEvent, PasswordCredential
from idp.accounts.views.console import describe_user_agent
from idp.extensions import db
from idp.identity.models import Identity
from tests.accounts.test_factors import (
    LOGIN,
    PASSWORD,
    age_session,
    enrol_totp_ui,
    event_names,
    log_in,
    register,
)
from tests.support.forms import csrf_from, submit
from tests.support.i18n import shows

NEW_PASSWORD = "cây đa đầu làng và giếng nước sân đình"
CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/125.0.0.0 Mobile Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
PAGES = ["/account", "/account/profile", "/account/security", "/account/sessions", "/account/activity"]


@pytest.fixture
def citizen(app):
    return register(app)


def browser(app, user_agent: str | None = None):
    client = app.test_client()
    if user_agent:
        client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def public_ids(html: str) -> list[str]:
    return re.findall(r'action="/account/sessions/([0-9a-f]{32})/end"', html)


# --- pages ---------------------------------------------------------------------------------

def test_pages_need_a_login(client):
    for url in PAGES + ["/account/data.json"]:
        resp = client.get(url)
        assert resp.status_code == 302, url
        location = urlsplit(resp.headers["Location"])
        assert location.path == "/login" and parse_qs(location.query)["next"] == [url]


def test_each_page_renders_in_vietnamese_with_the_persons_data(app, citizen):
    client = browser(app, CHROME_ANDROID)
    assert log_in(client).status_code == 302
    pages = {}
    for url in PAGES:
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert resp.headers["Cache-Control"] == "no-store"
        html = resp.get_data(as_text=True)
        assert '<html lang="vi">' in html, url
        pages[url] = html
    home = pages["/account"]
    assert "Tài khoản của tôi" in home and "Nguyễn Văn An" in home and LOGIN in home
    assert "Mức 1: tự đăng ký, chưa được xác minh" in home
    for endpoint in ("/account/profile", "/account/security", "/account/sessions", "/account/activity",
                     "/account/connections", "/account/data.json"):
        assert f'href="{endpoint}"' in home, endpoint
    assert 'action="/logout"' in home

    profile = pages["/account/profile"]
    for text in ("Về tài khoản của tôi", "Số định danh cá nhân", LOGIN, "Họ và tên", "Nguyễn Văn An",
                 "Ngày sinh", "14/05/1999", "Giới tính", "Nam", "Số điện thoại", "+84912345678",
                 "Thư điện tử", "an@example.vn", "Mức 1: tự đăng ký, chưa được xác minh"):
        assert text in profile, text
    assert "<input" not in profile  # nothing to edit here: the verified details are read-only

    security = pages["/account/security"]
    assert "Về tài khoản của tôi" in security
    for name in ("current_password", "new_password"):
        assert re.search(rf'<label for="{name}">', security), name
    assert 'href="/account/security/totp"' in security

    sessions = pages["/account/sessions"]
    assert "Chrome" in sessions and "Android" in sessions and "127.0.0.1" in sessions
    assert public_ids(sessions) == []  # the only session is this device: nothing to end

    activity = pages["/account/activity"]
    assert "127.0.0.1" in activity and "Chrome" in activity


def test_profile_of_a_verified_identity_says_how_it_was_verified(app, client, citizen):
    with app.app_context():
        db.session.get(Identity, citizen).assurance_level = 2
        db.session.commit()
    log_in(client)
    html = client.get("/account/profile").get_data(as_text=True)
    assert "Mức 2: đã xác minh" in html
    assert "VNeID" in html  # in person by an officer, or through the national e-ID
    assert "<input" not in html


def test_security_page_shows_the_app_and_the_remaining_codes(app, client, citizen):
    log_in(client)
    enrol_totp_ui(client)
    html = client.get("/account/security").get_data(as_text=True)
    assert 'action="/account/security/totp/remove"' in html
    assert 'action="/account/security/recovery-codes"' in html
    assert re.search(r'id="recovery-remaining">[^<]*10[^<]*10', html)
    assert 'href="/account/security/totp"' not in html


# --- password change -----------------------------------------------------------------------

def change(client, current, new, *, end_others=True):
    data = {"current_password": current, "new_password": new}
    if end_others:
        data["end_other_sessions"] = "y"
    return submit(client, "/account/security/password", data, form_url="/account/security")


def test_change_password_needs_the_current_one_and_follows_the_policy(app, citizen):
    client = app.test_client()
    assert log_in(client).status_code == 302
    wrong = change(client, "không phải mật khẩu này", NEW_PASSWORD)
    assert wrong.status_code == 400
    html = wrong.get_data(as_text=True)
    # The message is next to the field it is about.
    assert re.search(r'<p class="error" id="current_password-error">', html)
    assert 'aria-describedby="current_password-error"' in html
    short = change(client, PASSWORD, "ngắn quá")
    assert short.status_code == 400
    assert re.search(r'<p class="error" id="new_password-error">', short.get_data(as_text=True))
    personal = change(client, PASSWORD, "nguyễn văn an 001099012345 nhé")
    assert personal.status_code == 400
    same = change(client, PASSWORD, PASSWORD)
    assert same.status_code == 400
    with app.app_context():
        old_hash = db.session.get(PasswordCredential, citizen).hash

    ok = change(client, PASSWORD, NEW_PASSWORD)
    assert ok.status_code == 302 and ok.headers["Location"].endswith("/account/security")
    with app.app_context():
        cred = db.session.get(PasswordCredential, citizen)
        assert cred.hash != old_hash and cred.hash.startswith("$argon2id$")
    assert "password_changed" in event_names(app, citizen)
    assert log_in(app.test_client()).status_code == 401
    assert log_in(app.test_client(), password=NEW_PASSWORD).status_code == 302
    # This browser stays logged in.
    assert client.get("/account").status_code == 200


def test_change_password_needs_a_recent_login(app, citizen):
    client = app.test_client()
    log_in(client)
    page = client.get("/account/security").get_data(as_text=True)
    age_session(app, citizen, 3600)
    resp = client.post("/account/security/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "csrf_token": csrf_from(page)},
        headers={"Referer": "http://localhost/account/security"})
    assert resp.status_code == 302
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/login"
    # After logging in again, back to the form's page (a GET of the POST address would be a 405).
    assert parse_qs(location.query) == {"next": ["/account/security"], "reauth": ["1"]}
    # Another site as the referrer is never a destination.
    resp = client.post("/account/security/password", data={"csrf_token": csrf_from(page)},
                       headers={"Referer": "https://evil.example/account/security"})
    assert parse_qs(urlsplit(resp.headers["Location"]).query) == {"reauth": ["1"]}
    log_in(client)
    back = client.get("/account/security/password")
    assert back.status_code == 302 and back.headers["Location"].endswith("/account/security#change-password")
    assert log_in(app.test_client(), password=NEW_PASSWORD).status_code == 401
    assert "password_changed" not in event_names(app, citizen)


def test_change_password_ends_the_other_sessions_when_asked(app, citizen):
    here, there, elsewhere = app.test_client(), app.test_client(), app.test_client()
    for client in (here, there):
        log_in(client)
    assert change(here, PASSWORD, NEW_PASSWORD).status_code == 302
    assert there.get("/account").status_code == 302
    assert here.get("/account").status_code == 200
    log_in(elsewhere, password=NEW_PASSWORD)
    assert change(here, NEW_PASSWORD, PASSWORD, end_others=False).status_code == 302
    assert elsewhere.get("/account").status_code == 200


def test_guessing_the_current_password_is_throttled(make_app):
    app = make_app(LOGIN_THROTTLE_PER_ACCOUNT=3)
    register(app)
    client = app.test_client()
    log_in(client)
    for _ in range(3):
        assert change(client, "đoán mò mật khẩu cũ nào", NEW_PASSWORD).status_code == 400
    resp = change(client, PASSWORD, NEW_PASSWORD)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    assert log_in(app.test_client(), password=NEW_PASSWORD).status_code == 401


def test_shorter_password_allowed_with_a_second_factor(app, client, citizen):
    log_in(client)
    enrol_totp_ui(client)
    html = client.get("/account/security").get_data(as_text=True)
    assert "8" in re.search(r'id="new_password-hint">([^<]*)<', html).group(1)
    assert change(client, PASSWORD, "sông hồng đỏ").status_code == 302


# --- sessions ------------------------------------------------------------------------------

def test_end_another_session_of_ones_own(app, citizen):
    phone = browser(app, CHROME_ANDROID)
    laptop = browser(app, SAFARI_IPHONE)
    log_in(phone)
    log_in(laptop)
    page = phone.get("/account/sessions").get_data(as_text=True)
    assert "Chrome" in page and "Safari" in page and "iPhone" in page
    ids = public_ids(page)
    assert len(ids) == 1  # the other device; this one is marked, not endable here
    resp = submit(phone, f"/account/sessions/{ids[0]}/end", {}, form_url="/account/security")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/sessions")
    assert laptop.get("/account").status_code == 302
    assert phone.get("/account").status_code == 200
    assert public_ids(phone.get("/account/sessions").get_data(as_text=True)) == []
    assert "session_ended" in event_names(app, citizen)
    # Ending it again: it no longer exists.
    assert submit(phone, f"/account/sessions/{ids[0]}/end", {}, form_url="/account/security").status_code == 404


def test_cannot_end_someone_elses_session(app, citizen):
    register(app, "001199012346", full_name="Lê Thị Hoa", gender="female", phone="0912000111", email="hoa@example.vn")
    mine, hers = app.test_client(), app.test_client()
    log_in(mine)
    log_in(hers, "001199012346")
    log_in(app.test_client(), "001199012346")  # a second session of hers, to learn a public id
    her_ids = public_ids(hers.get("/account/sessions").get_data(as_text=True))
    assert len(her_ids) == 1
    resp = submit(mine, f"/account/sessions/{her_ids[0]}/end", {}, form_url="/account/security")
    assert resp.status_code == 404
    assert public_ids(hers.get("/account/sessions").get_data(as_text=True)) == her_ids
    # "All others" ends only one's own.
    assert submit(mine, "/account/sessions/end-others", {}, form_url="/account/security").status_code == 302
    assert hers.get("/account").status_code == 200
    # Nonsense ids are refused without touching the store.
    for bad in ("zz", "../sso", "0" * 64):
        assert submit(mine, f"/account/sessions/{bad}/end", {}, form_url="/account/security").status_code == 404


def test_end_all_other_sessions(app, citizen):
    here = app.test_client()
    others = [app.test_client() for _ in range(3)]
    log_in(here)
    for client in others:
        log_in(client)
    assert len(public_ids(here.get("/account/sessions").get_data(as_text=True))) == 3
    resp = submit(here, "/account/sessions/end-others", {}, form_url="/account/security")
    assert resp.status_code == 302
    assert all(client.get("/account").status_code == 302 for client in others)
    assert here.get("/account").status_code == 200
    assert "sessions_ended" in event_names(app, citizen)


def test_ending_sessions_needs_a_recent_login(app, citizen):
    here, there = app.test_client(), app.test_client()
    log_in(here)
    log_in(there)
    page = here.get("/account/sessions").get_data(as_text=True)
    age_session(app, citizen, 3600)
    resp = here.post("/account/sessions/end-others", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 302 and "reauth=1" in resp.headers["Location"]
    assert there.get("/account").status_code == 200


# --- activity ------------------------------------------------------------------------------

def test_activity_lists_logins_and_security_events(app, citizen):
    client = browser(app, CHROME_ANDROID)
    log_in(client)
    log_in(app.test_client(), password="sai mật khẩu rồi bạn ơi")
    with app.app_context():
        from idp.accounts import events
        from idp.timeutil import utcnow

        events.record(citizen, "login", now=utcnow(), client_id="cong-dich-vu-cong", address="203.0.113.7")
    html = client.get("/account/activity").get_data(as_text=True)
    for text in ("Logged in", "Failed login attempt", "cong-dich-vu-cong", "203.0.113.7", "Chrome"):
        assert shows(html, text), text
    assert "event-failed" in html


def test_activity_is_only_ones_own(app, citizen):
    register(app, "001199012346", full_name="Lê Thị Hoa", gender="female", phone="0912000111", email="hoa@example.vn")
    her = browser(app, SAFARI_IPHONE)
    log_in(her, "001199012346")
    mine = app.test_client()
    log_in(mine)
    assert "Safari" not in mine.get("/account/activity").get_data(as_text=True)


# --- download my data ----------------------------------------------------------------------

def test_download_my_data(app, citizen):
    client = browser(app, CHROME_ANDROID)
    log_in(client)
    codes, recovery = enrol_totp_ui(client)
    resp = client.get("/account/data.json")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert resp.headers["Cache-Control"] == "no-store"
    text = resp.get_data(as_text=True)
    data = json.loads(text)
    assert data["identity"]["full_name"] == "Nguyễn Văn An"
    assert data["identity"]["birth_date"] == "1999-05-14"
    assert data["identity"]["assurance_level"] == 1
    assert [i["value"] for i in data["identifiers"]] == [LOGIN]
    assert data["identifiers"][0]["valid_to"] is None
    assert data["authentication"]["authenticator_app"]["set_up"] is True
    assert data["authentication"]["recovery_codes_remaining"] == 10
    assert {"login", "totp_enabled", "data_exported"} <= {e["event"] for e in data["events"]}
    assert len(data["sessions"]) == 1 and data["sessions"][0]["user_agent"] == CHROME_ANDROID
    assert data["consents"]["see"].endswith("/account/connections")
    # No secret and no hash of any kind.
    with app.app_context():
        cred = db.session.get(PasswordCredential, citizen)
        totp = factors.totp_credential(citizen)
        secret = factors._box(app.config).decrypt(totp.secret_encrypted, context=factors._context(citizen)).decode()
        digests = [r.digest for r in db.session.query(factors.RecoveryCode).filter_by(identity_id=citizen)]
        store = app.extensions["idp_store"]
        session_ids = store.set_members("sso-by-identity:" + str(citizen))
    assert "$argon2" not in text and cred.hash not in text
    assert secret not in text and totp.secret_encrypted not in text
    assert not any(d in text for d in digests)
    assert not any(code in text for code in recovery)
    assert not any(sid in text for sid in session_ids)
    cookie = client.get_cookie("idp_sid").value
    assert cookie not in text
    assert codes  # (the app's codes were used only to enrol)


def test_download_needs_a_recent_login(app, citizen):
    client = app.test_client()
    log_in(client)
    age_session(app, citizen, 3600)
    resp = client.get("/account/data.json")
    assert resp.status_code == 302 and "reauth=1" in resp.headers["Location"]
    with app.app_context():
        assert db.session.query(AccountEvent).filter_by(event="data_exported").count() == 0


# --- words ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("user_agent", "words"), [
    (CHROME_ANDROID, ("Chrome", "Android")),
    (SAFARI_IPHONE, ("Safari", "iPhone")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 "
     "Safari/537.36 Edg/125.0", ("Microsoft Edge", "Windows")),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36 (KHTML, like Gecko) "
     "coc_coc_browser/130.0 Chrome/124.0 Safari/537.36", ("Cốc Cốc", "macOS")),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0", ("Firefox", "Linux")),
])
def test_user_agent_in_words(app, user_agent, words):
    with app.test_request_context():
        text = describe_user_agent(user_agent)
    assert all(w in text for w in words) and len(text) < 60


def test_unknown_user_agent(app):
    with app.test_request_context():
        assert describe_user_agent("") == describe_user_agent("curl/8.0") != ""


# --- retention -----------------------------------------------------------------------------

def test_purge_events_command(app, citizen):
    from datetime import timedelta

    from idp.accounts import cli as accounts_cli
    from idp.accounts import events
    from idp.timeutil import utcnow

    with app.app_context():
        now = utcnow()
        events.record(citizen, "login", now=now - timedelta(days=app.config["LOGIN_HISTORY_DAYS"] + 1))
        events.record(citizen, "login", now=now - timedelta(days=10))
        events.record(citizen, "login", now=now)
    if "accounts" not in app.cli.commands:
        accounts_cli.init_app(app)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["accounts", "purge-events"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 " in result.output
    result = runner.invoke(args=["accounts", "purge-events", "--days", "5"])
    assert "Deleted 1 " in result.output
    with app.app_context():
        assert len(events.recent(citizen)) == 1
