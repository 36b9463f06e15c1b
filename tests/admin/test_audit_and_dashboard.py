"""The audit viewer (filters, pages, CSV, chain verification) and the dashboard's SVG charts."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from sqlalchemy import update

from idp import audit
from idp.audit.models import AuditEntry
from idp.extensions import db
from idp.legacy import services as legacy_services
from tests.admin.conftest import log_in, make_person
from tests.support.oidc import code_flow_tokens, make_client

DAY1 = datetime(2026, 11, 1, 8, 0, 0)
DAY2 = datetime(2026, 11, 2, 8, 0, 0)


def _entries(app, n_extra=60):
    with app.app_context():
        audit.record("client.created", actor="cli:root", target_type="client", target_id="portal",
                     details={"name": "Cổng"}, now=DAY1)
        audit.record("key.created", actor="system", target_type="key", target_id="k1",
                     details={"alg": "RS256"}, now=DAY2)
        audit.record("client.updated", actor="cli:root", target_type="client", target_id="=cmd",
                     details={"fields": ["name"]}, now=DAY2)
        for i in range(n_extra):
            audit.record("consent.granted", actor="system", target_type="client", target_id=f"c{i}", now=DAY2)
        db.session.commit()


def test_filters_pages_and_csv(app, officer_client):
    _entries(app)
    browser, auditor = officer_client("auditor")
    page = browser.get("/admin/audit", query_string={"action": "client.", "actor": "cli:root"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "client.created" in html and "client.updated" in html and "key.created" not in html
    by_target = browser.get("/admin/audit", query_string={"target_type": "key", "target_id": "k1"}).get_data(as_text=True)
    assert "key.created" in by_target and "client.created" not in by_target
    by_day = browser.get("/admin/audit", query_string={"since": "2026-11-01", "until": "2026-11-01"}).get_data(as_text=True)
    assert "client.created" in by_day and "key.created" not in by_day
    first = browser.get("/admin/audit").get_data(as_text=True)
    assert "page=2" in first
    second = browser.get("/admin/audit", query_string={"page": 2}).get_data(as_text=True)
    assert "client.created" in second  # the oldest entries are on the last page

    export = browser.get("/admin/audit/export.csv", query_string={"action": "client."})
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert [r["action"] for r in rows] == ["client.created", "client.updated"]
    assert rows[1]["target_id"] == "'=cmd"  # no formula reaches a spreadsheet
    with app.app_context():
        entries, _ = audit.search(action_prefix="audit.exported")
        assert entries[0].actor == str(auditor)
        assert entries[0].content["filters"] == {"action_prefix": "client."}


def test_verify_chain_shows_the_result(app, officer_client):
    _entries(app, n_extra=2)
    browser, _ = officer_client("auditor")
    ok = browser.get("/admin/audit/verify").get_data(as_text=True)
    assert 'id="verify-result"' in ok and "notice-success" in ok
    with app.app_context():
        db.session.execute(update(AuditEntry).where(AuditEntry.id == 2).values(action="key.retired"))
        db.session.commit()
    broken = browser.get("/admin/audit/verify").get_data(as_text=True)
    assert "error-summary" in broken
    assert "content_hash" in broken


def test_dashboard_draws_svg_charts(app, officer_client):
    make_person(app, "001099012345")
    client_id, secret = make_client(app)
    person = app.test_client()
    log_in(person, "001099012345")
    code_flow_tokens(person, client_id, secret)
    with app.app_context():
        from idp.timeutil import utcnow

        legacy_services.create_system(slug="portal", name="Cổng cũ", agency="UBND", hash_scheme="md5_hex",
                                      now=utcnow())
        db.session.commit()
    browser, _ = officer_client("superadmin")
    resp = browser.get("/admin/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert html.count("<svg") >= 4  # identities, share verified, legacy progress, sign-ins
    assert "<polyline" in html and "<rect" in html
    assert "style=" not in html and "<script" not in html
    assert "Content-Security-Policy" in resp.headers and "style-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "Cổng cũ" in html and "Cổng dịch vụ công" in html
