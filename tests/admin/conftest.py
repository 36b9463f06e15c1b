"""Helpers for the admin console tests: officers with a role and an authenticator app, logged
in through the real pages (password, then a TOTP code computed with pyotp)."""

from __future__ import annotations

import time
from datetime import date, datetime

import pyotp
import pytest

from idp.accounts import factors
from idp.accounts import services as account_services
from idp.accounts.models import Role
from idp.extensions import db
from idp.identity.models import Identity
from idp.timeutil import utcnow
from tests.support.forms import csrf_from, submit

PASSWORD = "một buổi sáng mùa thu ở hà nội"


class Codes:
    """TOTP codes, each from a time step not used before (the server refuses a used step)."""

    def __init__(self, secret: str):
        self.totp = pyotp.TOTP(secret)
        self.used: set[int] = set()

    def fresh(self) -> str:
        base = self.totp.timecode(datetime.fromtimestamp(time.time()))
        for offset in (1, 0, -1):
            if base + offset not in self.used:
                self.used.add(base + offset)
                return self.totp.generate_otp(base + offset)
        raise AssertionError("no unused TOTP step left in the window")


# People of the tests: personal number (agrees with birth date and gender), phone, e-mail.
PEOPLE = {
    "superadmin": ("001080000001", date(1980, 1, 2), "male", "0912000001"),
    "identity_officer": ("001181000002", date(1981, 3, 4), "female", "0912000002"),
    "client_manager": ("001082000003", date(1982, 5, 6), "male", "0912000003"),
    "auditor": ("001183000004", date(1983, 7, 8), "female", "0912000004"),
    "officer2": ("001084000005", date(1984, 9, 10), "male", "0912000005"),
}


def make_person(app, personal_number, *, full_name="Nguyễn Văn An", birth_date=date(1999, 5, 14),
                gender="male", phone=None, email=None, password=PASSWORD):
    if not phone and not email:
        email = f"p{personal_number}@example.vn"
    with app.app_context():
        identity = account_services.register_citizen(
            config=app.config, now=utcnow(), personal_number=personal_number, full_name=full_name,
            birth_date=birth_date, gender=gender, phone=phone, email=email, password=password)
        return identity.id


def enrol_totp(app, identity_id) -> Codes:
    with app.app_context():
        secret = factors.start_enrolment(identity_id, config=app.config, now=utcnow())
        codes = Codes(secret)
        store = app.extensions["idp_store"]
        assert factors.confirm_enrolment(store, identity_id, codes.fresh(), config=app.config, now=utcnow())
    return codes


def make_officer(app, who: str, roles=None, *, totp=True):
    """An identity holding roles (default: the role named `who`); returns (id, login, codes)."""
    number, born, gender, phone = PEOPLE[who]
    identity_id = make_person(app, number, full_name=f"Cán bộ {who.replace('_', ' ').title()}",
                              birth_date=born, gender=gender, phone=phone)
    with app.app_context():
        identity = db.session.get(Identity, identity_id)
        for role in roles or [Role(who)]:
            account_services.grant_role(identity, Role(role), granted_by="test", now=utcnow())
    codes = enrol_totp(app, identity_id) if totp else None
    return identity_id, number, codes


def log_in(client, login, codes=None, password=PASSWORD):
    """Password, then the second factor when codes are given; returns the last response."""
    first = submit(client, "/login", {"login": login, "password": password})
    assert first.status_code == 302, first.get_data(as_text=True)[:500]
    if codes is None:
        return first
    assert first.headers["Location"].endswith("/login/second-factor"), first.headers["Location"]
    resp = submit(client, "/login/second-factor", {"code": codes.fresh()})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return resp


@pytest.fixture
def officer_client(app):
    """officer_client(who, roles=None) -> (test client logged in with two factors, identity id)."""

    def make(who: str, roles=None):
        identity_id, number, codes = make_officer(app, who, roles)
        client = app.test_client()
        log_in(client, number, codes)
        return client, identity_id

    return make


def token(client, url="/admin/") -> str:
    """A CSRF token of this browser session (every admin page carries one)."""
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code, page.headers.get("Location"))
    return csrf_from(page.get_data(as_text=True))


def post(client, url, data=None, *, page="/admin/", **kwargs):
    return client.post(url, data={**(data or {}), "csrf_token": token(client, page)}, **kwargs)


def audit_actions(app, **filters) -> list:
    from idp import audit

    with app.app_context():
        entries, _ = audit.search(per_page=500, **filters)
        return [(e.action, e.actor, e.target_id, e.content) for e in entries]
