"""Many writers at once: one linear chain, no fork, no lost entry."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from idp import audit
from idp.audit.models import AuditEntry
from idp.extensions import db

THREADS = 8
EACH = 50


def test_concurrent_writers_keep_one_chain(app):
    barrier = threading.Barrier(THREADS)
    errors = []
    spans = {}

    def writer(n):
        try:
            with app.app_context():
                barrier.wait()
                started = time.monotonic()
                for i in range(EACH):
                    audit.record("login.succeeded", actor="system", target_type="identity",
                                 target_id=f"t{n}", details={"writer": n, "i": i})
                    db.session.commit()
                spans[n] = (started, time.monotonic())
                db.session.remove()
        except Exception as exc:  # reported below, with the thread that raised it
            errors.append((n, repr(exc)))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context():
        total = db.session.execute(select(func.count(AuditEntry.id))).scalar()
        distinct_prev = db.session.execute(
            select(func.count(func.distinct(AuditEntry.prev_hash)))).scalar()
        assert total == distinct_prev == THREADS * EACH
        result = audit.verify(batch=37)
        assert result.ok, result
        assert result.checked == result.last_id == THREADS * EACH
        writers = [e.details["writer"] for e in db.session.scalars(
            select(AuditEntry).order_by(AuditEntry.id))]
        assert len(set(writers)) == THREADS
        # Every writer was appending while every other one was: they contended for the head
        # (whatever order the lock handed it over in).
        assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values())
        # Each writer's own entries are in its own order.
        for n in range(THREADS):
            seen = [e.details["i"] for e in db.session.scalars(
                select(AuditEntry).where(AuditEntry.target_id == f"t{n}").order_by(AuditEntry.id))]
            assert seen == list(range(EACH))
