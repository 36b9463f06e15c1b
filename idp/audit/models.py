"""The audit log table and its one-row head."""

from __future__ import annotations

from idp.extensions import db


class AuditEntry(db.Model):
    """One event; rows are appended by idp.audit.record() and never deleted.

    `id` is assigned from the head (1, 2, 3, ... without gaps) and is the order of the chain.
    The personal columns (actor, target_id, address, content, salt) are cleared by redaction.
    """

    __tablename__ = "audit_log"

    id = db.Column(db.Integer, primary_key=True, autoincrement=False)
    at = db.Column(db.DateTime, nullable=False)
    action = db.Column(db.String(64), nullable=False)
    target_type = db.Column(db.String(32))
    # Personal part.
    actor = db.Column(db.String(100))
    target_id = db.Column(db.String(100))
    address = db.Column(db.String(64))
    content = db.Column(db.JSON(none_as_null=True))
    salt = db.Column(db.String(32))
    # Chain.
    personal_hash = db.Column(db.String(64), nullable=False)
    content_hash = db.Column(db.String(64), nullable=False)
    prev_hash = db.Column(db.String(64), nullable=False)
    hash = db.Column(db.String(64), nullable=False)
    redacted_at = db.Column(db.DateTime)

    __table_args__ = (
        db.Index("ix_audit_log_action_at", "action", "at"),
        db.Index("ix_audit_log_target", "target_type", "target_id"),
        db.Index("ix_audit_log_actor_at", "actor", "at"),
        db.Index("ix_audit_log_at", "at"),
    )

    @property
    def details(self):
        return self.content

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action} {self.at:%Y-%m-%d %H:%M:%S}>"


class AuditHead(db.Model):
    """The last entry's id and hash. Every append updates this one row, which serializes
    writers (a row lock on PostgreSQL, the write lock on SQLite) and lets verify() see a
    truncated tail."""

    __tablename__ = "audit_head"

    id = db.Column(db.Integer, primary_key=True, autoincrement=False)
    last_id = db.Column(db.Integer, nullable=False)
    last_hash = db.Column(db.String(64), nullable=False)

    __table_args__ = (db.CheckConstraint("id = 1", name="single_row"),)
