"""Embedded backend: a table in the SQL database.

Every call runs in its own short transaction on the engine (not the request's ORM session),
so several worker processes see one store and it survives a restart.
"""

from __future__ import annotations

import math
import random
import time

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from idp.extensions import db
from idp.store.base import StoreUnavailable
from idp.store.models import StoreEntry, StoreSetMember

_entries = StoreEntry.__table__
_members = StoreSetMember.__table__
# One call in this many also purges expired rows, so the table does not grow unbounded.
PURGE_ONE_IN = 200
# PostgreSQL advisory lock class (first key of the two-key form) serializing set_add per set.
SET_LOCK_CLASS = 0x1D5E7


def _insert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


class SqlStore:
    def __init__(self, app, prefix: str, clock=time.time):
        with app.app_context():
            self.engine = db.engine
        self.prefix = prefix
        self.clock = clock
        self.insert = _insert(self.engine.dialect.name)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _tx(self, fn):
        try:
            with self.engine.begin() as conn:
                return fn(conn, self.clock())
        except (OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"embedded store: {getattr(exc, 'orig', exc)!r}") from exc

    def _maybe_purge(self, conn, now):
        if random.randrange(PURGE_ONE_IN) == 0:
            conn.execute(delete(_entries).where(_entries.c.expires_at <= now))
            conn.execute(delete(_members).where(_members.c.expires_at <= now))

    def get(self, key):
        def run(conn, now):
            return conn.execute(
                select(_entries.c.value).where(
                    _entries.c.key == self._k(key), _entries.c.expires_at > now
                )
            ).scalar()

        return self._tx(run)

    def set(self, key, value, ttl):
        def run(conn, now):
            stmt = self.insert(_entries).values(key=self._k(key), value=value, expires_at=now + ttl)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[_entries.c.key],
                    set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
                )
            )
            self._maybe_purge(conn, now)

        self._tx(run)

    def set_if_absent(self, key, value, ttl):
        def run(conn, now):
            stmt = self.insert(_entries).values(key=self._k(key), value=value, expires_at=now + ttl)
            # Take over an expired row; leave a live one alone.
            stmt = stmt.on_conflict_do_update(
                index_elements=[_entries.c.key],
                set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
                where=_entries.c.expires_at <= now,
            ).returning(_entries.c.key)
            return conn.execute(stmt).first() is not None

        return self._tx(run)

    def take(self, key):
        def run(conn, now):
            row = conn.execute(
                delete(_entries)
                .where(_entries.c.key == self._k(key))
                .returning(_entries.c.value, _entries.c.expires_at)
            ).first()
            if row is None or row.expires_at <= now:
                return None
            return row.value

        return self._tx(run)

    def incr(self, key, ttl):
        def run(conn, now):
            stmt = self.insert(_entries).values(key=self._k(key), value="1", expires_at=now + ttl)
            expired = _entries.c.expires_at <= now
            stmt = stmt.on_conflict_do_update(
                index_elements=[_entries.c.key],
                set_={
                    "value": db.case(
                        (expired, "1"),
                        else_=db.cast(db.cast(_entries.c.value, db.Integer) + 1, db.Text),
                    ),
                    "expires_at": db.case((expired, now + ttl), else_=_entries.c.expires_at),
                },
            ).returning(_entries.c.value)
            return int(conn.execute(stmt).scalar_one())

        return self._tx(run)

    def ttl(self, key):
        def run(conn, now):
            expires = conn.execute(
                select(_entries.c.expires_at).where(
                    _entries.c.key == self._k(key), _entries.c.expires_at > now
                )
            ).scalar()
            if expires is None:
                expires = conn.execute(
                    select(db.func.max(_members.c.expires_at)).where(
                        _members.c.key == self._k(key), _members.c.expires_at > now
                    )
                ).scalar()
            # Round up like Redis: a live key never reports 0 seconds.
            return None if expires is None else max(1, math.ceil(expires - now))

        return self._tx(run)

    def delete(self, key):
        def run(conn, now):
            conn.execute(delete(_entries).where(_entries.c.key == self._k(key)))
            conn.execute(delete(_members).where(_members.c.key == self._k(key)))

        self._tx(run)

    def set_add(self, key, member, ttl):
        def run(conn, now):
            k = self._k(key)
            if conn.dialect.name == "postgresql":
                # Concurrent adds to one set run one after the other.
                conn.execute(select(func.pg_advisory_xact_lock(SET_LOCK_CLASS, func.hashtext(k))))
            # Write before reading: on SQLite this takes the database write lock first, so the
            # read below cannot be stale. An existing member's life is never shortened.
            stmt = self.insert(_members).values(key=k, member=member, expires_at=now + ttl)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[_members.c.key, _members.c.member],
                    set_={
                        "expires_at": db.case(
                            (
                                _members.c.expires_at > stmt.excluded.expires_at,
                                _members.c.expires_at,
                            ),
                            else_=stmt.excluded.expires_at,
                        )
                    },
                )
            )
            # Every live member shares the set's life: the longest of them.
            live = and_(_members.c.key == k, _members.c.expires_at > now)
            current = conn.execute(select(func.max(_members.c.expires_at)).where(live)).scalar()
            expires = max(now + ttl, current or 0)
            conn.execute(
                update(_members)
                .where(live, _members.c.expires_at < expires)
                .values(expires_at=expires)
            )
            self._maybe_purge(conn, now)

        self._tx(run)

    def set_remove(self, key, member):
        def run(conn, now):
            conn.execute(
                delete(_members).where(_members.c.key == self._k(key), _members.c.member == member)
            )

        self._tx(run)

    def set_members(self, key):
        def run(conn, now):
            rows = conn.execute(
                select(_members.c.member).where(
                    _members.c.key == self._k(key), _members.c.expires_at > now
                )
            )
            return {r[0] for r in rows}

        return self._tx(run)

    def ping(self):
        self._tx(lambda conn, now: conn.execute(select(1)).scalar())

    def purge(self) -> None:
        """Delete every expired row now."""

        def run(conn, now):
            conn.execute(delete(_entries).where(_entries.c.expires_at <= now))
            conn.execute(delete(_members).where(_members.c.expires_at <= now))

        self._tx(run)
