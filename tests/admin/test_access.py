"""Who may use the console: two factors always, and each role only its part."""

from __future__ import annotations

from idp.extensions import db
from idp.legacy import services as legacy_services
from idp.legacy.models import LegacyAccount, LinkState
from idp.timeutil import utcnow
from tests.admin.conftest import enrol_totp, log_in, make_officer, make_person, post, token
from tests.support.oidc import make_client


def _fixtures(app):
    """A citizen, a relying party and a legacy conflict to point the URLs at."""
    citizen = make_person(app, "001099012345", phone="0912345678", email="an@example.vn")
    client_id, _ = make_client(app)
    with app.app_context():
        system = legacy_services.create_system(slug="portal", name="Cổng cũ", agency="UBND",
                                               hash_scheme="md5_hex", now=utcnow())
        now = utcnow()
        account = LegacyAccount(system_id=system.id, legacy_user_id="u1", username="an",
                                username_key="an", personal_number="001099012345",
                                full_name="Nguyen Van Anh", raw={}, link_state=LinkState.CONFLICT,
                                candidate_identity_id=citizen, conflict_reason="name differs",
                                import_run="r1", source_line=1, imported_at=now, updated_at=now)
        db.session.add(account)
        db.session.commit()
        return citizen, client_id, account.id


def _urls(app, citizen, client_id, account_id):
    """Every admin URL, by method, with real ids."""
    values = {"identity_id": citizen, "client_id": client_id, "account_id": account_id}
    out = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        url = adapter.build(rule.endpoint, {k: values[k] for k in rule.arguments})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    return out


def test_every_admin_view_names_its_roles(app):
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("admin."):
            assert hasattr(view, "required_roles"), endpoint


def test_anonymous_goes_to_login_and_a_citizen_is_refused(app, client):
    resp = client.get("/admin/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    make_person(app, "001099012345")
    log_in(client, "001099012345")
    assert client.get("/admin/").status_code == 403
    assert client.get("/admin/identities").status_code == 403


def test_a_session_without_two_factors_is_sent_to_add_one(app):
    officer, number, _ = make_officer(app, "superadmin", totp=False)
    browser = app.test_client()
    log_in(browser, number)  # password only: no authenticator app yet
    resp = browser.get("/admin/identities?q=x")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/account/security/totp")
    assert "next=" in resp.headers["Location"]
    # With an app enrolled later, the same one-factor session must step up first.
    enrol_totp(app, officer)
    resp = browser.get("/admin/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login/step-up")
    for url in ("/admin/audit", "/admin/clients", "/admin/api/legacy/progress"):
        assert browser.get(url).status_code == 302, url


def test_auditor_reads_but_every_post_is_refused(app, officer_client):
    citizen, client_id, account_id = _fixtures(app)
    browser, _ = officer_client("auditor")
    urls = _urls(app, citizen, client_id, account_id)
    posts = [(e, u) for e, m, u in urls if m == "POST"]
    assert len(posts) >= 12
    csrf = token(browser)
    for endpoint, url in posts:
        resp = browser.post(url, data={"csrf_token": csrf, "reason": "thử", "decision": "link",
                                       "name": "x", "agency": "y"})
        assert resp.status_code == 403, (endpoint, resp.status_code)
    for url in ("/admin/", "/admin/identities?q=nguyen", f"/admin/identities/{citizen}", "/admin/audit",
                "/admin/audit/verify", "/admin/clients", f"/admin/clients/{client_id}",
                "/admin/legacy/conflicts", f"/admin/legacy/conflicts/{account_id}"):
        assert browser.get(url).status_code == 200, url
    # Forms that only lead to changes are not theirs either.
    for url in (f"/admin/identities/{citizen}/verify", f"/admin/identities/{citizen}/merge",
                "/admin/clients/new", f"/admin/clients/{client_id}/edit", "/admin/api/legacy/progress"):
        assert browser.get(url).status_code == 403, url
    with app.app_context():
        from idp.identity.models import Identity

        assert db.session.get(Identity, citizen).status == "active"


def test_client_manager_cannot_touch_identities(app, officer_client):
    citizen, client_id, account_id = _fixtures(app)
    browser, _ = officer_client("client_manager")
    for endpoint, method, url in _urls(app, citizen, client_id, account_id):
        if "identit" in endpoint or "legacy" in endpoint or endpoint in ("admin.lock", "admin.unlock",
                                                                         "admin.verify", "admin.merge",
                                                                         "admin.personal_number",
                                                                         "admin.end_sessions",
                                                                         "admin.reset_factors"):
            if method == "GET":
                assert browser.get(url).status_code == 403, url
            else:
                assert post(browser, url, {"reason": "x"}).status_code == 403, url
    assert browser.get("/admin/clients").status_code == 200
    assert browser.get("/admin/audit").status_code == 403
    assert browser.get("/admin/").status_code == 200


def test_identity_officer_cannot_manage_clients(app, officer_client):
    citizen, client_id, account_id = _fixtures(app)
    browser, _ = officer_client("identity_officer")
    for endpoint, method, url in _urls(app, citizen, client_id, account_id):
        if endpoint.startswith("admin.client"):
            if method == "GET":
                assert browser.get(url).status_code == 403, url
            else:
                assert post(browser, url, {"reason": "x"}).status_code == 403, url
    assert browser.get("/admin/audit").status_code == 403
    assert browser.get(f"/admin/identities/{citizen}").status_code == 200
    assert browser.get("/admin/api/legacy/progress").status_code == 200


def test_superadmin_passes_every_check(app, officer_client):
    citizen, client_id, account_id = _fixtures(app)
    browser, _ = officer_client("superadmin")
    for _, method, url in _urls(app, citizen, client_id, account_id):
        if method == "GET":
            assert browser.get(url).status_code == 200, url
    assert browser.get("/admin/api/legacy/progress").get_json()["systems"][0]["system"] == "portal"
