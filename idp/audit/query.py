"""Reading the log for the admin viewer: filtered pages and a streaming CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import func, or_, select

from idp.audit.chain import canonical, iso
from idp.audit.models import AuditEntry
from idp.extensions import db

MAX_PER_PAGE = 500
CSV_COLUMNS = ["id", "at", "actor", "action", "target_type", "target_id", "address", "details",
               "redacted_at", "hash"]


def _filtered(query, *, action_prefix=None, actor=None, target_type=None, target_id=None,
              involving=None, since: datetime | None = None, until: datetime | None = None):
    """since is inclusive, until exclusive; involving matches the actor or the target id."""
    if action_prefix:
        query = query.where(AuditEntry.action.startswith(action_prefix, autoescape=True))
    if actor:
        query = query.where(AuditEntry.actor == str(actor))
    if target_type:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id:
        query = query.where(AuditEntry.target_id == str(target_id))
    if involving:
        query = query.where(or_(AuditEntry.actor == str(involving),
                                AuditEntry.target_id == str(involving)))
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at < until)
    return query


def search(*, page: int = 1, per_page: int = 50, **filters) -> tuple[list[AuditEntry], int]:
    """One page of entries, newest first, and the number of matching entries.

    Filters: action_prefix, actor, target_type, target_id, involving, since, until.
    """
    per_page = max(1, min(int(per_page), MAX_PER_PAGE))
    page = max(1, int(page))
    total = db.session.execute(_filtered(select(func.count(AuditEntry.id)), **filters)).scalar()
    rows = db.session.scalars(
        _filtered(select(AuditEntry), **filters)
        .order_by(AuditEntry.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value)
    text = str(value)
    # A spreadsheet would run a cell starting like a formula (CSV injection).
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return text


def iter_csv(*, batch: int = 1000, **filters) -> Iterator[str]:
    """CSV text in chunks (a header, then one chunk per batch), oldest first; for a streamed
    HTTP response or a file. Same filters as search()."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    after = 0
    while True:
        # Plain rows, not ORM objects: nothing accumulates in the session.
        rows = db.session.execute(
            _filtered(select(AuditEntry.__table__), **filters)
            .where(AuditEntry.id > after).order_by(AuditEntry.id).limit(batch)
        ).all()
        for e in rows:
            details = None if e.content is None else canonical(e.content)
            writer.writerow([_cell(v) for v in (e.id, e.at, e.actor, e.action, e.target_type,
                                                 e.target_id, e.address, details, e.redacted_at,
                                                 e.hash)])
        if buffer.tell():
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if len(rows) < batch:
            return
        after = rows[-1].id


def export_csv(fileobj, **filters) -> None:
    """Write the matching entries as CSV to a text file object, streaming."""
    for chunk in iter_csv(**filters):
        fileobj.write(chunk)
