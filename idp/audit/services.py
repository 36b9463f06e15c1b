"""Append, verify and redact the audit log.

record() writes in the caller's session and only flushes: the caller commits, so an action and
its audit entry commit (or roll back) together. Appends are serialized by the one-row head:
its conditional UPDATE takes a row lock on PostgreSQL and the database write lock on SQLite,
held until the caller's transaction ends. Call record() late in the transaction, just before
the commit, and commit before writing to the embedded store (SQLite has one writer).
"""

from __future__ import annotations

import getpass
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, null, or_, select, update

from idp.audit import chain
from idp.audit.catalogue import ACTIONS, LOGIN_HISTORY_ACTIONS
from idp.audit.models import AuditEntry, AuditHead
from idp.extensions import db
from idp.timeutil import utcnow

_log = AuditEntry.__table__
_head = AuditHead.__table__

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_ACTOR = re.compile(r"^(system|anonymous|(cli|client|federation):[^\s]{1,90})$")
_TARGET_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class AuditChainError(RuntimeError):
    """The log cannot be appended to safely (its head is missing)."""


def _actor(actor) -> str:
    if isinstance(actor, uuid.UUID):
        return str(actor)
    text = str(actor or "")
    if _UUID.match(text):
        return text.lower()
    if _ACTOR.match(text):
        return text
    raise ValueError(f"audit actor must be an identity id, system, anonymous, cli:, client: or "
                     f"federation:<name>, got {text[:40]!r}")


def cli_actor() -> str:
    """The actor of a `flask ...` command: "cli:" and the operating-system user."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return "cli:" + (re.sub(r"\s+", "_", name)[:90] or "unknown")


def _utc(at: datetime) -> datetime:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at


def _insert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# Statements built once (building them costs more than running them).
_ADVANCE = (update(_head).where(_head.c.id == 1).values(last_id=_head.c.last_id + 1)
            .returning(_head.c.last_id, _head.c.last_hash))
_SET_HASH = update(_head).where(_head.c.id == 1).values(last_hash=bindparam("h"))
_ANY_ENTRY = select(_log.c.id).limit(1)


def _take_head() -> tuple[int, str]:
    """Lock the head and advance it: (the new entry's id, the previous entry's hash)."""
    row = db.session.execute(_ADVANCE).first()
    if row is None:
        # First entry (or a freshly emptied database). Another writer may be creating the head
        # right now: ON CONFLICT waits for it and then does nothing, and we advance its head.
        insert = _insert(db.session.get_bind().dialect.name)
        created = db.session.execute(insert(_head).values(id=1, last_id=0, last_hash=chain.GENESIS)
                                     .on_conflict_do_nothing(index_elements=[_head.c.id])).rowcount
        if created and db.session.execute(_ANY_ENTRY).first() is not None:
            # We made the head although entries exist: it was deleted (tampering).
            raise AuditChainError("the audit head is missing while entries exist")
        row = db.session.execute(_ADVANCE).one()
    return row.last_id, row.last_hash


def record(action: str, *, actor, target_type: str | None = None, target_id=None,
           address: str | None = None, details: dict | None = None,
           now: datetime | None = None) -> AuditEntry:
    """Append one entry in the caller's session (flushed, not committed)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to idp/audit/catalogue.py "
                         "and docs/audit.md")
    actor = _actor(actor)
    if target_type is not None and not _TARGET_TYPE.match(target_type):
        raise ValueError(f"bad audit target type {target_type!r}")
    target_id = None if target_id is None else str(target_id)
    if target_id is not None and len(target_id) > 100:
        raise ValueError("audit target id longer than 100 characters")
    address = (str(address)[:64] or None) if address else None
    at = _utc(now or utcnow())
    content = chain.normalize_details(details)
    salt = secrets.token_hex(16)
    personal = chain.personal_hash(actor=actor, target_id=target_id, address=address,
                                   details=content, salt=salt)
    content_hash = chain.content_hash(at=at, action=action, target_type=target_type,
                                      personal=personal)

    new_id, prev_hash = _take_head()
    entry = AuditEntry(
        id=new_id, at=at, action=action, target_type=target_type, actor=actor,
        target_id=target_id, address=address, content=content, salt=salt,
        personal_hash=personal, content_hash=content_hash, prev_hash=prev_hash,
        hash=chain.chain_hash(prev_hash, content_hash),
    )
    db.session.add(entry)
    db.session.flush()
    db.session.execute(_SET_HASH, {"h": entry.hash})
    return entry


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None
    reason: str
    last_id: int = 0
    last_hash: str = chain.GENESIS


class _Walk:
    """Checks entries in id order, carrying the expected id and previous hash."""

    def __init__(self, anchor):
        self.last_id = 0
        self.prev = chain.GENESIS
        self.checked = 0
        self.anchor = anchor

    def bad(self, entry_id, reason) -> VerifyResult:
        return VerifyResult(False, self.checked, entry_id, reason, self.last_id, self.prev)

    def run(self, *, after: int, upto: int | None, batch: int) -> VerifyResult | None:
        while True:
            query = select(_log).where(_log.c.id > after).order_by(_log.c.id).limit(batch)
            if upto is not None:
                query = query.where(_log.c.id <= upto)
            rows = db.session.execute(query).all()
            for row in rows:
                reason = self.check(row)
                if reason:
                    return self.bad(row.id, reason)
                self.last_id, self.prev = row.id, row.hash
                self.checked += 1
            if len(rows) < batch:
                return None
            after = rows[-1].id

    def check(self, row) -> str | None:
        if row.id != self.last_id + 1:
            return f"entries {self.last_id + 1}..{row.id - 1} are missing (deleted or renumbered)"
        if row.redacted_at is None:
            personal = chain.personal_hash(actor=row.actor, target_id=row.target_id,
                                           address=row.address, details=row.content,
                                           salt=row.salt)
            if personal != row.personal_hash:
                return "actor, target, address or details altered (personal_hash mismatch)"
        elif any(v is not None for v in (row.actor, row.target_id, row.address, row.content,
                                         row.salt)):
            return "marked redacted but still holds personal data"
        content = chain.content_hash(at=row.at, action=row.action, target_type=row.target_type,
                                     personal=row.personal_hash)
        if content != row.content_hash:
            return "time, action or target type altered (content_hash mismatch)"
        if row.prev_hash != self.prev:
            return "prev_hash is not the previous entry's hash (deleted, inserted or reordered)"
        if row.hash != chain.chain_hash(row.prev_hash, row.content_hash):
            return "hash altered"
        if self.anchor and row.id == self.anchor[0] and row.hash != self.anchor[1]:
            return "hash differs from the anchor (the chain was rewritten)"
        return None


def verify(*, batch: int = 10000, anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the whole log in id order, a batch at a time, and name the first bad entry.

    anchor=(id, hash), a head recorded earlier outside the database, also catches a chain that
    was rewritten from that point on with recomputed hashes.
    """
    walk = _Walk(anchor)
    bad = walk.run(after=0, upto=None, batch=batch)
    if bad:
        return bad
    # Read after the walk: every entry seen was committed with a head at least that far.
    head = db.session.execute(select(_head).where(_head.c.id == 1)).first()
    if head is None:
        if walk.checked:
            return walk.bad(None, "the head row is missing")
    else:
        if walk.last_id > head.last_id:
            return walk.bad(head.last_id + 1, "entries beyond the head (not appended by record())")
        if walk.last_id < head.last_id:
            # Entries committed during the walk.
            bad = walk.run(after=walk.last_id, upto=head.last_id, batch=batch)
            if bad:
                return bad
        if walk.last_id < head.last_id:
            return walk.bad(walk.last_id + 1, f"log truncated: the head names entry {head.last_id}, "
                                              f"the last entry is {walk.last_id}")
        if walk.prev != head.last_hash:
            return walk.bad(walk.last_id, "the last entry's hash differs from the head")
    if anchor and anchor[0] > walk.last_id:
        return walk.bad(anchor[0], "the anchored entry is missing")
    return VerifyResult(True, walk.checked, None, "ok", walk.last_id, walk.prev)


def _action_filter(patterns):
    conditions = []
    for pattern in patterns:
        if pattern.endswith(".*"):
            conditions.append(_log.c.action.startswith(pattern[:-1], autoescape=True))
        else:
            conditions.append(_log.c.action == pattern)
    return or_(*conditions)


def redact_older_than(actions=None, *, before: datetime, now: datetime | None = None,
                      actor="system", batch: int = 5000) -> int:
    """Erase the personal part of entries of these actions ("x.*" is a prefix; the login
    history by default) older than `before`. The chain still verifies. Commits per batch and
    records an audit.redacted entry."""
    patterns = list(actions or LOGIN_HISTORY_ACTIONS)
    now = _utc(now or utcnow())
    before = _utc(before)
    condition = _action_filter(patterns)
    total = 0
    while True:
        ids = db.session.execute(
            select(_log.c.id)
            .where(condition, _log.c.at < before, _log.c.redacted_at.is_(None))
            .order_by(_log.c.id).limit(batch)
        ).scalars().all()
        if not ids:
            break
        db.session.execute(
            update(_log).where(_log.c.id.in_(ids))
            .values(actor=None, target_id=None, address=None, content=null(), salt=None,
                    redacted_at=now)
        )
        db.session.commit()
        total += len(ids)
    record("audit.redacted", actor=actor, target_type="audit", now=now,
           details={"actions": patterns, "before": before, "count": total})
    db.session.commit()
    return total
