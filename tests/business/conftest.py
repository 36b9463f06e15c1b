"""Fixtures and helpers for businesses: people at level 2, a business, two relying parties."""

from __future__ import annotations

import uuid
from datetime import date
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from idp.business import services
from idp.extensions import db
from idp.identity.models import Identity
from idp.timeutil import utcnow
from tests.support.forms import csrf_from
from tests.support.oidc import (
    authorize_url,
    exchange,
    make_citizen,
    make_client,
    pkce_pair,
    query_of,
)

TAX_CODE = "0100233488"
BUSINESS_NAME = "CÔNG TY TNHH GIẢI PHÁP SỐ HÀ NỘI"
BCL_A = "http://127.0.0.1:9000/bcl-a"

# The people of these tests (the support module's default citizen is LEGAL).
LEGAL = {"personal_number": "001099012345"}
AGENT = {"personal_number": "079185000123", "full_name": "Trần Thị Bình",
         "birth_date": date(1985, 3, 2), "gender": "female", "phone": "0987654321",
         "email": "binh@example.vn"}
OTHER = {"personal_number": "036095000456", "full_name": "Lê Văn Cường",
         "birth_date": date(1995, 7, 1), "gender": "male", "phone": "0911222333",
         "email": "cuong@example.vn"}
SCOPE = "openid profile business"


def set_level(app, identity_id, level: int) -> None:
    with app.app_context():
        db.session.get(Identity, identity_id).assurance_level = level
        db.session.commit()


def make_person(app, person: dict, *, level: int = 1) -> uuid.UUID:
    fields = {k: v for k, v in person.items() if k != "personal_number"}
    identity_id = make_citizen(app, person["personal_number"], **fields)
    if level != 1:
        set_level(app, identity_id, level)
    return identity_id


def make_business(app, *, tax_code=TAX_CODE, name=BUSINESS_NAME, legal_form="llc_multi_member",
                  representative_id=None, **extra) -> uuid.UUID:
    with app.app_context():
        identity = services.create_business(
            tax_code=tax_code, name=name, legal_form=legal_form,
            legal_representative_id=representative_id, now=utcnow(), by="cli:test", **extra)
        return identity.id


@pytest.fixture
def world(app):
    """A legal representative (level 2), an agent and an outsider (level 1), a business, and two
    relying parties allowed the business scope: A pairwise with back-channel logout, B public."""
    legal = make_person(app, LEGAL, level=2)
    agent = make_person(app, AGENT)
    other = make_person(app, OTHER)
    business = make_business(app, representative_id=legal)
    scopes = ["openid", "profile", "email", "national_id", "business", "offline_access"]
    rp_a, secret_a = make_client(app, client_id="rp-a", name="Hệ thống A", scopes=scopes,
                                 subject_type="pairwise", backchannel_logout_uri=BCL_A)
    rp_b, secret_b = make_client(app, client_id="rp-b", name="Hệ thống B", scopes=scopes)
    return type("World", (), dict(legal=legal, agent=agent, other=other, business=business,
                                  rp_a=rp_a, secret_a=secret_a, rp_b=rp_b, secret_b=secret_b))


def grant_in_console(browser, business_id, personal_number, **fields):
    """The legal representative's grant form; returns the response."""
    page = browser.get("/account/businesses")
    assert page.status_code == 200, page.get_data(as_text=True)
    data = {"personal_number": personal_number, "csrf_token": csrf_from(page.get_data(as_text=True))}
    data.update(fields)
    return browser.post(f"/account/businesses/{business_id}/grant", data=data)


def start(browser, client_id, *, scope=SCOPE, **extra):
    """Begin an authorization; returns (response, verifier)."""
    verifier, challenge = pkce_pair()
    resp = browser.get(authorize_url(client_id, challenge=challenge, scope=scope, **extra))
    return resp, verifier


def chooser_path(resp) -> str:
    assert resp.status_code == 302, resp.get_data(as_text=True)
    parts = urlsplit(resp.headers["Location"])
    assert parts.path == "/oauth2/authorize/business", resp.headers["Location"]
    return parts.path + "?" + parts.query


def choose(browser, resp, choice):
    """On the chooser the authorize request redirected to, press the button `choice`."""
    path = chooser_path(resp)
    page = browser.get(path)
    assert page.status_code == 200
    req = query_of(path)["req"]
    posted = browser.post("/oauth2/authorize/business",
                          data={"req": req, "choice": str(choice),
                                "csrf_token": csrf_from(page.get_data(as_text=True))})
    return page, posted


def follow_to_code(browser, resp):
    """Follow redirects (resume, consent) to the RP's redirect; returns the code."""
    for _ in range(5):
        if resp.status_code == 302 and "code=" in resp.headers["Location"]:
            return query_of(resp.headers["Location"])["code"]
        if resp.status_code == 200 and 'name="decision"' in resp.get_data(as_text=True):
            html = resp.get_data(as_text=True)
            req = html.split('name="req" value="')[1].split('"')[0]
            resp = browser.post("/oauth2/authorize/consent",
                                data={"req": req, "decision": "allow", "csrf_token": csrf_from(html)})
            continue
        assert resp.status_code == 302, resp.get_data(as_text=True)
        location = resp.headers["Location"]
        parts = urlsplit(location)
        resp = browser.get(parts.path + ("?" + parts.query if parts.query else ""))
    raise AssertionError("no code")


def act_for(browser, client_id, secret, business_id, *, scope=SCOPE):
    """The whole flow acting for business_id; returns the token response body."""
    resp, verifier = start(browser, client_id, scope=scope)
    _, posted = choose(browser, resp, business_id)
    code = follow_to_code(browser, posted)
    tokens = exchange(browser, client_id, secret, code, verifier)
    assert tokens.status_code == 200, tokens.get_json()
    return tokens.get_json()


def audit_actions(app, prefix="business."):
    from idp.audit.models import AuditEntry

    with app.app_context():
        return [(e.action, e.actor, e.content) for e in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id))]
