"""Acting for a business at a relying party: the chooser, the tokens, userinfo, the limits."""

from __future__ import annotations

from datetime import timedelta

from joserfc import jwt
from sqlalchemy import select

from idp.business import representation, services
from idp.extensions import db
from idp.oidc.models import LogoutDelivery, RefreshToken
from idp.oidc.subjects import subject_for
from idp.timeutil import utcnow
from tests.business.conftest import (
    AGENT,
    BCL_A,
    BUSINESS_NAME,
    LEGAL,
    TAX_CODE,
    act_for,
    audit_actions,
    choose,
    chooser_path,
    follow_to_code,
    grant_in_console,
    start,
)
from tests.support.forms import csrf_from
from tests.support.oidc import bearer, decode_jwt, exchange, log_in, query_of, refresh


def _sub(app, identity_id, client_id):
    from idp.clients.services import get_client

    with app.app_context():
        return subject_for(identity_id, get_client(client_id), salt=app.config["PAIRWISE_SALT"])


def _grant_agent_for_a(app, world):
    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    resp = grant_in_console(legal, world.business, AGENT["personal_number"], client_ids=world.rp_a)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return legal


def test_authorized_person_acts_for_the_business_at_the_allowed_rp_only(app, world):
    _grant_agent_for_a(app, world)
    granted = [a for a in audit_actions(app) if a[0] == "business.representative.granted"]
    # One for the legal representative at creation (cli), one for the agent (the representative).
    assert [g[1] for g in granted] == ["cli:test", str(world.legal)]
    assert granted[1][2]["client_ids"] == [world.rp_a] and granted[1][2]["role"] == "authorized"
    assert TAX_CODE not in str(granted)  # a tax code may be a personal number: never audited

    agent = app.test_client()
    log_in(agent, AGENT["personal_number"])
    resp, verifier = start(agent, world.rp_a)
    page, posted = choose(agent, resp, world.business)
    html = page.get_data(as_text=True)
    assert BUSINESS_NAME in html and TAX_CODE in html and "Trần Thị Bình" in html
    # The consent page says on whose behalf.
    consent = agent.get(posted.headers["Location"])
    assert consent.status_code == 200 and BUSINESS_NAME in consent.get_data(as_text=True)
    code = follow_to_code(agent, consent)
    body = exchange(agent, world.rp_a, world.secret_a, code, verifier).get_json()

    business_sub = _sub(app, world.business, world.rp_a)
    agent_sub = _sub(app, world.agent, world.rp_a)
    assert business_sub != str(world.business) and agent_sub != str(world.agent)  # pairwise
    id_token = decode_jwt(agent, body["id_token"]).claims
    assert id_token["sub"] == business_sub
    assert id_token["act"] == {"sub": agent_sub}
    assert id_token["business_id"] == TAX_CODE
    assert id_token["business_name"] == BUSINESS_NAME
    assert id_token["representative_role"] == "authorized"
    access = decode_jwt(agent, body["access_token"]).claims
    assert access["sub"] == business_sub and access["act"] == {"sub": agent_sub}
    assert access["business_id"] == TAX_CODE

    info = agent.get("/oauth2/userinfo", headers=bearer(body["access_token"])).get_json()
    assert info["sub"] == business_sub
    assert info["business_id"] == TAX_CODE and info["business_name"] == BUSINESS_NAME
    assert info["representative_role"] == "authorized"
    assert info["act"]["sub"] == agent_sub and info["act"]["name"] == "Trần Thị Bình"
    assert "name" not in info  # the person's claims are the actor's, not the business's

    # Refreshing keeps the business context.
    again = refresh(agent, world.rp_a, world.secret_a, body["refresh_token"]).get_json()
    assert decode_jwt(agent, again["access_token"]).claims["act"] == {"sub": agent_sub}
    with app.app_context():
        assert {r.acting_for for r in db.session.scalars(select(RefreshToken))} == {world.business}

    # Another relying party: the business is not offered, the person is themselves.
    resp, verifier = start(agent, world.rp_b)
    assert "/oauth2/authorize/business" not in resp.headers.get("Location", "")
    code = follow_to_code(agent, resp)
    other = exchange(agent, world.rp_b, world.secret_b, code, verifier).get_json()
    claims = decode_jwt(agent, other["id_token"]).claims
    assert claims["sub"] == str(world.agent) and "act" not in claims and "business_id" not in claims


def test_chooser_refuses_a_business_not_offered_to_this_rp(app, world):
    _grant_agent_for_a(app, world)
    agent = app.test_client()
    log_in(agent, AGENT["personal_number"])
    # The legal representative at B is offered the business; the agent is not.
    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    resp, _ = start(legal, world.rp_b)
    chooser_path(resp)
    # The agent forges a choice on a pending request at B.
    resp_agent, _ = start(agent, world.rp_b)
    assert resp_agent.status_code == 200  # straight to consent: nothing to choose
    html = resp_agent.get_data(as_text=True)
    req = html.split('name="req" value="')[1].split('"')[0]
    forged = agent.post("/oauth2/authorize/business",
                        data={"req": req, "choice": str(world.business), "csrf_token": csrf_from(html)})
    assert forged.status_code == 403
    # The legal representative may choose it at B.
    _, posted = choose(legal, resp, world.business)
    assert posted.status_code == 302 and "/oauth2/authorize/resume" in posted.headers["Location"]


def test_as_myself(app, world):
    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    resp, verifier = start(legal, world.rp_b)
    _, posted = choose(legal, resp, "self")
    code = follow_to_code(legal, posted)
    body = exchange(legal, world.rp_b, world.secret_b, code, verifier).get_json()
    claims = decode_jwt(legal, body["id_token"]).claims
    assert claims["sub"] == str(world.legal) and "act" not in claims
    info = legal.get("/oauth2/userinfo", headers=bearer(body["access_token"])).get_json()
    assert "business_id" not in info and info["name"] == "Nguyễn Văn An"


def test_legal_representative_acts_everywhere_with_role(app, world):
    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    body = act_for(legal, world.rp_b, world.secret_b, world.business, scope="openid national_id business")
    claims = decode_jwt(legal, body["id_token"]).claims
    assert claims["sub"] == str(world.business)  # public subject at B
    assert claims["act"] == {"sub": str(world.legal)}
    assert claims["representative_role"] == "legal_representative"
    info = legal.get("/oauth2/userinfo", headers=bearer(body["access_token"])).get_json()
    assert info["national_id"] == TAX_CODE and info["national_id_type"] == "tax_code"
    assert info["act"]["national_id"] == LEGAL["personal_number"]


def test_prompt_none_with_businesses_to_choose_needs_interaction(app, world):
    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    act_for(legal, world.rp_b, world.secret_b, world.business)  # consent given
    resp, _ = start(legal, world.rp_b, prompt="none")
    assert resp.status_code == 302
    assert query_of(resp.headers["Location"])["error"] == "interaction_required"


def test_revocation_ends_tokens_and_tells_the_rp(app, world):
    legal = _grant_agent_for_a(app, world)
    agent = app.test_client()
    log_in(agent, AGENT["personal_number"])
    body = act_for(agent, world.rp_a, world.secret_a, world.business)
    id_claims = decode_jwt(agent, body["id_token"]).claims

    page = legal.get("/account/businesses").get_data(as_text=True)
    assert "Trần Thị Bình" in page
    with app.app_context():
        rep = representation.open_representation(world.business, world.agent)
        rep_id = rep.id
    resp = legal.post(f"/account/businesses/representations/{rep_id}/revoke",
                      data={"reason": "Hết hợp đồng", "csrf_token": csrf_from(page)})
    assert resp.status_code == 302

    refused = refresh(agent, world.rp_a, world.secret_a, body["refresh_token"])
    assert refused.get_json()["error"] == "invalid_grant"
    assert agent.get("/oauth2/userinfo", headers=bearer(body["access_token"])).status_code == 401
    with app.app_context():
        delivery = db.session.scalar(select(LogoutDelivery))
        assert delivery.client_id == world.rp_a and delivery.uri == BCL_A
        logout_claims = jwt.decode(delivery.logout_token, _keys(app)).claims
        assert logout_claims["sub"] == id_claims["sub"] and logout_claims["sid"] == id_claims["sid"]
        row = db.session.scalar(select(RefreshToken).where(RefreshToken.revoked_at.is_not(None)))
        assert row.revoked_reason == "representation_revoked"
    revoked = [a for a in audit_actions(app) if a[0] == "business.representative.revoked"]
    assert len(revoked) == 1 and revoked[0][1] == str(world.legal)
    assert revoked[0][2]["reason"] == "Hết hợp đồng"
    # The chooser no longer offers the business: the agent is themselves at A.
    resp, _ = start(agent, world.rp_a)
    assert "/oauth2/authorize/business" not in resp.headers.get("Location", "")


def _keys(app):
    from idp.oidc.signing import signing_key_set

    return signing_key_set("RS256")


def test_dissolved_business_cannot_be_acted_for(app, world):
    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    body = act_for(legal, world.rp_a, world.secret_a, world.business)
    with app.app_context():
        services.set_status(world.business, "dissolved", now=utcnow(), by="cli:test",
                            reason="Quyết định giải thể")
        assert db.session.scalar(select(LogoutDelivery)).client_id == world.rp_a
    assert refresh(legal, world.rp_a, world.secret_a, body["refresh_token"]).get_json()["error"] == "invalid_grant"
    resp, _ = start(legal, world.rp_a)
    assert "/oauth2/authorize/business" not in resp.headers.get("Location", "")
    actions = [a[0] for a in audit_actions(app)]
    assert "business.status_changed" in actions


def test_suspended_business_code_is_refused_at_redemption(app, world):
    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    resp, verifier = start(legal, world.rp_b)
    _, posted = choose(legal, resp, world.business)
    code = follow_to_code(legal, posted)
    with app.app_context():
        services.set_status(world.business, "suspended", now=utcnow(), by="cli:test", reason="Tạm ngừng")
    refused = exchange(legal, world.rp_b, world.secret_b, code, verifier)
    assert refused.get_json()["error"] == "invalid_grant"


def test_expired_authorization(app, world):
    now = utcnow()
    with app.app_context():
        # Granted ten days ago for a week: over since three days.
        representation.grant(business_id=world.business, representative_id=world.agent,
                             now=now - timedelta(days=10), by="cli:test", officer=True,
                             reason="Giấy ủy quyền 01/UQ", valid_to=now - timedelta(days=3))
    agent = app.test_client()
    log_in(agent, AGENT["personal_number"])
    resp, _ = start(agent, world.rp_a)
    assert "/oauth2/authorize/business" not in resp.headers.get("Location", "")

    # Still valid when the tokens were issued; then the period passes.
    with app.app_context():
        rep = representation.open_representation(world.business, world.agent)
        rep.valid_to = now + timedelta(days=30)
        db.session.commit()
    body = act_for(agent, world.rp_a, world.secret_a, world.business)
    with app.app_context():
        rep = representation.open_representation(world.business, world.agent)
        rep.valid_to = utcnow() - timedelta(seconds=1)
        db.session.commit()
    # Refused at once, before the sweep has run.
    assert refresh(agent, world.rp_a, world.secret_a, body["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert agent.get("/oauth2/userinfo", headers=bearer(body["access_token"])).status_code == 401
    with app.app_context():
        assert representation.expire_due(now=utcnow()) == 1
        assert db.session.scalar(select(LogoutDelivery)).client_id == world.rp_a
        assert db.session.scalar(select(RefreshToken).where(RefreshToken.revoked_at.is_not(None))) is not None
        assert representation.open_representation(world.business, world.agent) is None
    assert "business.representative.expired" in [a[0] for a in audit_actions(app)]


def test_sso_logout_tells_the_rp_about_the_business_session(app, world):
    legal = app.test_client()
    log_in(legal, LEGAL["personal_number"])
    body = act_for(legal, world.rp_a, world.secret_a, world.business)
    id_claims = decode_jwt(legal, body["id_token"]).claims
    page = legal.get("/account").get_data(as_text=True)
    legal.post("/logout", data={"csrf_token": csrf_from(page)})
    with app.app_context():
        subs = {jwt.decode(d.logout_token, _keys(app)).claims["sub"]
                for d in db.session.scalars(select(LogoutDelivery))}
    assert id_claims["sub"] in subs  # the business session at A
    assert _sub(app, world.legal, world.rp_a) in subs  # and the person's own


def test_discovery_lists_the_business_scope_and_claims(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "business" in meta["scopes_supported"]
    assert {"business_id", "business_name", "representative_role", "act"} <= set(meta["claims_supported"])
