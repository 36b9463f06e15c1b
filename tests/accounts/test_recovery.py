"""Password reset and contact verification over HTTP, with a real SMTP server on loopback."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import date, timedelta

import pyotp
import pytest

from idp.accounts import events, factors, recovery, services, sms
from idp.accounts.models import PasswordCredential
from idp.extensions import db
from idp.identity.models import Identity
from idp.timeutil import utcnow
from tests.support.forms import csrf_from, submit
from tests.support.smtp import SmtpServer, body, enable_loggers, free_port, link_in

PASSWORD = "một buổi sáng mùa thu ở hà nội"
NEW_PASSWORD = "chiều tà trên sông hương êm đềm"
NUMBER = "001099012345"


@pytest.fixture(autouse=True)
def _logs(migrated):
    enable_loggers("idp.accounts.sms", "idp.accounts.mail")


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def app(make_app, smtp):
    return make_app(**smtp.app_config())


def make_citizen(app, *, number=NUMBER, birth=date(1999, 5, 14), gender="male", phone="0912345678",
                 email="an@example.vn", email_verified=True, phone_verified=False):
    with app.app_context():
        identity = services.register_citizen(
            personal_number=number, full_name="Nguyễn Văn An", birth_date=birth, gender=gender,
            phone=phone, email=email, password=PASSWORD, config=app.config, now=utcnow(),
        )
        if email_verified:
            identity.email_verified_at = utcnow()
        if phone_verified:
            identity.phone_verified_at = utcnow()
        db.session.commit()
        return identity.id


@pytest.fixture
def citizen(app):
    return make_citizen(app)


def login(client, login_id=NUMBER, password=PASSWORD):
    return submit(client, "/login", {"login": login_id, "password": password})


def ask_reset(client, login_id=NUMBER):
    return submit(client, "/recover", {"login": login_id})


def reset_link(smtp, count=1) -> str:
    messages = smtp.inbox.wait_for(count)
    return link_in(messages[count - 1], "/recover/reset")


def neutral(resp_client, resp):
    """The page the person sees after /recover, without the per-session CSRF token."""
    assert resp.status_code == 303
    page = resp_client.get(resp.headers["Location"])
    assert page.status_code == 200
    return resp.headers["Location"], re.sub(r'value="[^"]+"', "", page.get_data(as_text=True))


# --- the e-mail link ------------------------------------------------------------------------

def test_reset_by_email_link(app, smtp, citizen):
    client = app.test_client()
    resp = ask_reset(client)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/recover/code")
    [msg] = smtp.inbox.wait_for(1)
    assert msg["To"] == "an@example.vn"
    assert msg["Content-Language"] == "vi"
    assert "Nguyễn Văn An" in body(msg)
    link = link_in(msg, "/recover/reset")
    assert link.startswith("/recover/reset?token=") and len(link.split("=", 1)[1]) >= 43

    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="password"' in html and 'name="code"' not in html
    assert page.headers["Cache-Control"] == "no-store"

    done = submit(client, link, {"password": NEW_PASSWORD})
    assert done.status_code == 303 and done.headers["Location"].endswith("/login")
    assert login(app.test_client(), NUMBER, PASSWORD).status_code == 401
    assert login(app.test_client(), NUMBER, NEW_PASSWORD).status_code == 302

    # The person is told about the reset on the verified address.
    notice = smtp.inbox.wait_for(2)[1]
    assert notice["To"] == "an@example.vn"
    assert "/recover" in body(notice) and "127.0.0.1" in body(notice)


def test_link_works_once(app, smtp, citizen):
    client = app.test_client()
    ask_reset(client)
    link = reset_link(smtp)
    assert submit(client, link, {"password": NEW_PASSWORD}).status_code == 303
    again = client.get(link)
    assert again.status_code == 400
    assert "/recover" in again.get_data(as_text=True) and 'name="password"' not in again.get_data(as_text=True)
    # A form posted from a page opened before the reset does not work either.
    stale = app.test_client()
    token = csrf_from(stale.get("/recover").get_data(as_text=True))
    resp = stale.post(link, data={"password": "một mật khẩu khác hẳn cho lần hai", "csrf_token": token})
    assert resp.status_code == 400
    assert login(app.test_client(), NUMBER, NEW_PASSWORD).status_code == 302


def test_a_new_request_does_not_revive_and_a_reset_ends_other_links(app, smtp, citizen):
    client = app.test_client()
    ask_reset(client)
    ask_reset(client)
    first, second = reset_link(smtp, 1), reset_link(smtp, 2)
    assert first != second
    assert submit(client, second, {"password": NEW_PASSWORD}).status_code == 303
    assert client.get(first).status_code == 400


def test_expired_link_refused(app, smtp, citizen):
    store = app.extensions["idp_store"]
    issued = utcnow() - timedelta(seconds=app.config["RESET_TOKEN_TTL"] + 1)
    with app.app_context():
        assert recovery.request_reset(store, NUMBER, config=app.config, now=issued) == "email"
    link = reset_link(smtp)
    client = app.test_client()
    resp = client.get(link)
    assert resp.status_code == 400
    token = link.split("=", 1)[1]
    with app.app_context():
        assert recovery.check_reset_token(store, token, now=issued + timedelta(seconds=60)) is not None
        assert recovery.check_reset_token(store, token, now=utcnow()) is None


def test_tampered_store_ttl_expires_the_link(app, smtp, citizen):
    ask_reset(app.test_client())
    link = reset_link(smtp)
    store = app.extensions["idp_store"]
    key = "reset:" + recovery._digest(link.split("=", 1)[1])
    with app.app_context():
        record = store.get(key)
        store.set(key, record, 1)
    time.sleep(1.2)
    assert app.test_client().get(link).status_code == 400


# --- no enumeration -------------------------------------------------------------------------

def test_same_answer_for_unknown_unverified_and_known_accounts(app, smtp):
    make_citizen(app)
    make_citizen(app, number="001199054321", birth=date(1999, 3, 2), gender="female",
                 phone="0987654321", email="binh@example.vn", email_verified=False)
    answers = []
    for login_id in ("001199099999", "001199054321", "binh@example.vn", "0987654321"):
        client = app.test_client()
        answers.append(neutral(client, ask_reset(client, login_id)))
    # Neither the unknown account nor the one without a verified address got anything.
    assert smtp.inbox.settled() == []
    client = app.test_client()
    answers.append(neutral(client, ask_reset(client, NUMBER)))
    assert all(a == answers[0] for a in answers)
    assert len(smtp.inbox.wait_for(1)) == 1


def test_requests_are_throttled_per_login_known_or_not(app, smtp, citizen):
    statuses = {}
    for login_id in (NUMBER, "001199099999"):
        client = app.test_client()
        statuses[login_id] = [ask_reset(client, login_id).status_code for _ in range(6)]
    assert statuses[NUMBER] == statuses["001199099999"] == [303] * 5 + [429]
    # Only as many messages as the per-address limit allows reached the inbox.
    assert len(smtp.inbox.settled()) == app.config["MESSAGES_PER_CONTACT"]


def test_smtp_down_still_gives_the_neutral_page(make_app, caplog):
    app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_STARTTLS=False)
    make_citizen(app)
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="idp.accounts.mail"):
        resp = ask_reset(client)
        assert resp.status_code == 303
        assert client.get(resp.headers["Location"]).status_code == 200
        from idp.accounts import mail

        assert mail.wait_for_pending(10)
    assert "not sent" in caplog.text
    # Registration with an e-mail address works too; the link is simply not delivered.
    page = client.get("/register")
    resp = client.post("/register", data={
        "personal_number": "001199054321", "full_name": "Trần Thị Bình", "birth_date": "1999-03-02",
        "gender": "female", "phone": "", "email": "binh@example.vn", "password": PASSWORD,
        "csrf_token": csrf_from(page.get_data(as_text=True)),
    })
    assert resp.status_code == 302


# --- second factor --------------------------------------------------------------------------

def enrol_totp(app, identity_id) -> tuple[str, list[str]]:
    store = app.extensions["idp_store"]
    with app.app_context():
        secret = factors.start_enrolment(identity_id, config=app.config, now=utcnow())
        assert factors.confirm_enrolment(store, identity_id, pyotp.TOTP(secret).now(),
                                         config=app.config, now=utcnow())
        codes = factors.new_recovery_codes(identity_id, now=utcnow())
    return secret, codes


def test_reset_with_totp_needs_a_valid_code_and_a_wrong_one_keeps_the_link(app, smtp, citizen):
    secret, _codes = enrol_totp(app, citizen)
    client = app.test_client()
    ask_reset(client)
    link = reset_link(smtp)
    page = client.get(link).get_data(as_text=True)
    assert 'name="code"' in page

    missing = submit(client, link, {"password": NEW_PASSWORD})
    assert missing.status_code == 400
    assert 'id="code-error"' in missing.get_data(as_text=True)

    totp = pyotp.TOTP(secret)
    valid = {totp.at(time.time() + d) for d in (-30, 0, 30)}
    bad = next(c for c in (f"{n:06d}" for n in range(1000)) if c not in valid)
    wrong = submit(client, link, {"password": NEW_PASSWORD, "code": bad})
    assert wrong.status_code == 400
    assert 'id="code-error"' in wrong.get_data(as_text=True)
    assert login(app.test_client(), NUMBER, NEW_PASSWORD).status_code == 401
    # The link survived the wrong code.
    assert client.get(link).status_code == 200

    # The next time step: the enrolment used the current one (replay guard).
    ok = submit(client, link, {"password": NEW_PASSWORD, "code": totp.at(time.time() + 30)})
    assert ok.status_code == 303
    # Password login now asks for the second factor, as before.
    resp = login(app.test_client(), NUMBER, NEW_PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/second-factor")


def test_reset_with_a_recovery_code(app, smtp, citizen):
    _secret, codes = enrol_totp(app, citizen)
    client = app.test_client()
    ask_reset(client)
    link = reset_link(smtp)
    # A short password is refused first, without spending the recovery code.
    short = submit(client, link, {"password": "ngắn", "code": codes[0]})
    assert short.status_code == 400 and 'id="password-error"' in short.get_data(as_text=True)
    # With a second factor, 8 characters are enough.
    assert submit(client, link, {"password": "hoa sen hồng", "code": codes[0]}).status_code == 303
    with app.app_context():
        assert factors.remaining_recovery_codes(citizen) == len(codes) - 1


# --- what a reset clears --------------------------------------------------------------------

def test_reset_clears_the_lock_and_ends_every_session(make_app, smtp):
    app = make_app(**smtp.app_config(), LOGIN_LOCK_AFTER=3)
    identity_id = make_citizen(app)
    browser = app.test_client()
    assert login(browser).status_code == 302
    assert browser.get("/account").status_code == 200
    for _ in range(3):
        login(app.test_client(), NUMBER, "sai mật khẩu rồi bạn ơi nhé")
    with app.app_context():
        cred = db.session.get(PasswordCredential, identity_id)
        assert cred.locked_at is not None and cred.failed_count >= 3
    assert login(app.test_client()).status_code == 403  # locked, even with the right password

    # The lock does not stop recovery.
    client = app.test_client()
    ask_reset(client)
    assert submit(client, reset_link(smtp), {"password": NEW_PASSWORD}).status_code == 303

    with app.app_context():
        cred = db.session.get(PasswordCredential, identity_id)
        assert cred.failed_count == 0 and cred.locked_at is None
        assert app.extensions["idp_store"].set_members(f"sso-by-identity:{identity_id}") == set()
    assert browser.get("/account").status_code == 302  # logged out everywhere
    assert login(app.test_client(), NUMBER, PASSWORD).status_code == 401
    assert login(app.test_client(), NUMBER, NEW_PASSWORD).status_code == 302


# --- the SMS path ---------------------------------------------------------------------------

def sms_codes(caplog) -> list[str]:
    return [re.search(r"\b([0-9]{6})\b", r.args[1]).group(1)
            for r in caplog.records if r.name == "idp.accounts.sms" and r.args]


def test_reset_by_sms_code_when_only_the_phone_is_verified(app, smtp, caplog):
    make_citizen(app, email_verified=False, phone_verified=True)
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="idp.accounts.sms"):
        resp = ask_reset(client, "0912345678")
    assert resp.status_code == 303
    [code] = sms_codes(caplog)
    assert smtp.inbox.settled() == []  # the unverified address gets nothing

    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = submit(client, "/recover/code", {"code": wrong})
    assert refused.status_code == 400 and 'id="code-error"' in refused.get_data(as_text=True)
    ok = submit(client, "/recover/code", {"code": code})
    assert ok.status_code == 303 and "/recover/reset?token=" in ok.headers["Location"]
    link = ok.headers["Location"]
    assert submit(client, link, {"password": NEW_PASSWORD}).status_code == 303
    assert login(app.test_client(), NUMBER, NEW_PASSWORD).status_code == 302
    # The code was single use.
    with app.app_context():
        assert recovery.verify_reset_code(app.extensions["idp_store"], NUMBER, code,
                                          config=app.config, now=utcnow()) is None


def test_sms_code_for_an_unknown_login_is_just_a_wrong_code(app):
    client = app.test_client()
    ask_reset(client, "001199099999")
    statuses = [submit(client, "/recover/code", {"code": "123456"}).status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]


def test_sms_reset_code_expires(app, caplog):
    make_citizen(app, email_verified=False, phone_verified=True)
    store = app.extensions["idp_store"]
    t0 = utcnow()
    with app.app_context(), caplog.at_level(logging.INFO, logger="idp.accounts.sms"):
        assert recovery.request_reset(store, NUMBER, config=app.config, now=t0) == "sms"
        [code] = sms_codes(caplog)
        late = t0 + timedelta(seconds=sms.CODE_TTL_MAX + 1)
        assert recovery.verify_reset_code(store, NUMBER, code, config=app.config, now=late) is None


# --- e-mail verification --------------------------------------------------------------------

def email_verified_at(app, identity_id=None, email="binh@example.vn"):
    with app.app_context():
        identity = db.session.query(Identity).filter_by(email=email).one()
        return identity.email_verified_at


def test_registration_sends_a_link_that_verifies_the_address_once(app, smtp):
    client = app.test_client()
    page = client.get("/register")
    resp = client.post("/register", data={
        "personal_number": "001199054321", "full_name": "Trần Thị Bình", "birth_date": "1999-03-02",
        "gender": "female", "phone": "", "email": "binh@example.vn", "password": PASSWORD,
        "csrf_token": csrf_from(page.get_data(as_text=True)),
    })
    assert resp.status_code == 302
    [msg] = smtp.inbox.wait_for(1)
    assert msg["To"] == "binh@example.vn"
    link = link_in(msg, "/verify-email")
    assert email_verified_at(app) is None  # not before the link is used

    first = app.test_client().get(link)
    assert first.status_code == 200
    assert email_verified_at(app) is not None
    second = app.test_client().get(link)
    assert second.status_code == 400
    assert app.test_client().get("/verify-email?token=nonsense").status_code == 400


def test_link_for_a_replaced_address_verifies_nothing(app, smtp):
    identity_id = make_citizen(app, email="binh@example.vn", email_verified=False)
    store = app.extensions["idp_store"]
    with app.app_context():
        identity = db.session.get(Identity, identity_id)
        assert recovery.start_email_verification(store, identity, config=app.config, now=utcnow())
    link = link_in(smtp.inbox.wait_for(1)[0], "/verify-email")
    with app.app_context():
        db.session.get(Identity, identity_id).email = "other@example.vn"
        db.session.commit()
    assert app.test_client().get(link).status_code == 400
    assert email_verified_at(app, email="other@example.vn") is None


def test_no_reset_mail_to_an_unverified_address_even_with_a_link_pending(app, smtp):
    identity_id = make_citizen(app, email="binh@example.vn", email_verified=False)
    with app.app_context():
        identity = db.session.get(Identity, identity_id)
        assert recovery.start_email_verification(app.extensions["idp_store"], identity,
                                                 config=app.config, now=utcnow())
    client = app.test_client()
    neutral(client, ask_reset(client, "binh@example.vn"))
    [only] = smtp.inbox.settled()
    assert "/verify-email?token=" in body(only) and "/recover/reset" not in body(only)


# --- notifications --------------------------------------------------------------------------

def test_notification_after_a_password_change(app, smtp, citizen):
    with app.test_request_context("/account/security/password", environ_base={"REMOTE_ADDR": "203.0.113.9"}):
        events.record(citizen, "password_changed", now=utcnow(), address="203.0.113.9",
                      user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
    [msg] = smtp.inbox.wait_for(1)
    text = body(msg)
    assert msg["To"] == "an@example.vn"
    assert "203.0.113.9" in text and "Firefox" in text
    assert "http://localhost/recover" in text
    assert re.search(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", text)


def test_notification_after_a_login_from_a_new_device(app, smtp, citizen):
    first = app.test_client()
    assert login(first).status_code == 302
    assert login(first).status_code == 302  # the same browser again: nothing to tell
    assert smtp.inbox.settled() == []
    second = app.test_client()  # no device cookie
    assert login(second).status_code == 302
    [msg] = smtp.inbox.wait_for(1)
    assert msg["To"] == "an@example.vn" and "127.0.0.1" in body(msg)


def test_no_notification_without_a_verified_address_or_for_other_events(app, smtp):
    identity_id = make_citizen(app, email_verified=False)
    with app.test_request_context("/"):
        events.record(identity_id, "password_changed", now=utcnow())
    verified = make_citizen(app, number="001199054321", birth=date(1999, 3, 2), gender="female",
                            phone="0987654321", email="binh@example.vn")
    with app.test_request_context("/"):
        events.record(verified, "login", now=utcnow())
    assert smtp.inbox.settled() == []


def test_notification_in_english_when_the_person_uses_english(app, smtp, citizen):
    with app.test_request_context("/?ui_locales=en"):
        events.record(citizen, "totp_enabled", now=utcnow(), address="198.51.100.7")
    [msg] = smtp.inbox.wait_for(1)
    assert msg["Content-Language"] == "en"
    assert "authenticator app" in msg["Subject"]


def test_the_store_holds_only_digests_of_links(app, smtp, citizen):
    ask_reset(app.test_client())
    token = reset_link(smtp).split("=", 1)[1]
    store = app.extensions["idp_store"]
    with app.app_context():
        assert store.get("reset:" + token) is None
        record = json.loads(store.get("reset:" + recovery._digest(token)))
        assert record["via"] == "email" and token not in json.dumps(record)
