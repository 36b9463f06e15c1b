"""The legacy conflict queue: side by side, differences highlighted, link or reject."""

from __future__ import annotations

from datetime import date

from idp.extensions import db
from idp.legacy import services as legacy_services
from idp.legacy.models import LegacyAccount, LinkState
from idp.timeutil import utcnow
from tests.admin.conftest import audit_actions, make_person, post

NUMBER = "001099012345"


def _conflicts(app, candidate, n=2):
    with app.app_context():
        system = legacy_services.create_system(slug="motcua", name="Một cửa huyện", agency="UBND huyện",
                                               hash_scheme="md5_hex", now=utcnow())
        ids = []
        for i in range(n):
            now = utcnow()
            account = LegacyAccount(
                system_id=system.id, legacy_user_id=f"u{i}", username=f"nguoidung{i}",
                username_key=f"nguoidung{i}", personal_number=NUMBER, full_name="Nguyễn Văn Ánh",
                birth_date=date(1999, 5, 15), raw={}, link_state=LinkState.CONFLICT,
                candidate_identity_id=candidate, conflict_reason="name differs",
                import_run="r1", source_line=i + 1, imported_at=now, updated_at=now)
            db.session.add(account)
            db.session.flush()
            ids.append(account.id)
        db.session.commit()
        return ids


def test_queue_compares_and_an_officer_links_or_rejects(app, officer_client):
    candidate = make_person(app, NUMBER, full_name="Nguyễn Văn An", birth_date=date(1999, 5, 14))
    first, second = _conflicts(app, candidate)
    browser, officer = officer_client("identity_officer")
    queue = browser.get("/admin/legacy/conflicts").get_data(as_text=True)
    assert f"/admin/legacy/conflicts/{first}" in queue and f"/admin/legacy/conflicts/{second}" in queue

    page = browser.get(f"/admin/legacy/conflicts/{first}").get_data(as_text=True)
    assert "Nguyễn Văn Ánh" in page and "Nguyễn Văn An" in page
    assert page.count('class="diff"') == 2  # name and birth date; the number agrees
    assert "15/05/1999" in page and "14/05/1999" in page

    url = f"/admin/legacy/conflicts/{first}"
    assert post(browser, url, {"decision": "link", "reason": ""}).status_code == 400
    assert post(browser, url, {"decision": "link", "reason": "Công dân xác nhận tại quầy"}).status_code == 302
    assert post(browser, f"/admin/legacy/conflicts/{second}",
                {"decision": "reject", "reason": "Không phải tài khoản của công dân"}).status_code == 302
    with app.app_context():
        linked, rejected = db.session.get(LegacyAccount, first), db.session.get(LegacyAccount, second)
        assert (linked.link_state, linked.identity_id, linked.linked_by) == ("claimed", candidate, str(officer))
        assert (rejected.link_state, rejected.identity_id, rejected.linked_by) == ("rejected", None, str(officer))
    # A decided account cannot be decided again.
    assert post(browser, url, {"decision": "reject", "reason": "lại"}).status_code == 400
    actions = audit_actions(app, actor=str(officer))
    assert any(a[0] == "legacy.linked" and a[2] == str(candidate) and a[3]["legacy_id"] == "u0" for a in actions)
    assert any(a[0] == "legacy.rejected" and a[3]["decision"] == "reject" for a in actions)
    assert "/admin/legacy/conflicts/" not in browser.get("/admin/legacy/conflicts").get_data(as_text=True)


def test_progress_report_as_json(app, officer_client):
    candidate = make_person(app, NUMBER)
    _conflicts(app, candidate, n=3)
    browser, _ = officer_client("identity_officer")
    resp = browser.get("/admin/api/legacy/progress")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    system = resp.get_json()["systems"][0]
    assert (system["system"], system["imported"], system["conflict"], system["mapped_share"]) == ("motcua", 3, 3, 0.0)
    manager, _ = officer_client("client_manager")
    assert manager.get("/admin/api/legacy/progress").status_code == 403
