"""SMS one-time codes (6 digits, at most 10 minutes, bound to their transaction, single use) and
phone verification through the account pages."""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta

import pytest

from idp.accounts import recovery, services, sms
from idp.errors import Throttled
from idp.extensions import db
from idp.identity.models import Identity
from idp.timeutil import utcnow
from tests.support.forms import csrf_from, submit
from tests.support.smtp import enable_loggers

PASSWORD = "một buổi sáng mùa thu ở hà nội"
PHONE = "+84912345678"
OTHER_PHONE = "+84987654321"


@pytest.fixture(autouse=True)
def _logs(migrated):
    enable_loggers("idp.accounts.sms")


def issue(app, *, purpose="verify_phone", identity_id="id-1", contact=PHONE, now=None):
    with app.app_context():
        return sms.issue_code(app.extensions["idp_store"], purpose=purpose, identity_id=identity_id,
                              contact=contact, config=app.config, now=now or utcnow())


def verify(app, code, *, purpose="verify_phone", identity_id="id-1", contact=PHONE, now=None):
    with app.app_context():
        return sms.verify_code(app.extensions["idp_store"], purpose=purpose, identity_id=identity_id,
                               contact=contact, code=code, config=app.config, now=now or utcnow())


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_code_is_six_digits_and_only_a_keyed_digest_is_stored(app):
    code = issue(app)
    assert re.fullmatch(r"[0-9]{6}", code)
    store = app.extensions["idp_store"]
    with app.app_context():
        key = "sms-code:" + sms._transaction("verify_phone", "id-1", PHONE)
        stored = store.get(key)
        assert stored is not None and code not in stored
        assert 0 < store.ttl(key) <= 600


def test_right_code_works_once(app):
    code = issue(app)
    assert verify(app, wrong(code)) is False
    assert verify(app, code) is True
    assert verify(app, code) is False


def test_expires_after_ten_minutes_even_if_configured_longer(make_app):
    app = make_app(SMS_CODE_TTL=3600)
    t0 = utcnow()
    code = issue(app, now=t0)
    assert verify(app, code, now=t0 + timedelta(seconds=601)) is False
    assert verify(app, code, now=t0 + timedelta(seconds=599)) is True
    with app.app_context():
        assert sms.code_ttl(app.config) == 600


def test_bound_to_purpose_identity_and_number(app):
    code = issue(app)
    assert verify(app, code, contact=OTHER_PHONE) is False
    assert verify(app, code, identity_id="id-2") is False
    assert verify(app, code, purpose="password_reset") is False
    # Still good for its own transaction.
    assert verify(app, code) is True


def test_a_new_code_replaces_the_previous_one(app):
    first = issue(app)
    second = issue(app)
    if first != second:
        assert verify(app, first) is False
    assert verify(app, second) is True


def test_attempts_are_limited_then_the_code_is_burned(app):
    code = issue(app)
    for _ in range(5):
        assert verify(app, wrong(code)) is False
    with pytest.raises(Throttled):
        verify(app, code)
    # Other transactions are not affected.
    other = issue(app, contact=OTHER_PHONE)
    assert verify(app, other, contact=OTHER_PHONE) is True


def test_log_sender_and_unknown_backend(caplog):
    with caplog.at_level(logging.INFO, logger="idp.accounts.sms"):
        assert sms.send_sms(PHONE, "Mã của bạn là 123456", config={"SMS_BACKEND": "log"}) is True
    assert "123456" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="idp.accounts.sms"):
        assert sms.send_sms(PHONE, "Mã của bạn là 123456", config={"PROFILE": "production"}) is False
        assert sms.send_sms(PHONE, "x", config={"SMS_BACKEND": "gateway"}) is False
    assert "123456" not in caplog.text
    with pytest.raises(ValueError):
        sms.sender_for({"SMS_BACKEND": "gateway"})


# --- phone verification through the pages --------------------------------------------------

@pytest.fixture
def citizen(app):
    with app.app_context():
        identity = services.register_citizen(
            personal_number="001099012345", full_name="Nguyễn Văn An", birth_date=date(1999, 5, 14),
            gender="male", phone="0912345678", email=None, password=PASSWORD, config=app.config,
            now=utcnow(),
        )
        return identity.id


def logged_in(app):
    client = app.test_client()
    resp = submit(client, "/login", {"login": "001099012345", "password": PASSWORD})
    assert resp.status_code == 302
    return client


def sent_codes(caplog) -> list[str]:
    return [re.search(r"\b([0-9]{6})\b", r.args[1]).group(1)
            for r in caplog.records if r.name == "idp.accounts.sms" and r.args]


def phone_verified_at(app, identity_id):
    with app.app_context():
        return db.session.get(Identity, identity_id).phone_verified_at


def test_phone_verification_pages(app, citizen, caplog):
    client = logged_in(app)
    page = client.get("/account/contact")
    assert page.status_code == 200 and "+84912345678" in page.get_data(as_text=True)
    with caplog.at_level(logging.INFO, logger="idp.accounts.sms"):
        resp = submit(client, "/account/contact/phone/verify", {}, form_url="/account/contact")
    assert resp.status_code == 303
    [code] = sent_codes(caplog)
    assert phone_verified_at(app, citizen) is None

    refused = submit(client, "/account/contact/phone/confirm", {"code": wrong(code)}, form_url="/account/contact")
    assert refused.status_code == 400
    assert 'class="error" id="code-error"' in refused.get_data(as_text=True)
    assert phone_verified_at(app, citizen) is None

    ok = submit(client, "/account/contact/phone/confirm", {"code": code}, form_url="/account/contact")
    assert ok.status_code == 303 and ok.headers["Location"].endswith("/account")
    assert phone_verified_at(app, citizen) is not None


def test_phone_code_is_single_use_and_for_this_number_only(app, citizen, caplog):
    client = logged_in(app)
    with caplog.at_level(logging.INFO, logger="idp.accounts.sms"):
        submit(client, "/account/contact/phone/verify", {}, form_url="/account/contact")
    [code] = sent_codes(caplog)
    store = app.extensions["idp_store"]
    with app.app_context():
        identity = db.session.get(Identity, citizen)
        # The number changed since the code was sent: the code proves nothing about the new one.
        identity.phone = OTHER_PHONE
        db.session.commit()
        assert recovery.confirm_phone(store, identity, code, config=app.config, now=utcnow()) is False
        identity.phone = PHONE
        db.session.commit()
        assert recovery.confirm_phone(store, identity, code, config=app.config, now=utcnow()) is True
        identity.phone_verified_at = None
        db.session.commit()
        assert recovery.confirm_phone(store, identity, code, config=app.config, now=utcnow()) is False
        assert db.session.get(Identity, citizen).phone_verified_at is None


def test_phone_code_expires(app, citizen, caplog):
    store = app.extensions["idp_store"]
    t0 = utcnow()
    with app.app_context(), caplog.at_level(logging.INFO, logger="idp.accounts.sms"):
        identity = db.session.get(Identity, citizen)
        assert recovery.start_phone_verification(store, identity, config=app.config, now=t0) is True
        [code] = sent_codes(caplog)
        late = t0 + timedelta(minutes=10, seconds=1)
        assert recovery.confirm_phone(store, identity, code, config=app.config, now=late) is False
        assert identity.phone_verified_at is None


def test_phone_verification_needs_login(app, citizen):
    client = app.test_client()
    page = client.get("/login")
    resp = client.post("/account/contact/phone/confirm",
                       data={"code": "123456", "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
