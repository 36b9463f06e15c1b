"""The chain: append and verify, and each kind of tampering is found and named."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import text

from idp import audit
from idp.audit import chain
from idp.audit.models import AuditEntry, AuditHead
from idp.extensions import db


def sql(statement, **params):
    db.session.execute(text(statement), params)
    db.session.commit()


def test_empty_log_verifies(app_ctx):
    result = audit.verify()
    assert result.ok and result.checked == 0


def test_append_and_verify(append):
    ids = append(5)
    assert ids == [1, 2, 3, 4, 5]
    result = audit.verify(batch=2)
    assert result == audit.VerifyResult(True, 5, None, "ok", 5, result.last_hash)
    rows = db.session.query(AuditEntry).order_by(AuditEntry.id).all()
    assert rows[0].prev_hash == chain.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    head = db.session.get(AuditHead, 1)
    assert (head.last_id, head.last_hash) == (5, rows[-1].hash)


def test_entry_fields(append):
    append(1)
    entry = db.session.get(AuditEntry, 1)
    assert entry.action == "login.succeeded"
    assert entry.actor == "6a1f4c1e-2b7d-4f7e-9a51-0c2d3e4f5a6b"
    assert entry.address == "203.0.113.7"
    assert entry.details == {"method": "password", "n": 0}
    assert entry.at.microsecond == 123456


def test_action_and_actor_are_checked(app_ctx):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record("login.sucess", actor="system")
    with pytest.raises(ValueError, match="actor"):
        audit.record("login.failed", actor="001099012345")  # a personal number is not an actor
    for actor in ("system", "anonymous", "cli:root", "client:demo-he-thong-a"):
        audit.record("login.failed", actor=actor)
    db.session.rollback()


def test_rollback_takes_the_entry_with_it(append):
    append(2)
    audit.record("login.failed", actor="anonymous")
    db.session.rollback()
    append(1)
    assert [e.id for e in db.session.query(AuditEntry).order_by(AuditEntry.id)] == [1, 2, 3]
    assert audit.verify().ok


def test_altered_details_are_named(append):
    append(6)
    sql("UPDATE audit_log SET content = :c WHERE id = 4", c=json.dumps({"method": "totp", "n": 3}))
    result = audit.verify()
    assert not result.ok
    assert result.first_bad_id == 4 and result.checked == 3
    assert "personal_hash" in result.reason


@pytest.mark.parametrize(("column", "value"), [
    ("actor", "system"), ("address", "198.51.100.1"), ("target_id", "x"),
])
def test_altered_personal_columns_are_named(append, column, value):
    append(4)
    sql(f"UPDATE audit_log SET {column} = :v WHERE id = 2", v=value)
    assert audit.verify().first_bad_id == 2


def test_altered_action_or_time_is_named(append):
    append(4)
    sql("UPDATE audit_log SET action = 'login.failed' WHERE id = 3")
    result = audit.verify()
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert "content_hash" in result.reason


def test_recomputed_hash_of_altered_entry_breaks_the_next_link(append):
    """An editor who recomputes the row's own hashes still breaks the chain at the next row."""
    append(5)
    row = db.session.get(AuditEntry, 2)
    details = {"method": "forged"}
    personal = chain.personal_hash(actor=row.actor, target_id=row.target_id, address=row.address,
                                   details=details, salt=row.salt)
    content = chain.content_hash(at=row.at, action=row.action, target_type=row.target_type,
                                 personal=personal)
    sql("UPDATE audit_log SET content = :c, personal_hash = :p, content_hash = :ch, hash = :h "
        "WHERE id = 2", c=json.dumps(details), p=personal, ch=content,
        h=chain.chain_hash(row.prev_hash, content))
    result = audit.verify()
    assert result.first_bad_id == 3 and "prev_hash" in result.reason


def test_deleted_middle_entry_is_named(append):
    append(6)
    sql("DELETE FROM audit_log WHERE id = 3")
    result = audit.verify()
    assert (result.ok, result.first_bad_id) == (False, 4)
    assert "missing" in result.reason


def test_deleted_and_renumbered_entry_is_named(append):
    append(6)
    sql("DELETE FROM audit_log WHERE id = 3")
    sql("UPDATE audit_log SET id = id + 1000 WHERE id > 3")
    sql("UPDATE audit_log SET id = id - 1001 WHERE id > 1000")
    result = audit.verify()
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert "prev_hash" in result.reason


def _forge(entry_id, prev_hash, **fields):
    at = fields.get("at", datetime(2026, 11, 1, 9, 0))
    salt = "00" * 16
    details = {"method": "password"}
    personal = chain.personal_hash(actor="system", target_id=None, address=None,
                                   details=details, salt=salt)
    content = chain.content_hash(at=at, action="admin.role.granted", target_type=None,
                                 personal=personal)
    sql("INSERT INTO audit_log (id, at, action, actor, content, salt, personal_hash, "
        "content_hash, prev_hash, hash) VALUES (:id, :at, 'admin.role.granted', 'system', :c, "
        ":salt, :p, :ch, :prev, :h)", id=entry_id, at=at, c=json.dumps(details), salt=salt,
        p=personal, ch=content, prev=prev_hash, h=chain.chain_hash(prev_hash, content))
    return chain.chain_hash(prev_hash, content)


def _make_room_after(entry_id):
    sql("UPDATE audit_log SET id = id + 1000 WHERE id > :i", i=entry_id)
    sql("UPDATE audit_log SET id = id - 999 WHERE id > 1000")


def test_inserted_forged_entry_is_named(append):
    """A forged row, self-consistent but not chained to its predecessor."""
    append(5)
    _make_room_after(2)
    _forge(3, prev_hash="ab" * 32)
    result = audit.verify()
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert "prev_hash" in result.reason


def test_inserted_entry_chained_to_its_predecessor_breaks_the_next(append):
    append(5)
    _make_room_after(2)
    _forge(3, prev_hash=db.session.get(AuditEntry, 2).hash)
    result = audit.verify()
    assert (result.ok, result.first_bad_id) == (False, 4)


def test_forged_entry_appended_past_the_head_is_named(append):
    append(3)
    _forge(4, prev_hash=db.session.get(AuditEntry, 3).hash)
    result = audit.verify()
    assert (result.ok, result.first_bad_id) == (False, 4)
    assert "beyond the head" in result.reason


def test_swapped_entries_are_named(append):
    append(6)
    sql("UPDATE audit_log SET id = 1003 WHERE id = 3")
    sql("UPDATE audit_log SET id = 3 WHERE id = 4")
    sql("UPDATE audit_log SET id = 4 WHERE id = 1003")
    result = audit.verify()
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert "prev_hash" in result.reason


def test_swapped_contents_are_named(append):
    append(6, details={"method": "password"})
    a, b = db.session.get(AuditEntry, 3), db.session.get(AuditEntry, 4)
    cols = ["at", "personal_hash", "salt", "content_hash", "hash"]
    values = {c: (getattr(a, c), getattr(b, c)) for c in cols}
    for target, pick in ((3, 1), (4, 0)):
        sql("UPDATE audit_log SET " + ", ".join(f"{c} = :{c}" for c in cols) + " WHERE id = :id",
            id=target, **{c: v[pick] for c, v in values.items()})
    result = audit.verify()
    assert (result.ok, result.first_bad_id) == (False, 3)


def test_truncated_tail_is_found_through_the_head(append):
    append(6)
    sql("DELETE FROM audit_log WHERE id > 4")
    result = audit.verify()
    assert (result.ok, result.first_bad_id) == (False, 5)
    assert "truncated" in result.reason


def test_deleted_head_is_found_and_stops_appends(append):
    append(2)
    sql("DELETE FROM audit_head")
    assert "head row is missing" in audit.verify().reason
    with pytest.raises(audit.AuditChainError):
        audit.record("login.failed", actor="anonymous")
    db.session.rollback()


def test_append_after_truncation_stays_detected(append):
    append(5)
    sql("DELETE FROM audit_log WHERE id = 5")
    append(1)  # takes id 6 and chains to the deleted entry's hash
    result = audit.verify()
    assert (result.ok, result.first_bad_id) == (False, 6)


def test_rewritten_chain_is_found_by_an_anchor(append):
    append(4)
    anchor = audit.verify().last_id, audit.verify().last_hash
    # Rewrite everything from entry 1 with recomputed hashes (needs full database access).
    rows = db.session.query(AuditEntry).order_by(AuditEntry.id).all()
    prev = chain.GENESIS
    for row in rows:
        details = {"method": "forged"}
        personal = chain.personal_hash(actor=row.actor, target_id=row.target_id,
                                       address=row.address, details=details, salt=row.salt)
        content = chain.content_hash(at=row.at, action=row.action, target_type=row.target_type,
                                     personal=personal)
        row.content, row.personal_hash, row.content_hash = details, personal, content
        row.prev_hash, row.hash = prev, chain.chain_hash(prev, content)
        prev = row.hash
    db.session.query(AuditHead).update({"last_hash": prev})
    db.session.commit()
    assert audit.verify().ok  # without an anchor a full rewrite cannot be seen
    result = audit.verify(anchor=anchor)
    assert (result.ok, result.first_bad_id) == (False, 4)
    assert audit.verify(anchor=(9, "00")).first_bad_id == 9
