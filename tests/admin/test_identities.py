"""Identity search, the record page, and the officers' actions on an identity."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from idp.accounts import factors
from idp.accounts import sessions as sso
from idp.admin import services
from idp.admin.models import IdentityVerification
from idp.extensions import db
from idp.identity.models import Identifier, Identity
from tests.admin.conftest import audit_actions, enrol_totp, log_in, make_person, post
from tests.support.forms import submit

NUMBER = "001099012345"


def _citizen(app, **changes):
    fields = dict(full_name="Nguyễn Thị Hoà", birth_date=date(1999, 5, 14), gender="male",
                  phone="0912345678", email="Hoa.Nguyen@Example.vn")
    fields.update(changes)
    return make_person(app, NUMBER, **fields)


def _get(app, identity_id) -> Identity:
    with app.app_context():
        identity = db.session.get(Identity, identity_id)
        identity.identifiers  # noqa: B018  (load before the context ends)
        db.session.expunge(identity)
        return identity


def test_search_by_every_kind_of_identifier(app, officer_client):
    citizen = _citizen(app)
    browser, _ = officer_client("identity_officer")
    for q in ("001099012345", "001 099 012 345", "0912 345 678", "+84912345678",
              "hoa.nguyen@example.VN", "nguyen thi hoa", "Nguyễn Thị Hòa", "NGUYEN", "nguyễn th"):
        page = browser.get("/admin/identities", query_string={"q": q})
        assert page.status_code == 200
        assert f"/admin/identities/{citizen}" in page.get_data(as_text=True), q
    for q in ("nguyen van", "001099012346", "%", "_", "thi hoa"):
        page = browser.get("/admin/identities", query_string={"q": q})
        assert f"/admin/identities/{citizen}" not in page.get_data(as_text=True), q


def test_name_search_is_a_prefix_in_name_order_and_counts_are_capped(app_ctx):
    from idp.timeutil import utcnow

    now = utcnow()
    for i, name in enumerate(["Trần Văn Bình", "Trần Thị Bích", "Tran Van Anh", "Lê Văn Tám"]):
        db.session.add(Identity(kind="citizen", full_name=name, name_search=services.names.search_key(name),
                                status="active", assurance_level=1, created_at=now, updated_at=now,
                                email=f"x{i}@example.vn"))
    db.session.commit()
    result = services.search_identities("tran", per_page=2)
    assert result.kind == "name" and result.total == 3 and not result.capped
    assert [i.full_name for i in result.items] == ["Trần Thị Bích", "Tran Van Anh"]
    second = services.search_identities("tran", page=2, per_page=2)
    assert [i.full_name for i in second.items] == ["Trần Văn Bình"]
    assert services.search_identities("TRẦN VĂN").total == 2
    assert services.search_identities("").kind == ""


def test_record_page_shows_the_identity_and_records_the_view(app, officer_client):
    citizen = _citizen(app)
    browser, officer = officer_client("identity_officer")
    page = browser.get(f"/admin/identities/{citizen}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for text in ("Nguyễn Thị Hoà", NUMBER, "+84912345678"):
        assert text in html
    assert 'style="' not in html and "<script" not in html
    assert ("admin.identity.viewed", str(officer), str(citizen), None) in audit_actions(app)


def test_lock_ends_sessions_and_blocks_login_then_unlock(app, officer_client):
    citizen = _citizen(app)
    person = app.test_client()
    log_in(person, NUMBER)
    assert person.get("/account").status_code == 200
    with app.app_context():
        assert len(sso.sessions_of(app.extensions["idp_store"], str(citizen))) == 1

    browser, officer = officer_client("identity_officer")
    missing = post(browser, f"/admin/identities/{citizen}/lock", {"reason": "  "})
    assert missing.status_code == 400
    assert _get(app, citizen).status == "active"

    resp = post(browser, f"/admin/identities/{citizen}/lock", {"reason": "Yêu cầu của công an, phiếu 12/2026"})
    assert resp.status_code == 302
    assert _get(app, citizen).status == "locked"
    with app.app_context():
        assert sso.sessions_of(app.extensions["idp_store"], str(citizen)) == []
    assert person.get("/account").status_code == 302  # the session is gone
    refused = submit(app.test_client(), "/login", {"login": NUMBER, "password": "một buổi sáng mùa thu ở hà nội"})
    assert refused.status_code != 302
    assert "locked" in refused.get_data(as_text=True) or "khóa" in refused.get_data(as_text=True)
    actions = audit_actions(app, target_id=str(citizen))
    assert ("admin.identity.locked", str(officer), str(citizen),
            {"reason": "Yêu cầu của công an, phiếu 12/2026"}) in actions
    assert any(a[0] == "admin.sessions.ended" and a[3]["count"] == 1 for a in actions)

    assert post(browser, f"/admin/identities/{citizen}/unlock", {"reason": "Đã xác minh"}).status_code == 302
    assert _get(app, citizen).status == "active"
    log_in(app.test_client(), NUMBER)


def test_end_sessions_and_reset_second_factors(app, officer_client):
    citizen = _citizen(app)
    codes = enrol_totp(app, citizen)
    person = app.test_client()
    log_in(person, NUMBER, codes)
    browser, officer = officer_client("identity_officer")
    assert post(browser, f"/admin/identities/{citizen}/sessions/end", {"reason": "Mất điện thoại"}).status_code == 302
    assert person.get("/account").status_code == 302
    assert post(browser, f"/admin/identities/{citizen}/factors/reset", {}).status_code == 400
    with app.app_context():
        assert factors.has_totp(citizen)
    assert post(browser, f"/admin/identities/{citizen}/factors/reset", {"reason": "Mất điện thoại"}).status_code == 302
    with app.app_context():
        assert not factors.has_totp(citizen)
    actions = [a[0] for a in audit_actions(app, actor=str(officer))]
    assert "admin.sessions.ended" in actions and "factor.totp_removed" in actions


def test_an_officer_cannot_act_on_their_own_identity(app, officer_client):
    browser, officer = officer_client("identity_officer")
    resp = post(browser, f"/admin/identities/{officer}/lock", {"reason": "thử"})
    assert resp.status_code == 400
    assert "your own identity" in resp.get_data(as_text=True) or "chính mình" in resp.get_data(as_text=True)
    assert _get(app, officer).status == "active"


def test_in_person_verification_needs_a_reason_and_raises_the_level(app, officer_client):
    citizen = _citizen(app)
    browser, officer = officer_client("identity_officer")
    url = f"/admin/identities/{citizen}/verify"
    form = {"evidence_type": "chip_citizen_id", "document_number": NUMBER}
    assert submit(browser, url, {**form, "reason": ""}).status_code == 400
    assert _get(app, citizen).assurance_level == 1
    wrong = submit(browser, url, {**form, "document_number": "001099012346", "reason": "Tại bộ phận một cửa"})
    assert wrong.status_code == 400
    assert _get(app, citizen).assurance_level == 1
    resp = submit(browser, url, {**form, "reason": "Tại bộ phận một cửa"})
    assert resp.status_code == 302
    assert _get(app, citizen).assurance_level == 2
    with app.app_context():
        row = db.session.scalar(select(IdentityVerification))
        assert (row.identity_id, row.level, row.evidence_type, row.document_number, row.officer_id) == (
            citizen, 2, "chip_citizen_id", NUMBER, officer)
        assert row.note == "Tại bộ phận một cửa"
    entry = [a for a in audit_actions(app, action_prefix="admin.identity.verified")][0]
    assert entry[1] == str(officer) and entry[3]["fields"] == ["assurance_level"]
    assert "Tại bộ phận một cửa" in browser.get(f"/admin/identities/{citizen}").get_data(as_text=True)


def test_personal_number_correction_keeps_history_and_refuses_bad_numbers(app, officer_client):
    citizen = _citizen(app)
    browser, officer = officer_client("identity_officer")
    url = f"/admin/identities/{citizen}/personal-number"
    contradicting = submit(browser, url, {"personal_number": "001199012399", "reason": "Sai khi đăng ký"})
    assert contradicting.status_code == 400
    html = contradicting.get_data(as_text=True)
    assert re.search(r"contradicts the gender|không khớp với giới tính", html), html[:2000]
    short = submit(browser, url, {"personal_number": "0010990123", "reason": "Sai khi đăng ký"})
    assert short.status_code == 400
    assert submit(browser, url, {"personal_number": "001099054321", "reason": ""}).status_code == 400

    resp = submit(browser, url, {"personal_number": "001 099 054 321", "reason": "Sai khi đăng ký"})
    assert resp.status_code == 302
    with app.app_context():
        rows = db.session.scalars(select(Identifier).where(Identifier.identity_id == citizen)
                                  .order_by(Identifier.id)).all()
        assert [(r.value, r.valid_to is None, r.is_primary) for r in rows] == [
            (NUMBER, False, True), ("001099054321", True, True)]
        assert "Sai khi đăng ký" in rows[0].change_reason
    # Both numbers still find the person; the new one logs in.
    for q in (NUMBER, "001099054321"):
        assert str(citizen) in browser.get("/admin/identities", query_string={"q": q}).get_data(as_text=True)
    log_in(app.test_client(), "001099054321")
    assert any(a[3]["fields"] == ["personal_number"] for a in audit_actions(app, target_id=str(citizen))
               if a[0] == "admin.identifier.corrected")
    taken_by = make_person(app, "001099077777")
    taken = submit(browser, f"/admin/identities/{taken_by}/personal-number",
                   {"personal_number": "001099054321", "reason": "thử"})
    assert taken.status_code == 409
