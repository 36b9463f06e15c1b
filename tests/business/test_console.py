"""The account console's "my businesses": listing, granting, revoking, registering."""

from __future__ import annotations

from idp.business import representation, services
from idp.timeutil import utcnow
from tests.business.conftest import (
    AGENT,
    BUSINESS_NAME,
    LEGAL,
    OTHER,
    TAX_CODE,
    audit_actions,
    grant_in_console,
)
from tests.support.forms import csrf_from, submit
from tests.support.oidc import log_in


def test_page_needs_a_login(client):
    resp = client.get("/account/businesses")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_account_menu_links_the_page(app, world):
    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    assert "/account/businesses" in legal.get("/account").get_data(as_text=True)


def test_legal_representative_grants_with_limits_and_sees_them(app, world):
    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    page = legal.get("/account/businesses").get_data(as_text=True)
    assert BUSINESS_NAME in page and TAX_CODE in page
    assert "Hệ thống A" in page and "Hệ thống B" in page  # systems that may ask for a business

    refused = grant_in_console(legal, world.business, "001200000009")
    assert refused.status_code == 400  # nobody has this number
    refused = grant_in_console(legal, world.business, AGENT["personal_number"],
                               valid_from="2030-01-10", valid_to="2030-01-01")
    assert refused.status_code == 400  # the end before the start

    resp = grant_in_console(legal, world.business, AGENT["personal_number"],
                            client_ids=[world.rp_a], scopes=["profile"],
                            valid_from="2030-01-01", valid_to="2030-12-31")
    assert resp.status_code == 302
    with app.app_context():
        rep = representation.open_representation(world.business, world.agent)
        assert rep.client_ids == [world.rp_a] and rep.scopes == ["profile"]
        # Days in Vietnam time (UTC+7): from 1 Jan 00:00 to the end of 31 Dec.
        assert rep.valid_from.isoformat() == "2029-12-31T17:00:00"
        assert rep.valid_to.isoformat() == "2030-12-31T17:00:00"
        assert representation.state(rep, now=utcnow()) == "scheduled"
    page = legal.get("/account/businesses").get_data(as_text=True)
    assert "Trần Thị Bình" in page

    agent = app.test_client()
    log_in(agent, AGENT["personal_number"])
    agent_page = agent.get("/account/businesses").get_data(as_text=True)
    assert BUSINESS_NAME in agent_page and "Hệ thống A" in agent_page
    # An authorized person has no grant form, and cannot post one.
    assert f"/account/businesses/{world.business}/grant" not in agent_page
    forged = agent.post(f"/account/businesses/{world.business}/grant",
                        data={"personal_number": OTHER["personal_number"],
                              "csrf_token": csrf_from(agent_page)})
    assert forged.status_code == 403


def test_outsider_cannot_revoke(app, world):
    with app.app_context():
        rep = representation.grant(business_id=world.business, representative_id=world.agent,
                                   now=utcnow(), by=str(world.legal))
        rep_id = rep.id
    outsider = app.test_client()
    log_in(outsider, OTHER["personal_number"])
    page = outsider.get("/account/businesses").get_data(as_text=True)
    assert BUSINESS_NAME not in page
    token = csrf_from(outsider.get("/account").get_data(as_text=True))
    resp = outsider.post(f"/account/businesses/representations/{rep_id}/revoke",
                         data={"csrf_token": token})
    assert resp.status_code == 403
    with app.app_context():
        assert representation.open_representation(world.business, world.agent) is not None
    assert [a[0] for a in audit_actions(app)].count("business.representative.revoked") == 0


def test_register_my_business(app, world):
    outsider = app.test_client()
    log_in(outsider, OTHER["personal_number"])
    assert outsider.get("/account/businesses/register").status_code == 403  # level 1

    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    bad = submit(legal, "/account/businesses/register",
                 {"tax_code": "0314409058-000", "name": "CHI NHÁNH", "legal_form": "branch"})
    assert bad.status_code == 400
    resp = submit(legal, "/account/businesses/register",
                  {"tax_code": "0314409058", "name": "CÔNG TY CỔ PHẦN SÀI GÒN XANH",
                   "legal_form": "joint_stock", "address": "Quận 1"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    page = legal.get("/account/businesses").get_data(as_text=True)
    assert "CÔNG TY CỔ PHẦN SÀI GÒN XANH" in page
    with app.app_context():
        (pending,) = services.pending_requests()
        services.approve_request(pending.id, now=utcnow(), by="cli:test")
        business = services.business_by_tax_code("0314409058")
        assert representation.is_legal_representative(world.legal, business.id, now=utcnow())
