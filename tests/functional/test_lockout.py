"""Failed-login throttling per NIST SP 800-63B-4 (issue #4): growing delays, the password
lock after LOGIN_LOCK_AFTER consecutive failures, the per-address limit, X-Forwarded-For only
behind a configured proxy, the shared store as the only source of truth (never a per-process
fallback), and all of it across processes."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from idp.accounts import passwords, services
from idp.accounts.models import PasswordCredential
from idp.extensions import db
from idp.identity.models import Identity
from idp.timeutil import utcnow
from tests.accounts.test_factors import LOGIN, PASSWORD, register
from tests.support.forms import csrf_from
from tests.support.live import LiveServer, post_form

WRONG = "không đúng đâu nhé bạn ơi"
UNKNOWN = "001199012345"  # a well-formed personal number nobody registered


def attempt(client, login=LOGIN, password=PASSWORD, headers=None):
    page = client.get("/login", headers=headers)
    return client.post("/login", data={"login": login, "password": password,
                                       "csrf_token": csrf_from(page.get_data(as_text=True))}, headers=headers)


def from_address(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def error_summary(resp) -> str:
    html = resp.get_data(as_text=True)
    return html.split('class="error-summary"', 1)[1].split("</div>", 1)[0]


# --- growing delays ------------------------------------------------------------------------

def test_growing_delays_after_consecutive_failures(make_app):
    app = make_app(LOGIN_DELAY_AFTER=2, LOGIN_THROTTLE_PER_ACCOUNT=100)
    register(app)
    client = app.test_client()
    assert attempt(client, password=WRONG).status_code == 401
    assert attempt(client, password=WRONG).status_code == 401  # the 2nd: a 2-second wait starts
    # Within the delay even the right password is refused, and told when to come back.
    resp = attempt(client)
    assert resp.status_code == 429
    first_wait = int(resp.headers["Retry-After"])
    assert 1 <= first_wait <= 2
    assert "Quá nhiều lần thử" in resp.get_data(as_text=True)
    assert client.get("/account").status_code == 302
    time.sleep(first_wait + 0.2)
    assert attempt(client, password=WRONG).status_code == 401  # the 3rd: 4 seconds now
    resp = attempt(client)
    assert resp.status_code == 429
    assert 2 < int(resp.headers["Retry-After"]) <= 4
    # An unknown account is delayed the same way (nothing tells the two apart).
    for _ in range(2):
        assert attempt(client, UNKNOWN, WRONG).status_code == 401
    resp = attempt(client, UNKNOWN, WRONG)
    assert resp.status_code == 429 and 1 <= int(resp.headers["Retry-After"]) <= 2


def test_delay_ends_and_a_success_resets_it(make_app):
    app = make_app(LOGIN_DELAY_AFTER=2, LOGIN_DELAY_MAX=1, LOGIN_THROTTLE_PER_ACCOUNT=100)
    register(app)
    client = app.test_client()
    for _ in range(2):
        attempt(client, password=WRONG)
    assert attempt(client).status_code == 429
    time.sleep(1.2)
    assert attempt(client).status_code == 302
    # The count starts again from zero: one failure brings no delay.
    other = app.test_client()
    assert attempt(other, password=WRONG).status_code == 401
    assert attempt(other).status_code == 302


# --- the lock after 100 consecutive failures -----------------------------------------------

LOCK_CONFIG = dict(LOGIN_LOCK_AFTER=100, LOGIN_DELAY_AFTER=1000, LOGIN_THROTTLE_PER_ACCOUNT=1000,
                   LOGIN_THROTTLE_PER_ADDRESS=100_000)


def authenticate(app, login, password, address="192.0.2.10"):
    """One password check through the service; returns the error raised, or None on success."""
    with app.app_context():
        try:
            services.authenticate(app.extensions["idp_store"], login=login, password=password,
                                  address=address, config=app.config, now=utcnow())
        except services.DomainError as exc:
            return exc
        return None


def test_hundred_consecutive_failures_lock_the_password(make_app):
    app = make_app(**LOCK_CONFIG)
    citizen = register(app)
    errors = [authenticate(app, LOGIN, WRONG) for _ in range(99)]
    assert all(isinstance(e, services.LoginFailed) for e in errors)
    with app.app_context():
        cred = db.session.get(PasswordCredential, citizen)
        assert cred.failed_count == 99 and cred.locked_at is None
    hundredth = authenticate(app, LOGIN, WRONG)
    assert isinstance(hundredth, services.FactorLocked) and hundredth.status == 403
    with app.app_context():
        assert db.session.get(PasswordCredential, citizen).locked_at is not None
    # The right password no longer opens it: the same lock message.
    right = authenticate(app, LOGIN, PASSWORD)
    assert isinstance(right, services.FactorLocked)
    assert str(right.message) == str(hundredth.message)

    # An unknown account answers exactly the same, at the same count.
    unknown = [authenticate(app, UNKNOWN, WRONG) for _ in range(100)]
    assert all(isinstance(e, services.LoginFailed) for e in unknown[:99])
    assert type(unknown[99]) is type(hundredth) and unknown[99].status == hundredth.status
    assert str(unknown[99].message) == str(hundredth.message)
    after = authenticate(app, UNKNOWN, PASSWORD)
    assert type(after) is type(right) and str(after.message) == str(right.message)
    assert after.field == right.field

    # Over HTTP the two pages are identical too, in Vietnamese.
    client = app.test_client()
    known_page, unknown_page = attempt(client), attempt(client, UNKNOWN, PASSWORD)
    assert known_page.status_code == unknown_page.status_code == 403
    assert error_summary(known_page) == error_summary(unknown_page)
    assert client.get("/account").status_code == 302


def test_a_success_before_the_limit_resets_the_count(make_app):
    app = make_app(**LOCK_CONFIG)
    citizen = register(app)
    for _ in range(99):
        authenticate(app, LOGIN, WRONG)
    assert authenticate(app, LOGIN, PASSWORD) is None
    with app.app_context():
        assert db.session.get(PasswordCredential, citizen).failed_count == 0
    for _ in range(99):
        assert isinstance(authenticate(app, LOGIN, WRONG), services.LoginFailed)
    assert authenticate(app, LOGIN, PASSWORD) is None
    with app.app_context():
        assert db.session.get(PasswordCredential, citizen).locked_at is None


def test_a_new_password_unlocks(make_app):
    app = make_app(**{**LOCK_CONFIG, "LOGIN_LOCK_AFTER": 3})
    citizen = register(app)
    for _ in range(3):
        authenticate(app, LOGIN, WRONG)
    assert isinstance(authenticate(app, LOGIN, PASSWORD), services.FactorLocked)
    new = "cây đa đầu làng và giếng nước sân đình"
    with app.app_context():
        services.set_password(db.session.get(Identity, citizen), new, config=app.config, now=utcnow())
    assert authenticate(app, LOGIN, new) is None


# --- per address, and which address ---------------------------------------------------------

def test_per_address_limit_against_spraying(make_app):
    app = make_app(LOGIN_THROTTLE_PER_ADDRESS=5, LOGIN_THROTTLE_PER_ACCOUNT=100)
    register(app)
    sprayer = from_address(app, "198.51.100.7")
    # One guess each at many accounts, from one address.
    for n in range(5):
        assert attempt(sprayer, f"00119901234{n}", WRONG).status_code == 401
    resp = attempt(sprayer)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    # The account itself is not blocked for its owner elsewhere.
    assert attempt(from_address(app, "198.51.100.8")).status_code == 302


def test_forwarded_for_is_ignored_without_a_proxy(make_app):
    app = make_app(LOGIN_THROTTLE_PER_ADDRESS=3, LOGIN_THROTTLE_PER_ACCOUNT=100)
    register(app)
    client = from_address(app, "198.51.100.20")
    for n in range(3):
        resp = attempt(client, f"00119901234{n}", WRONG, headers={"X-Forwarded-For": f"203.0.113.{n}"})
        assert resp.status_code == 401
    # A new forwarded address changes nothing: the connection's address is what counts.
    resp = attempt(client, headers={"X-Forwarded-For": "203.0.113.99"})
    assert resp.status_code == 429


def test_forwarded_for_counts_behind_a_configured_proxy(make_app):
    app = make_app(PROXY_FIX=1, LOGIN_THROTTLE_PER_ADDRESS=3, LOGIN_THROTTLE_PER_ACCOUNT=100)
    citizen = register(app)
    proxy = from_address(app, "10.0.0.2")  # every request arrives from the proxy
    spraying = {"X-Forwarded-For": "203.0.113.5"}
    for n in range(3):
        assert attempt(proxy, f"00119901234{n}", WRONG, headers=spraying).status_code == 401
    assert attempt(proxy, headers=spraying).status_code == 429
    # Another client behind the same proxy is not punished for the sprayer.
    resp = attempt(proxy, headers={"X-Forwarded-For": "203.0.113.9"})
    assert resp.status_code == 302
    with app.app_context():
        from idp.accounts import events

        logins = [e for e in events.recent(citizen) if e.event == "login"]
        assert logins and logins[0].address == "203.0.113.9"


# --- the store is the only truth -------------------------------------------------------------

def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_store_unreachable_answers_503_without_checking_the_password(app, make_app, monkeypatch):
    register(app)  # `app` first: the cleanup runs against a reachable store
    broken = make_app(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0", REDIS_TIMEOUT=0.5)
    calls = []
    real_verify, real_burn = passwords.verify_password, passwords.burn_verify
    monkeypatch.setattr(passwords, "verify_password", lambda *a, **k: calls.append("verify") or real_verify(*a, **k))
    monkeypatch.setattr(passwords, "burn_verify", lambda *a, **k: calls.append("burn") or real_burn(*a, **k))
    client = broken.test_client()
    for login in (LOGIN, UNKNOWN, LOGIN):  # again: no per-process fallback after the first failure
        started = time.monotonic()
        resp = attempt(client, login)
        assert resp.status_code == 503
        assert int(resp.headers["Retry-After"]) > 0
        html = resp.get_data(as_text=True)
        assert "Vui lòng thử lại sau" in html and 'lang="vi"' in html
        assert time.monotonic() - started < 5
    assert calls == []
    assert client.get_cookie("idp_sid") is None
    # The same database with the store back: the password works (the refusal was the store).
    assert attempt(app.test_client()).status_code == 302
    assert calls == ["verify"]


# --- across processes ----------------------------------------------------------------------

@pytest.mark.slow
def test_delay_and_lock_hold_across_two_processes(make_app, base_config):
    app = make_app()  # registers the cleanup of the shared database and store
    register(app)
    config = {**base_config, "SERVER_NAME": None, "LOGIN_DELAY_AFTER": 2, "LOGIN_DELAY_MAX": 1,
              "LOGIN_LOCK_AFTER": 4, "LOGIN_THROTTLE_PER_ACCOUNT": 100}
    with LiveServer(config) as a, LiveServer(config) as b:
        browser = {a.url: requests.Session(), b.url: requests.Session()}

        def login_at(server, password):
            return post_form(browser[server.url], server.url + "/login", {"login": LOGIN, "password": password})

        assert login_at(a, WRONG).status_code == 401
        assert login_at(b, WRONG).status_code == 401  # the 2nd failure, at the other process: a delay
        resp = login_at(a, PASSWORD)
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
        time.sleep(1.2)
        assert login_at(b, WRONG).status_code == 401
        time.sleep(1.2)
        locking = login_at(a, WRONG)  # the 4th consecutive failure, counted over both: locked
        assert locking.status_code == 403
        time.sleep(1.2)
        right = login_at(b, PASSWORD)  # the right password, at the other process
        assert right.status_code == 403

        def summary(page):
            return page.text.split('class="error-summary"', 1)[1].split("</div>", 1)[0]

        assert summary(right) == summary(locking)
    with app.app_context():
        assert db.session.query(PasswordCredential).one().locked_at is not None
