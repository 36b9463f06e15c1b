"""Redaction of old login history, the viewer's query service, CSV export and the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from sqlalchemy import text

from idp import audit
from idp.audit.models import AuditEntry
from idp.extensions import db
from idp.timeutil import utcnow

from .conftest import T0

PERSON = "6a1f4c1e-2b7d-4f7e-9a51-0c2d3e4f5a6b"
OFFICER = "0b5d7c2a-9e1f-4a3b-8c6d-1e2f3a4b5c6d"


def test_redaction_removes_personal_data_and_keeps_the_chain(append):
    append(3, action="login.succeeded")                                 # ids 1-3, old
    append(1, action="admin.identity.locked", actor=OFFICER)           # 4, old but not login
    append(1, action="logout", start=T0 + timedelta(minutes=5))        # 5, old
    append(2, action="login.failed", start=T0 + timedelta(days=200))   # 6-7, recent
    count = audit.redact_older_than(before=T0 + timedelta(days=10), now=T0 + timedelta(days=210))
    assert count == 4
    rows = {e.id: e for e in db.session.query(AuditEntry)}
    for i in (1, 2, 3, 5):
        e = rows[i]
        assert e.redacted_at == T0 + timedelta(days=210)
        assert (e.actor, e.target_id, e.address, e.content, e.salt) == (None,) * 5
        assert e.action and e.at and e.target_type == "identity"
    assert rows[4].actor == OFFICER and rows[4].redacted_at is None
    assert rows[6].address == "203.0.113.7"
    assert rows[8].action == "audit.redacted" and rows[8].details["count"] == 4
    raw = db.session.execute(text("SELECT content FROM audit_log WHERE id = 1")).scalar()
    assert raw is None  # SQL NULL, not JSON null
    assert audit.verify().ok
    assert audit.redact_older_than(before=T0 + timedelta(days=10)) == 0  # idempotent


def test_redacted_entry_still_protects_its_permanent_fields(append):
    append(3)
    audit.redact_older_than(before=T0 + timedelta(days=1), now=T0 + timedelta(days=200))
    db.session.execute(text("UPDATE audit_log SET action = 'login.failed' WHERE id = 2"))
    db.session.commit()
    assert audit.verify().first_bad_id == 2


def test_redacted_flag_does_not_hide_altered_data(append):
    append(3)
    db.session.execute(text("UPDATE audit_log SET redacted_at = at, actor = 'system' WHERE id = 2"))
    db.session.commit()
    result = audit.verify()
    assert result.first_bad_id == 2 and "redacted" in result.reason


def _seed_for_queries(append):
    append(3, action="login.succeeded", actor=PERSON)
    append(2, action="login.failed", actor="anonymous", start=T0 + timedelta(days=1))
    append(1, action="admin.identity.locked", actor=OFFICER, target_id=PERSON,
           start=T0 + timedelta(days=2))
    append(1, action="factor.totp_enabled", actor=PERSON, start=T0 + timedelta(days=3))


def test_search_filters_and_pages(append):
    _seed_for_queries(append)
    rows, total = audit.search()
    assert total == 7 and [r.id for r in rows] == [7, 6, 5, 4, 3, 2, 1]
    rows, total = audit.search(action_prefix="login.", per_page=2, page=2)
    assert total == 5 and [r.id for r in rows] == [3, 2]
    assert audit.search(action_prefix="admin.")[1] == 1
    assert audit.search(action_prefix="factor.totp_")[1] == 1  # "_" is not a wildcard
    assert audit.search(action_prefix="factor.totpX")[1] == 0
    assert audit.search(actor=OFFICER)[1] == 1
    assert audit.search(target_type="identity", target_id=PERSON)[1] == 7
    assert audit.search(involving=OFFICER)[1] == 1
    rows, total = audit.search(since=T0 + timedelta(days=1), until=T0 + timedelta(days=2))
    assert total == 2 and {r.action for r in rows} == {"login.failed"}
    assert audit.search(per_page=10_000)[0][-1].id == 1


def test_export_csv_streams_matching_rows(append):
    _seed_for_queries(append)
    audit.record("login.failed", actor="anonymous", address="=1+1",
                 details={"login": "=HYPERLINK(\"x\")", "name": "Nguyễn Văn An"},
                 now=T0 + timedelta(days=1, hours=1))
    db.session.commit()
    out = io.StringIO()
    audit.export_csv(out, action_prefix="login.", batch=2)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [int(r["id"]) for r in rows] == [1, 2, 3, 4, 5, 8]
    assert rows[0]["at"] == "2026-11-01T08:00:00.123456"
    last = rows[-1]
    assert last["address"] == "'=1+1"  # no formula for a spreadsheet
    assert json.loads(last["details"])["name"] == "Nguyễn Văn An"
    assert last["hash"] == db.session.get(AuditEntry, 8).hash
    empty = io.StringIO()
    audit.export_csv(empty, actor="nobody")
    assert empty.getvalue().strip() == ",".join(audit.query.CSV_COLUMNS)


def test_cli_verify_redact_export(app, append):
    start = utcnow() - timedelta(days=10)
    append(3, start=start)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "ok, 3 entries" in result.output

    since, until = (start - timedelta(days=1)).date(), (start + timedelta(days=1)).date()
    result = runner.invoke(args=["audit", "export", "--since", str(since), "--until", str(until)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("id,at,actor,action")
    assert len(result.output.splitlines()) == 1 + 3
    exported = db.session.query(AuditEntry).filter_by(action="audit.exported").one()
    assert exported.actor.startswith("cli:")
    assert exported.details["filters"]["since"] == f"{since}T00:00:00.000000"

    result = runner.invoke(args=["audit", "redact"])  # AUDIT_LOGIN_RETENTION_DAYS = 180
    assert result.exit_code == 0 and "0 entries older than 180 days" in result.output
    result = runner.invoke(args=["audit", "redact", "--days", "5"])
    assert result.exit_code == 0 and "3 entries older than 5 days" in result.output
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0

    db.session.execute(text("UPDATE audit_log SET at = :t WHERE id = 2"), {"t": start})
    db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at entry 2" in result.output


def test_retention_setting_is_configurable(make_app):
    app = make_app(AUDIT_LOGIN_RETENTION_DAYS=30)
    assert app.config["AUDIT_LOGIN_RETENTION_DAYS"] == 30
    assert make_app().config["AUDIT_LOGIN_RETENTION_DAYS"] == 180
