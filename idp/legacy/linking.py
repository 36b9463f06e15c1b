"""Automatic linking of imported legacy accounts to unified identities.

The rule (domain.md, "Legacy accounts"): a number decides, the rest only corroborates. An
unlinked account whose personal number (or old 9-digit ID number, held by the identity as a
`legacy_id_number` identifier) is the current identifier of an identity is linked when its
name (accent- and tone-placement-insensitive search key) and birth date, where both sides have
them, agree; a disagreement makes it a `conflict` with the reason, for an officer. Name, e-mail
or phone alone never link: they are not even looked at without a number.

Set-based where it pays: one SQL join per batch finds the number matches; the comparison runs
in Python on the batch; one executemany writes the outcome.
"""

from __future__ import annotations

import functools
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    String,
    and_,
    bindparam,
    column,
    func,
    or_,
    select,
    table,
    type_coerce,
    update,
)

from idp.extensions import db
from idp.identity import names
from idp.identity.models import Identifier, IdentifierType, Identity, IdentityStatus
from idp.legacy.models import LegacyAccount, LegacySystem, LinkState

DEFAULT_BATCH_SIZE = 5000
LINKED_BY_AUTO = "auto"

# Conflict reasons: stable English strings stored with the row (an officer's queue shows them;
# the console translates by these keys).
NAME_DIFFERS = "name differs"
BIRTH_DATE_DIFFERS = "birth date differs"
NUMBER_DIFFERS = "personal number differs"
NUMBERS_SPLIT = "personal number and old ID number belong to different identities"
IDENTITY_MERGED = "identity was merged"


# Names repeat a great deal; a bounded cache spares most of the key computations.
_search_key = functools.lru_cache(maxsize=65536)(names.search_key)


@dataclass
class LinkResult:
    examined: int = 0  # accounts whose number matched an identity
    auto_linked: int = 0
    conflict: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def decide(
    *,
    personal_number: str | None,
    full_name: str | None,
    birth_date,
    identity_name_search: str,
    identity_birth_date,
    identity_status: str,
    identity_number: str | None,
    numbers_split: bool = False,
) -> tuple[str, str | None]:
    """(state, reason) for one account against the identity its number points at.

    identity_number: the identity's current personal number; numbers_split: the account's
    personal number and old ID number point at two different identities.
    """
    if numbers_split:
        return LinkState.CONFLICT.value, NUMBERS_SPLIT
    if identity_status == IdentityStatus.MERGED.value:
        return LinkState.CONFLICT.value, IDENTITY_MERGED
    reasons = []
    if personal_number and identity_number and personal_number != identity_number:
        reasons.append(NUMBER_DIFFERS)
    if full_name and _search_key(full_name) != identity_name_search:
        reasons.append(NAME_DIFFERS)
    if birth_date and identity_birth_date and birth_date != identity_birth_date:
        reasons.append(BIRTH_DATE_DIFFERS)
    if reasons:
        return LinkState.CONFLICT.value, "; ".join(reasons)
    return LinkState.AUTO_LINKED.value, None


def _match_query(system_id: int, after: int, limit: int):
    """Unlinked accounts of a system whose number is an identity's current identifier, with
    what the comparison needs of that identity; keyset-paged on the account id."""
    la = LegacyAccount.__table__
    ident = Identity.__table__
    by_number = Identifier.__table__.alias("by_number")
    by_id_number = Identifier.__table__.alias("by_id_number")
    current = Identifier.__table__.alias("current_number")
    matched = func.coalesce(by_number.c.identity_id, by_id_number.c.identity_id)
    return (
        select(
            la.c.id,
            la.c.personal_number,
            la.c.full_name,
            la.c.birth_date,
            by_number.c.identity_id.label("number_identity"),
            by_id_number.c.identity_id.label("id_number_identity"),
            ident.c.id.label("identity_id"),
            ident.c.name_search,
            ident.c.birth_date.label("identity_birth_date"),
            # As text: the enum conversion per row is measurable at a million rows.
            type_coerce(ident.c.status, String).label("status"),
            current.c.value.label("identity_number"),
        )
        .select_from(
            la.outerjoin(
                by_number,
                and_(
                    by_number.c.type == IdentifierType.PERSONAL_NUMBER.value,
                    by_number.c.value == la.c.personal_number,
                    by_number.c.valid_to.is_(None),
                ),
            )
            .outerjoin(
                by_id_number,
                and_(
                    by_id_number.c.type == IdentifierType.LEGACY_ID_NUMBER.value,
                    by_id_number.c.value == la.c.id_number,
                    by_id_number.c.valid_to.is_(None),
                ),
            )
            .join(ident, ident.c.id == matched)
            .outerjoin(
                current,
                and_(
                    current.c.identity_id == ident.c.id,
                    current.c.type == IdentifierType.PERSONAL_NUMBER.value,
                    current.c.valid_to.is_(None),
                ),
            )
        )
        .where(
            la.c.system_id == system_id,
            la.c.link_state == LinkState.UNLINKED.value,
            la.c.id > after,
            or_(la.c.personal_number.is_not(None), la.c.id_number.is_not(None)),
        )
        .order_by(la.c.id)
        .limit(limit)
    )


_CHANGE_COLUMNS = (
    "id", "link_state", "identity_id", "candidate_identity_id", "conflict_reason", "linked_by",
    "linked_at",
)


class _Changes:
    """Writes the decisions of a batch, each batch in its own transaction on its own
    connection: executemany, or on PostgreSQL COPY into a temporary table and one
    UPDATE ... FROM (a parameter set per row costs more than the decision). On PostgreSQL the
    write runs on a background thread while the next batch is read and decided; at most one
    write waits.
    """

    STAGE = "legacy_link_stage"

    def __init__(self, conn, now: datetime):
        self.conn = conn
        self.now = now
        self.postgres = conn.dialect.name == "postgresql"
        la = LegacyAccount.__table__
        if not self.postgres:
            self.statement = (
                update(la)
                .where(la.c.id == bindparam("b_id"), la.c.link_state == LinkState.UNLINKED.value)
                .values(
                    link_state=bindparam("b_state"),
                    identity_id=bindparam("b_identity", type_=db.Uuid),
                    candidate_identity_id=bindparam("b_candidate", type_=db.Uuid),
                    conflict_reason=bindparam("b_reason"),
                    linked_by=bindparam("b_by"),
                    linked_at=bindparam("b_at"),
                    updated_at=now,
                )
            )
            return
        with conn.begin():
            conn.exec_driver_sql(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.STAGE} ON COMMIT DELETE ROWS AS "  # noqa: S608 (constant names)
                f"SELECT {', '.join(_CHANGE_COLUMNS)} FROM legacy_accounts WITH NO DATA"
            )
        stage = table(self.STAGE, *(column(name) for name in _CHANGE_COLUMNS))
        self.statement = (
            update(la)
            .where(la.c.id == stage.c.id, la.c.link_state == LinkState.UNLINKED.value)
            .values(
                link_state=stage.c.link_state,
                identity_id=stage.c.identity_id,
                candidate_identity_id=stage.c.candidate_identity_id,
                conflict_reason=stage.c.conflict_reason,
                linked_by=stage.c.linked_by,
                linked_at=stage.c.linked_at,
                updated_at=now,
            )
        )
        self.copy_sql = f"COPY {self.STAGE} ({', '.join(_CHANGE_COLUMNS)}) FROM STDIN"
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="legacy-link")
        self.pending: Future | None = None

    def submit(self, changes: list[tuple]) -> None:
        """changes: (id, state, identity id, candidate id, reason, linked_by, linked_at)."""
        if not changes:
            return
        if not self.postgres:
            self._write(changes)
            return
        self._collect()
        self.pending = self.pool.submit(self._write, changes)

    def _collect(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()  # re-raises what the thread raised

    def close(self) -> None:
        if not self.postgres:
            return
        try:
            self._collect()
        finally:
            self.pool.shutdown(wait=True)

    def _write(self, changes: list[tuple]) -> None:
        with self.conn.begin():
            if not self.postgres:
                keys = ("b_id", "b_state", "b_identity", "b_candidate", "b_reason", "b_by", "b_at")
                rows = [dict(zip(keys, c, strict=True)) for c in changes]
                self.conn.execute(self.statement, rows)
                return
            cursor = self.conn.connection.driver_connection.cursor()
            with cursor.copy(self.copy_sql) as copy:
                for change in changes:
                    copy.write_row(change)
            self.conn.execute(self.statement)


def link_system(
    system: LegacySystem, *, now: datetime, batch_size: int = DEFAULT_BATCH_SIZE
) -> LinkResult:
    """Link the unlinked accounts of one system, batch by batch (each write is committed)."""
    result = LinkResult()
    after = 0
    engine = db.engine
    with engine.connect() as reader, engine.connect() as writer_conn:
        writer = _Changes(writer_conn, now)
        try:
            while True:
                with reader.begin():
                    rows = reader.execute(_match_query(system.id, after, batch_size)).all()
                if not rows:
                    break
                # Later batches only read ids above this one: never a row still being written.
                after = rows[-1].id
                writer.submit(_decisions(rows, now, result))
                if len(rows) < batch_size:
                    break
        finally:
            writer.close()
    return result


def _decisions(rows, now: datetime, result: LinkResult) -> list[tuple]:
    changes = []
    auto_linked = LinkState.AUTO_LINKED.value
    for (
        account_id, personal_number, full_name, birth_date, number_identity, id_number_identity,
        identity_id, name_search, identity_birth_date, status, identity_number,
    ) in rows:
        identity_id = _as_uuid(identity_id)
        split = bool(
            number_identity
            and id_number_identity
            and _as_uuid(id_number_identity) != _as_uuid(number_identity)
        )
        state, reason = decide(
            personal_number=personal_number,
            full_name=full_name,
            birth_date=birth_date,
            identity_name_search=name_search,
            identity_birth_date=identity_birth_date,
            identity_status=status,
            identity_number=identity_number,
            numbers_split=split,
        )
        result.examined += 1
        if state == auto_linked:
            result.auto_linked += 1
            changes.append((account_id, state, identity_id, None, None, LINKED_BY_AUTO, now))
        else:
            result.conflict += 1
            for part in reason.split("; "):
                result.reasons[part] = result.reasons.get(part, 0) + 1
            changes.append((account_id, state, None, identity_id, reason, None, None))
    return changes


def _as_uuid(value):
    # SQLite returns the Uuid column of an aliased join as stored; normalize for comparisons.
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))
