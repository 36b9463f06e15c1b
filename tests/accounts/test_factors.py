"""Second factors (issue #4): TOTP enrolment through the pages, the ±1 step window, the replay
guard across processes, recovery codes, recent login for changes, the officers' policy.

No app context stays pushed while the test client runs: each request gets a fresh `g`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import date, datetime
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from sqlalchemy import select

from idp.accounts import factors
from idp.accounts import services as account_services
from idp.accounts.models import AccountEvent, RecoveryCode, Role, TotpCredential
from idp.errors import ValidationError
from idp.extensions import db
from idp.identity.models import Identity
from idp.timeutil import utcnow
from tests.support.forms import csrf_from, submit
from tests.support.live import LiveServer, csrf_token, post_form

PASSWORD = "một buổi sáng mùa thu ở hà nội"
LOGIN = "001099012345"


# --- helpers (also used by the console and assurance tests) ---------------------------------

def register(app, personal_number=LOGIN, **changes) -> object:
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
        return account_services.register_citizen(config=app.config, now=utcnow(), **fields).id


def log_in(client, login=LOGIN, password=PASSWORD):
    return submit(client, "/login", {"login": login, "password": password})


class Codes:
    """TOTP codes for a secret, each from a time step not used before (the server refuses a
    used step). Prefers the next step, so a clock tick cannot push a code out of the window."""

    def __init__(self, secret: str):
        self.totp = pyotp.TOTP(secret)
        self.used: set[int] = set()

    def step(self, at: float | None = None) -> int:
        return self.totp.timecode(datetime.fromtimestamp(time.time() if at is None else at))

    def mark(self, step: int) -> None:
        self.used.add(step)

    def fresh(self) -> str:
        base = self.step()
        for offset in (1, 0, -1):
            if base + offset not in self.used:
                self.used.add(base + offset)
                return self.totp.generate_otp(base + offset)
        raise AssertionError("no unused TOTP step left in the window: wait 30 seconds")


def enrol_totp_ui(client) -> tuple[Codes, list[str]]:
    """Set up the authenticator app through the pages; returns its codes and the recovery codes."""
    page = client.get("/account/security/totp")
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    secret = re.search(r'<code id="totp-secret"[^>]*>([^<]+)</code>', html).group(1).replace(" ", "")
    codes = Codes(secret)
    resp = client.post("/account/security/totp", data={"code": codes.fresh(), "csrf_token": csrf_from(html)})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    recovery = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", resp.get_data(as_text=True))
    return codes, recovery


def enrol_totp_service(app, identity_id) -> Codes:
    """Set up TOTP without the pages (for identities that must not be logged in first)."""
    with app.app_context():
        secret = factors.start_enrolment(identity_id, config=app.config, now=utcnow())
        codes = Codes(secret)
        store = app.extensions["idp_store"]
        assert factors.confirm_enrolment(store, identity_id, codes.fresh(), config=app.config, now=utcnow())
        factors.new_recovery_codes(identity_id, now=utcnow())
    return codes


def log_in_two_factors(client, code: str, login=LOGIN, password=PASSWORD):
    first = log_in(client, login, password)
    assert first.status_code == 302 and first.headers["Location"].endswith("/login/second-factor"), first.headers
    return submit(client, "/login/second-factor", {"code": code})


def age_session(app, identity_id, seconds: int) -> None:
    """Move the authentication time of every session of the identity back (no longer recent)."""
    with app.app_context():
        store = app.extensions["idp_store"]
        for public_id in store.set_members("sso-by-identity:" + str(identity_id)):
            raw = store.get("sso:" + public_id)
            data = json.loads(raw)
            data["auth_time"] -= seconds
            store.set("sso:" + public_id, json.dumps(data), 3600)


def event_names(app, identity_id) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(AccountEvent.event).where(AccountEvent.identity_id == identity_id).order_by(AccountEvent.id)
        ))


@pytest.fixture
def citizen(app):
    return register(app)


# --- TOTP enrolment ------------------------------------------------------------------------

def test_totp_enrolment_through_the_pages(app, client, citizen):
    assert log_in(client).status_code == 302
    page = client.get("/account/security/totp")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'lang="vi"' in html and 'src="data:image/svg+xml' in html
    secret = re.search(r'<code id="totp-secret"[^>]*>([^<]+)</code>', html).group(1).replace(" ", "")
    assert len(secret) >= 26
    # A wrong code is refused with the message next to the field; nothing is confirmed.
    wrong = client.post("/account/security/totp", data={"code": "000000", "csrf_token": csrf_from(html)})
    assert wrong.status_code == 400
    assert 'id="code-error"' in wrong.get_data(as_text=True)
    codes = Codes(secret)
    resp = client.post("/account/security/totp", data={"code": codes.fresh(), "csrf_token": csrf_from(html)})
    assert resp.status_code == 200
    shown = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", resp.get_data(as_text=True))
    assert len(shown) == 10 == len(set(shown))
    assert all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", c) for c in shown)
    with app.app_context():
        cred = db.session.get(TotpCredential, citizen)
        assert cred.confirmed_at is not None
        # The secret is sealed, never stored as it is.
        assert secret not in cred.secret_encrypted
        rows = list(db.session.scalars(select(RecoveryCode).where(RecoveryCode.identity_id == citizen)))
        assert len(rows) == 10
        digests = {r.digest for r in rows}
        assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests)
        assert not digests & {c for c in shown} and not digests & {c.replace("-", "") for c in shown}
    assert "totp_enabled" in event_names(app, citizen)
    # The codes are shown once: the enrolment page is gone, a second confirmation is impossible.
    again = client.get("/account/security/totp")
    assert again.status_code == 302 and again.headers["Location"].endswith("/account")
    post_again = client.post("/account/security/totp", data={"code": codes.fresh(), "csrf_token": csrf_from(html)})
    assert post_again.status_code == 302
    security = client.get("/account/security").get_data(as_text=True)
    assert not any(code in security for code in shown)
    with app.app_context():
        store = app.extensions["idp_store"]
        with pytest.raises(ValidationError):
            factors.start_enrolment(citizen, config=app.config, now=utcnow())
        assert factors.confirm_enrolment(store, citizen, codes.fresh(), config=app.config, now=utcnow()) is False
        assert factors.remaining_recovery_codes(citizen) == 10


def test_one_step_either_side_accepted_two_refused_and_each_code_once(app, citizen):
    enrol_totp_service(app, citizen)
    # Far from the enrolment's own steps, so only this test's codes are "used".
    moment = time.time() + 100_000
    with app.app_context():
        store = app.extensions["idp_store"]
        cred = db.session.get(TotpCredential, citizen)
        box = factors._box(app.config)
        plain = box.decrypt(cred.secret_encrypted, context=factors._context(citizen)).decode()
        totp = pyotp.TOTP(plain)

        def verify(offset_seconds: float, at: float = moment) -> bool:
            code = totp.at(datetime.fromtimestamp(at + offset_seconds))
            return factors.verify_totp(store, citizen, code, config=app.config, now=at)

        assert verify(+60) is False   # two steps ahead
        assert verify(-60) is False   # two steps behind
        assert verify(-30) is True    # one step behind
        assert verify(+30) is True    # one step ahead
        assert verify(0) is True      # this step
        assert verify(0) is False     # used already
        assert verify(-30) is False   # used already
        # A code is not a code: wrong length and letters are refused without a match.
        assert factors.verify_totp(store, citizen, "12345", config=app.config, now=moment) is False
        assert factors.verify_totp(store, citizen, "abcdef", config=app.config, now=moment) is False


def test_totp_attempts_are_throttled(make_app):
    app = make_app(TOTP_THROTTLE_LIMIT=3)
    citizen = register(app)
    codes = enrol_totp_service(app, citizen)
    client = app.test_client()
    assert log_in(client).status_code == 302
    for _ in range(3):
        assert submit(client, "/login/second-factor", {"code": "000000"}).status_code == 401
    resp = submit(client, "/login/second-factor", {"code": codes.fresh()})
    assert resp.status_code == 429
    assert 0 < int(resp.headers["Retry-After"]) <= app.config["TOTP_THROTTLE_WINDOW"]


@pytest.mark.slow
def test_used_code_is_refused_by_another_process(make_app, base_config):
    app = make_app()  # registers the cleanup of the shared database and store
    citizen = register(app)
    codes = enrol_totp_service(app, citizen)
    config = {**base_config, "SERVER_NAME": None}
    with LiveServer(config) as a, LiveServer(config) as b:
        assert a.process.pid != b.process.pid
        code = codes.fresh()
        first = requests.Session()
        resp = post_form(first, a.url + "/login", {"login": LOGIN, "password": PASSWORD})
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/second-factor")
        resp = post_form(first, a.url + "/login/second-factor", {"code": code})
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/account"), resp.text[:300]
        assert first.get(a.url + "/account", timeout=10).status_code == 200

        # The same code at the other process, in a fresh login: refused (the guard is the store).
        second = requests.Session()
        resp = post_form(second, b.url + "/login", {"login": LOGIN, "password": PASSWORD})
        assert resp.status_code == 302
        resp = post_form(second, b.url + "/login/second-factor", {"code": code})
        assert resp.status_code == 401
        assert second.get(b.url + "/account", allow_redirects=False, timeout=10).status_code == 302
        # A code from another step works there: the refusal was the replay guard, not the server.
        resp = post_form(second, b.url + "/login/second-factor", {"code": codes.fresh()})
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/account")
        page = second.get(b.url + "/account", timeout=10)
        assert page.status_code == 200 and csrf_token(page.text)


# --- recovery codes ------------------------------------------------------------------------

def test_recovery_codes_single_use_and_regeneration(app, client, citizen):
    assert log_in(client).status_code == 302
    _, recovery = enrol_totp_ui(client)

    # Logging in with a recovery code instead of the app works.
    other = app.test_client()
    resp = log_in_two_factors(other, recovery[0].upper().replace("-", " "))
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account")
    page = other.get("/account/security").get_data(as_text=True)
    assert re.search(r'id="recovery-remaining">[^<]*9[^<]*10', page)

    # Each works once.
    third = app.test_client()
    resp = log_in_two_factors(third, recovery[0])
    assert resp.status_code == 401
    assert third.get("/account").status_code == 302

    # New codes replace the old set: an old unused code no longer works, a new one does.
    resp = submit(client, "/account/security/recovery-codes", {}, form_url="/account/security")
    assert resp.status_code == 200
    fresh = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", resp.get_data(as_text=True))
    assert len(fresh) == 10 and not set(fresh) & set(recovery)
    assert "recovery_codes_regenerated" in event_names(app, citizen)
    fourth = app.test_client()
    assert log_in_two_factors(fourth, recovery[1]).status_code == 401
    fifth = app.test_client()
    resp = log_in_two_factors(fifth, fresh[0])
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account")
    with app.app_context():
        assert factors.remaining_recovery_codes(citizen) == 9


def test_recovery_code_is_bound_to_its_identity_and_used_once(app, citizen):
    enrol_totp_service(app, citizen)
    with app.app_context():
        store = app.extensions["idp_store"]
        codes = factors.new_recovery_codes(citizen, now=utcnow())
        assert factors.use_recovery_code(store, citizen, codes[3], config=app.config, now=utcnow())
        assert not factors.use_recovery_code(store, citizen, codes[3], config=app.config, now=utcnow())
        # Another person's code is not this person's: the digest includes the identity.
        assert not factors.use_recovery_code(store, uuid.uuid4(), codes[4],
                                             config=app.config, now=utcnow())


# --- recent login for changes --------------------------------------------------------------

def test_removing_or_resetting_a_factor_needs_a_recent_login(app, client, citizen):
    assert log_in(client).status_code == 302
    codes, _ = enrol_totp_ui(client)
    page = client.get("/account/security").get_data(as_text=True)
    token = csrf_from(page)
    age_session(app, citizen, 3600)

    for url in ("/account/security/totp/remove", "/account/security/recovery-codes"):
        resp = client.post(url, data={"csrf_token": token}, headers={"Referer": "http://localhost/account/security"})
        assert resp.status_code == 302, url
        location = urlsplit(resp.headers["Location"])
        # Back to the page the form was on after logging in again (never a GET of a POST address).
        assert location.path == "/login"
        assert parse_qs(location.query) == {"next": ["/account/security"], "reauth": ["1"]}
    with app.app_context():
        assert factors.has_totp(citizen)
        assert factors.remaining_recovery_codes(citizen) == 10

    # Logging in again (both factors) makes the session recent: the removal goes through.
    resp = log_in_two_factors(client, codes.fresh())
    assert resp.status_code == 302
    resp = submit(client, "/account/security/totp/remove", {}, form_url="/account/security")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account")
    with app.app_context():
        assert not factors.has_totp(citizen)
        assert factors.totp_credential(citizen) is None
        assert factors.remaining_recovery_codes(citizen) == 0
    assert "totp_removed" in event_names(app, citizen)
    # Only the password now.
    assert log_in(app.test_client()).headers["Location"].endswith("/account")


def test_setting_up_the_app_needs_a_recent_login(make_app):
    app = make_app(REAUTH_MAX_AGE=60)
    citizen = register(app)
    client = app.test_client()
    assert log_in(client).status_code == 302
    age_session(app, citizen, 120)
    resp = client.get("/account/security/totp")
    location = urlsplit(resp.headers["Location"])
    assert resp.status_code == 302 and location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/account/security/totp"], "reauth": ["1"]}
    with app.app_context():
        assert factors.totp_credential(citizen) is None


# --- officers and administrators -----------------------------------------------------------

def test_administrator_without_totp_is_sent_to_set_it_up(app, client, citizen):
    with app.app_context():
        identity = db.session.get(Identity, citizen)
        account_services.grant_role(identity, Role.SUPERADMIN, granted_by="test", now=utcnow())
    resp = log_in(client)
    assert resp.status_code == 302
    assert "/account/security/totp" in resp.headers["Location"]
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200 and 'id="totp-secret"' in page.get_data(as_text=True)


def test_administrator_with_totp_is_always_asked_for_the_second_factor(app, citizen):
    codes = enrol_totp_service(app, citizen)
    with app.app_context():
        identity = db.session.get(Identity, citizen)
        account_services.grant_role(identity, Role.CLIENT_MANAGER, granted_by="test", now=utcnow())
    for _ in range(2):
        client = app.test_client()
        resp = log_in(client)
        assert resp.headers["Location"].endswith("/login/second-factor")
        # The password alone opens nothing.
        assert client.get("/account").status_code == 302
        resp = submit(client, "/login/second-factor", {"code": codes.fresh()})
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/account")
