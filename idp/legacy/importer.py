"""Streaming import of a legacy system's user export (CSV or JSON Lines).

Every input record ends either in `legacy_accounts` or in the rejects report with a reason; the
totals say so (read == imported + rejected). Memory stays flat: the file is read line by line,
records are upserted in batches (INSERT ... ON CONFLICT DO UPDATE on SQLite and PostgreSQL),
and a duplicate id within the file is found in the database (rows carry the id of the run that
wrote them) rather than in an ever-growing set.

Text: every line is decoded as UTF-8; a system that declares Windows-1258 may also send lines
in that encoding, which are decoded, checked to read as Vietnamese, and normalized to NFC. A
line that is neither is rejected as unreadable, never stored garbled. See docs/legacy.md.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, column, func, literal, or_, select, table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from idp.errors import DomainError, ValidationError
from idp.extensions import db
from idp.identity import names, validators
from idp.legacy import child_reader, hashes
from idp.legacy.models import (
    ExportEncoding,
    LegacyAccount,
    LegacyImportRun,
    LegacySystem,
    LinkState,
)

DEFAULT_BATCH_SIZE = 5000
FORMATS = ("csv", "jsonl")

# The documented column schema (docs/legacy.md); a mapping file renames them.
FIELDS = (
    "legacy_id", "username", "password_hash", "hash_scheme", "salt", "personal_number",
    "id_number", "tax_code", "full_name", "birth_date", "gender", "phone", "email",
)
# Kept out of the raw row: the hash and salt have their own columns, and a copy of a secret
# in a JSON blob is one more place to leak it from.
_SECRET_FIELDS = ("password_hash", "salt")
_MAX_LENGTHS = {"legacy_id": 128, "username": 200, "password_hash": 512, "salt": 256}

_GENDERS = {
    "male": "male", "m": "male", "nam": "male",
    "female": "female", "f": "female", "nữ": "female", "nu": "female",
}
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ][0-9:.]+Z?)?")
_DMY_DATE = re.compile(r"([0-9]{1,2})[/.\-]([0-9]{1,2})[/.\-]([0-9]{4})")
# Fast paths for contact data; anything else goes through the full validators.
_VN_PHONE = re.compile(r"(?:\+84|84|0)([35789][0-9]{8})")
_PHONE_SEPARATORS = re.compile(r"[\s().\-]")
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+"
)

# Letters of Vietnamese beyond ASCII, without tone marks.
_VIETNAMESE_BASES = frozenset("ĂÂÊÔƠƯĐăâêôơưđ")
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")
_MODIFIED_VOWELS = frozenset("ăâêôơư")
_VOWELS = frozenset("aăâeêioôơuưy")
# A plain vowel may stand before a vowel with a modifier only in these pairs (thuở, muốn,
# tuân, huế, tiên, yên, xoăn, quăng, người); VNI text read as Windows-1258 breaks the rule
# ("Nguyeăn", "Vaên").
_VOWEL_PAIRS = frozenset({"uô", "uâ", "uê", "uơ", "uă", "iê", "yê", "oă", "ươ"})


class ImportFailed(DomainError):
    """The file as a whole cannot be imported (unknown column, unreadable header)."""

    code = "import_failed"


@dataclass
class Mapping:
    """Which input column holds each field, and how some values are written."""

    columns: dict[str, str] = field(default_factory=lambda: {f: f for f in FIELDS})
    # Extra value maps, e.g. {"gender": {"1": "male", "0": "female"}}.
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    birth_date_format: str | None = None  # strptime format; ISO and DD/MM/YYYY otherwise


@dataclass
class ImportResult:
    run_id: str
    read: int = 0
    imported: int = 0
    rejected: int = 0
    fields_dropped: int = 0
    encoding_rejects: int = 0
    rejects_path: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)


class _Reject(Exception):  # noqa: N818 (a control-flow signal, not an error)
    def __init__(self, code: str, message):
        super().__init__(code)
        self.code = code
        self.message = message


# --- mapping ------------------------------------------------------------------------------------


def load_mapping(path: str | Path | None) -> Mapping:
    """Read a mapping file: {"columns": {field: column}, "values": {...}, "birth_date_format"}."""
    if path is None:
        return Mapping()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImportFailed(_l("The mapping file cannot be read: %(e)s", e=str(exc))) from None
    if not isinstance(data, dict) or not isinstance(data.get("columns", {}), dict):
        raise ImportFailed(_l("The mapping file must be a JSON object with a \"columns\" object."))
    unknown = set(data.get("columns", {})) - set(FIELDS)
    if unknown:
        raise ImportFailed(
            _l("The mapping file names unknown fields: %(f)s", f=", ".join(sorted(unknown)))
        )
    columns = {f: f for f in FIELDS}
    columns.update({k: _nfc(str(v)) for k, v in data.get("columns", {}).items()})
    values = {
        name: {_fold(str(k)): str(v) for k, v in codes.items()}
        for name, codes in (data.get("values") or {}).items()
        if isinstance(codes, dict)
    }
    birth_date_format = data.get("birth_date_format")
    if birth_date_format is not None and not isinstance(birth_date_format, str):
        raise ImportFailed(_l("birth_date_format must be a strptime format string."))
    return Mapping(columns=columns, values=values, birth_date_format=birth_date_format)


# --- decoding -----------------------------------------------------------------------------------


class _Lines:
    """Decoded lines of a binary file, with line numbers and bytes consumed.

    Each line is UTF-8, or (when the system declares it) Windows-1258; a line that is neither
    is decoded with surrogateescape so nothing is lost, and its number is remembered: a record
    touching it is rejected as unreadable.
    """

    def __init__(self, fh, encoding: str):
        self.fh = fh
        self.fallback = encoding if encoding != ExportEncoding.UTF8 else None
        self.number = 0
        self.bytes_read = 0
        self.bad: set[int] = set()  # lines that did not decode; cleared per record
        self.fallback_used: set[int] = set()  # lines decoded with the fallback encoding
        self.nul: set[int] = set()  # lines with NUL bytes (PostgreSQL text cannot hold them)

    def __iter__(self) -> Iterator[str]:
        first = True
        for raw in self.fh:
            self.number += 1
            self.bytes_read += len(raw)
            if first:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
                first = False
            if b"\x00" in raw:
                self.nul.add(self.number)
            try:
                yield raw.decode("utf-8")
                continue
            except UnicodeDecodeError:
                pass
            if self.fallback:
                try:
                    text = raw.decode(self.fallback)
                except UnicodeDecodeError:
                    pass
                else:
                    self.fallback_used.add(self.number)
                    yield text
                    continue
            self.bad.add(self.number)
            yield raw.decode("utf-8", "surrogateescape")

    def forget(self, upto: int) -> None:
        if not (self.bad or self.fallback_used or self.nul):
            return
        self.bad = {n for n in self.bad if n > upto}
        self.fallback_used = {n for n in self.fallback_used if n > upto}
        self.nul = {n for n in self.nul if n > upto}

    def touched(self, marks: set[int], first: int, last: int) -> bool:
        return any(first <= n <= last for n in marks)


# Names repeat a great deal (Nguyễn Văn An ...): a bounded cache spares part of the work.
_cached_normalize_name = functools.lru_cache(maxsize=65536)(names.normalize_name)

# Letters a Vietnamese name is commonly written with, precomposed (NFC), and the space.
_PLAIN_NAME_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ "
    + "".join(
        unicodedata.normalize("NFC", vowel + tone)
        for vowel in "aăâeêioôơuưyAĂÂEÊIOÔƠUƯY"
        for tone in ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
    )
    + "đĐ"
)


def _normalize_name(value: str) -> str:
    """names.normalize_name, with a shortcut for the text it would return unchanged.

    Precomposed Vietnamese letters and single inner spaces are already NFC and pass every rule
    of normalize_name (tests check the two agree); anything else takes the full path.
    """
    if (
        len(value) <= names.MAX_NAME_LENGTH
        and _PLAIN_NAME_CHARS.issuperset(value)
        and "  " not in value
        and value[:1] != " "
        and value[-1:] != " "
        and value
    ):
        return value
    return _cached_normalize_name(value)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().casefold()


def reads_as_vietnamese(text: str) -> bool:
    """Heuristic: could this Windows-1258-decoded text be Vietnamese, rather than VNI/TCVN3?

    Letters are ASCII or Vietnamese (ă â ê ô ơ ư đ) carrying at most the five tone marks, and
    each tone sits on a vowel; in a word with such letters, at most one tone, Capitalized,
    UPPER or lower case, and no vowel pair that Vietnamese never writes before a vowel with a
    modifier. VNI and TCVN3 text read as Windows-1258 breaks one of these ("NguyÔn",
    "Nguyeăn", "Ñöùc").
    """
    if text.isascii():
        return True
    composed = _nfc(text)
    if any(unicodedata.combining(ch) for ch in composed):
        return False  # a mark NFC could not place on a letter
    decomposed = unicodedata.normalize("NFD", composed)
    base = ""
    for ch in decomposed:
        if ch in _TONES:
            if base.lower() not in "aeiouy" or not base:
                return False  # a tone on a consonant: Ñ is N + tilde
        elif not unicodedata.combining(ch):
            base = ch
    bases = _nfc("".join(ch for ch in decomposed if ch not in _TONES))
    if any(not (ch.isascii() or ch in _VIETNAMESE_BASES) for ch in bases):
        return False
    for word, word_bases in zip(composed.split(), bases.split(), strict=True):
        if word.isascii():
            continue
        letters = [ch for ch in word if ch.isalpha()]
        rest = "".join(letters[1:])
        if rest and not (rest.islower() or rest.isupper()):
            return False
        if sum(1 for ch in unicodedata.normalize("NFD", word) if ch in _TONES) > 1:
            return False
        lowered = word_bases.lower()
        for prev, ch in zip(lowered, lowered[1:], strict=False):
            if ch in _MODIFIED_VOWELS and prev in _VOWELS and prev + ch not in _VOWEL_PAIRS:
                return False
    return True


# --- records ------------------------------------------------------------------------------------


def _csv_records(lines: _Lines, mapping: Mapping):
    """(first line, last line, {column: value} or _Reject) for every CSV record."""
    reader = csv.reader(iter(lines))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise ImportFailed(_l("The CSV header cannot be read: %(e)s", e=str(exc))) from None
    if lines.bad:
        raise ImportFailed(_l("The CSV header is not valid UTF-8 (nor the declared encoding)."))
    header = [_nfc(h).strip() for h in header]
    folded = [h.casefold() for h in header]
    if len(set(folded)) != len(folded):
        raise ImportFailed(_l("The CSV header names a column twice."))
    _check_columns(folded, mapping)
    lines.forget(reader.line_num)
    previous = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            first, previous = previous + 1, reader.line_num
            yield first, previous, _Reject("malformed_csv", _l("Malformed CSV: %(e)s", e=str(exc)))
            continue
        first, previous = previous + 1, reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line is not a record
        if len(row) != len(header):
            yield first, previous, _Reject(
                "wrong_column_count",
                _l(
                    "Wrong number of columns: %(got)d instead of %(expected)d.",
                    got=len(row),
                    expected=len(header),
                ),
            )
            continue
        yield first, previous, dict(zip(header, row, strict=True))


def _check_columns(folded_header: list[str], mapping: Mapping) -> None:
    wanted = mapping.columns["legacy_id"].casefold()
    if wanted not in folded_header:
        raise ImportFailed(
            _l("The file has no column %(c)s (the legacy id).", c=mapping.columns["legacy_id"])
        )


def _jsonl_records(lines: _Lines, mapping: Mapping):
    for text in lines:
        number = lines.number
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            yield number, number, _Reject("malformed_json", _l("Malformed JSON: %(e)s", e=str(exc)))
            continue
        if not isinstance(record, dict):
            yield number, number, _Reject("malformed_json", _l("The line is not a JSON object."))
            continue
        yield number, number, record


class _RowCleaner:
    """Turns one input record into column values, or raises _Reject with the reason."""

    def __init__(self, system: LegacySystem, mapping: Mapping, today: date):
        self.default_scheme = system.hash_scheme  # a plain value: no lazy load in the reader process
        self.mapping = mapping
        self.today = today
        self._csv_keys: tuple[dict[str, str], frozenset] | None = None

    def _keys(self, record: dict) -> tuple[dict[str, str], frozenset]:
        """(field -> key in the record, keys of the secret fields); case-insensitive names."""
        by_fold = {str(k).casefold(): k for k in record}
        keys = {
            f: by_fold[self.mapping.columns[f].casefold()]
            for f in FIELDS
            if self.mapping.columns[f].casefold() in by_fold
        }
        return keys, frozenset(keys[f] for f in _SECRET_FIELDS if f in keys)

    @staticmethod
    def _values(record: dict, keys: dict[str, str]) -> dict[str, str | None]:
        values = {}
        for name, key in keys.items():
            value = record[key]
            if isinstance(value, str):
                values[name] = value.strip() or None
            elif value is None or isinstance(value, bool):
                values[name] = None
            elif isinstance(value, int | float):
                values[name] = str(value)
            else:
                raise _Reject("bad_value", _l("The field %(f)s is not text.", f=name))
        return values

    def clean(self, record: dict, *, json_record: bool) -> tuple[dict, int]:
        if json_record:
            keys, secret = self._keys(record)
        else:
            # Every CSV record has the header's keys: resolved once.
            if self._csv_keys is None:
                self._csv_keys = self._keys(record)
            keys, secret = self._csv_keys
        get = self._values(record, keys).get
        dropped = 0
        legacy_id = get("legacy_id")
        if legacy_id is None:
            raise _Reject("missing_id", _l("The legacy id is missing."))
        if not legacy_id.isascii():
            legacy_id = _nfc(legacy_id)
        username = get("username")
        password_hash = get("password_hash")
        salt = get("salt")
        if len(legacy_id) > _MAX_LENGTHS["legacy_id"]:
            raise _too_long("legacy_id")
        if username is not None and len(username) > _MAX_LENGTHS["username"]:
            raise _too_long("username")
        if password_hash is not None and len(password_hash) > _MAX_LENGTHS["password_hash"]:
            raise _too_long("password_hash")
        if salt is not None and len(salt) > _MAX_LENGTHS["salt"]:
            raise _too_long("salt")

        birth_date = self._birth_date(get("birth_date"))
        gender = self._gender(get("gender"))

        full_name = get("full_name")
        if full_name is not None:
            try:
                full_name = _normalize_name(full_name)
            except ValidationError as exc:
                raise _Reject("invalid_name", _l("Invalid name: %(m)s", m=exc.message)) from None

        personal_number = get("personal_number")
        if personal_number is not None:
            try:
                personal_number = validators.personal_number(
                    personal_number, birth_date=birth_date, gender=gender, today=self.today
                )
            except ValidationError as exc:
                raise _Reject(
                    "invalid_personal_number", _l("Invalid personal number: %(m)s", m=exc.message)
                ) from None

        id_number = get("id_number")
        if id_number is not None:
            try:
                id_number = validators.legacy_id_number(id_number)
            except ValidationError as exc:
                raise _Reject(
                    "invalid_id_number", _l("Invalid old ID number: %(m)s", m=exc.message)
                ) from None

        tax_code = get("tax_code")
        if tax_code is not None:
            try:
                tax_code = validators.tax_code(tax_code, today=self.today)
            except ValidationError as exc:
                raise _Reject(
                    "invalid_tax_code", _l("Invalid tax code: %(m)s", m=exc.message)
                ) from None

        scheme = get("hash_scheme") or self.default_scheme
        if scheme not in hashes.SCHEMES:
            raise _Reject("unknown_hash_scheme", _l("Unknown hash scheme %(s)s.", s=scheme))
        if password_hash is not None and not hashes.looks_valid(scheme, password_hash, salt=salt):
            if hashes.SCHEMES[scheme].needs_salt and not salt:
                raise _Reject("missing_salt", _l("The password hash needs a salt; none given."))
            raise _Reject(
                "invalid_hash", _l("The password hash is not in the %(s)s format.", s=scheme)
            )

        if username is not None and not username.isascii():
            username = _nfc(username)

        phone = get("phone")
        if phone is not None:
            phone = _phone(phone)
            dropped += phone is None
        email = get("email")
        if email is not None:
            email = _email(email)
            dropped += email is None

        return {
            "legacy_user_id": legacy_id,
            "username": username,
            "username_key": username.casefold() if username else None,
            "password_hash": password_hash,
            "hash_scheme": scheme if password_hash else None,
            "salt": salt,
            "personal_number": personal_number,
            "id_number": id_number,
            "tax_code": tax_code,
            "full_name": full_name,
            "birth_date": birth_date,
            "gender": gender,
            "phone": phone,
            "email": email,
            "raw": {k: v for k, v in record.items() if k not in secret} if secret else record,
        }, dropped

    def _birth_date(self, value: str | None) -> date | None:
        if value is None:
            return None
        parsed = None
        try:
            if self.mapping.birth_date_format:
                parsed = datetime.strptime(value, self.mapping.birth_date_format).date()
            elif m := _ISO_DATE.fullmatch(value):
                parsed = date(int(m[1]), int(m[2]), int(m[3]))
            elif m := _DMY_DATE.fullmatch(value):
                parsed = date(int(m[3]), int(m[2]), int(m[1]))
        except ValueError:
            parsed = None
        if parsed is None:
            raise _Reject("invalid_birth_date", _l("The birth date %(v)s is not a date.", v=value))
        try:
            return validators.birth_date(parsed, today=self.today)
        except ValidationError as exc:
            raise _Reject("invalid_birth_date", _l("Invalid birth date: %(m)s", m=exc.message)) from None

    def _gender(self, value: str | None) -> str | None:
        if value is None:
            return None
        codes = self.mapping.values.get("gender")
        if not codes and value in _GENDERS:
            return _GENDERS[value]  # the common case, without normalizing
        key = _fold(value)
        mapped = (codes or {}).get(key) or _GENDERS.get(key)
        if mapped not in ("male", "female"):
            raise _Reject(
                "invalid_gender",
                _l("Unknown gender value %(v)s (map it in the mapping file).", v=value),
            )
        return mapped


def _too_long(name: str) -> _Reject:
    return _Reject("too_long", _l("The field %(f)s is too long.", f=name))


def _phone(value: str) -> str | None:
    """E.164, or None when unusable (contact data is never used to link; raw keeps it)."""
    compact = _PHONE_SEPARATORS.sub("", value)
    m = _VN_PHONE.fullmatch(compact)
    if m:
        return "+84" + m[1]
    try:
        return validators.phone(value)
    except ValidationError:
        return None


def _email(value: str) -> str | None:
    if _PLAIN_EMAIL.fullmatch(value) and len(value) <= 254:
        return value.lower()
    try:
        return validators.email(value)
    except ValidationError:
        return None


# --- writing ------------------------------------------------------------------------------------


def _insert_for(dialect: str):
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ImportFailed(_l("Importing needs SQLite or PostgreSQL."))


_DATA_COLUMNS = (
    "username", "username_key", "password_hash", "hash_scheme", "salt", "personal_number",
    "id_number", "tax_code", "full_name", "birth_date", "gender", "phone", "email", "raw",
    "import_run", "source_line", "updated_at",
)
# A change of any of these undoes an automatic decision (link or conflict): it was made on
# the old values, so the account goes back to the queue. A claim or an officer's rejection
# stays.
_MATCH_COLUMNS = ("personal_number", "id_number", "full_name", "birth_date")


_INSERT_COLUMNS = (
    "system_id", "legacy_user_id", *_DATA_COLUMNS, "link_state", "imported_at",
)
# The same for every row of a run: the writers add them, the rows never carry them.
_RUN_COLUMNS = ("system_id", "import_run", "updated_at", "link_state", "imported_at")
_ROW_COLUMNS = tuple(name for name in _INSERT_COLUMNS if name not in _RUN_COLUMNS)
# The order of a COPY line: raw last (CopyBatch writes it apart from the plain fields).
_COPY_COLUMNS = (*(name for name in _ROW_COLUMNS if name != "raw"), "raw")


def _upsert_statement(dialect: str, rows_from=None):
    """INSERT ... ON CONFLICT (system, legacy id) DO UPDATE, from parameters or a SELECT.

    From a SELECT (PostgreSQL) the update skips rows this same run wrote, and the statement
    returns the ids it inserted or updated: a missing id is a duplicate within the file.
    """
    table = LegacyAccount.__table__
    stmt = _insert_for(dialect)(table)
    if rows_from is not None:
        stmt = stmt.from_select(list(_INSERT_COLUMNS), rows_from)
    excluded = stmt.excluded
    c = table.c
    changed = or_(*(c[name].is_distinct_from(excluded[name]) for name in _MATCH_COLUMNS))
    # Two comparisons, not IN: an expanding IN cannot go into an executemany.
    automatic = or_(
        c.link_state == LinkState.AUTO_LINKED.value, c.link_state == LinkState.CONFLICT.value
    )
    reopen = automatic & changed

    def unless_reopened(column, value=None):
        return case((reopen, value), else_=column)

    set_ = {name: excluded[name] for name in _DATA_COLUMNS}
    set_.update(
        link_state=unless_reopened(c.link_state, LinkState.UNLINKED.value),
        identity_id=unless_reopened(c.identity_id),
        candidate_identity_id=unless_reopened(c.candidate_identity_id),
        conflict_reason=unless_reopened(c.conflict_reason),
        linked_by=unless_reopened(c.linked_by),
        linked_at=unless_reopened(c.linked_at),
    )
    if rows_from is None:
        return stmt.on_conflict_do_update(
            index_elements=[c.system_id, c.legacy_user_id], set_=set_
        )
    return stmt.on_conflict_do_update(
        index_elements=[c.system_id, c.legacy_user_id],
        set_=set_,
        where=c.import_run != excluded.import_run,
    ).returning(c.legacy_user_id)


class _Writer:
    """Batch upserts with executemany (SQLite, and the fallback everywhere).

    `_write(batch)` returns (rows written, refused rows as (line, id, code, message)); the
    caller's thread reports them, so a writer may run on another thread.
    """

    def __init__(self, system_id: int, run_id: str, reject: Callable, result: ImportResult, now: datetime):
        self.system_id = system_id
        self.run_id = run_id
        self.reject = reject
        self.result = result
        self.fixed = {
            "system_id": system_id, "import_run": run_id, "imported_at": now, "updated_at": now,
            "link_state": LinkState.UNLINKED.value,
        }
        self.engine = db.engine
        self.upsert = _upsert_statement(self.engine.dialect.name)

    def flush(self, batch: dict[str, dict]) -> None:
        if batch:
            self._apply(self._write(batch))

    def close(self) -> None:
        pass

    def _apply(self, outcome: tuple[int, list]) -> None:
        written, refused = outcome
        self.result.imported += written
        for line, legacy_id, code, message in refused:
            self.reject(line, legacy_id, code, message)

    def _write(self, batch: dict[str, dict]) -> tuple[int, list]:
        c = LegacyAccount.__table__.c
        with self.engine.begin() as conn:
            # Ids this run already wrote: duplicates within the file.
            earlier = conn.execute(
                select(c.legacy_user_id, c.source_line).where(
                    c.system_id == self.system_id,
                    c.import_run == self.run_id,
                    c.legacy_user_id.in_(list(batch)),
                )
            ).all()
        refused = _pop_duplicates(batch, earlier)
        rows = [{**row, **self.fixed} for row in batch.values()]
        if not rows:
            return 0, refused
        try:
            with self.engine.begin() as conn:
                conn.execute(self.upsert, rows)
        except DBAPIError:
            return self._one_by_one(rows, refused)
        return len(rows), refused

    def _one_by_one(self, rows: list[dict], refused: list) -> tuple[int, list]:
        """Find the rows the database refuses; keep every other one."""
        written = 0
        for row in rows:
            try:
                with self.engine.begin() as conn:
                    conn.execute(self.upsert, row)
            except DBAPIError as exc:
                detail = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
                refused.append(
                    (
                        row["source_line"], row["legacy_user_id"], "database_refused",
                        _l("The database refused the row: %(e)s", e=detail),
                    )
                )
            else:
                written += 1
        return written, refused


def _pop_duplicates(batch: dict[str, dict], earlier) -> list:
    refused = []
    for legacy_id, first_line in earlier:
        row = batch.pop(legacy_id)
        refused.append((row["source_line"], legacy_id, "duplicate_id", _duplicate(first_line)))
    return refused


class _PostgresWriter(_Writer):
    """PostgreSQL: COPY each batch into a temporary table, then one INSERT ... SELECT ...
    ON CONFLICT DO UPDATE (binding parameters row by row costs more than parsing the file).

    The write runs on one background thread while the next batch is parsed; at most one
    batch waits, so memory stays at two batches.
    """

    STAGE = "legacy_import_stage"

    def __init__(self, *args):
        super().__init__(*args)
        import psycopg  # the driver this dialect runs on; COPY is its API

        self.driver_errors = (DBAPIError, psycopg.Error)
        stage = table(self.STAGE, *(column(name) for name in _ROW_COLUMNS))
        self.stage = stage
        # The run's constant columns come from the SELECT, not from every copied row.
        types = LegacyAccount.__table__.c
        source = [
            literal(self.fixed[name], types[name].type).label(name) if name in self.fixed else stage.c[name]
            for name in _INSERT_COLUMNS
        ]
        self.upsert_from_stage = _upsert_statement("postgresql", select(*source))
        self.copy_sql = f"COPY {self.STAGE} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
        self.conn = self.engine.connect()
        with self.conn.begin():
            # Same column types as the target; emptied by every commit.
            self.conn.exec_driver_sql(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.STAGE} ON COMMIT DELETE ROWS AS "  # noqa: S608 (constant names)
                f"SELECT {', '.join(_ROW_COLUMNS)} FROM legacy_accounts WITH NO DATA"
            )
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="legacy-import")
        self.pending: Future | None = None

    def flush(self, batch: dict[str, dict]) -> None:
        if not batch:
            return
        self._collect()
        self.pending = self.pool.submit(self._write, batch)

    def _collect(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self._apply(pending.result())  # re-raises what the thread raised

    def close(self) -> None:
        try:
            self._collect()
        finally:
            self.pool.shutdown(wait=True)
            self.conn.close()

    def _write(self, batch) -> tuple[int, list]:
        """Write a batch given as rows ({id: row}) or as ready COPY text (CopyBatch)."""
        copy_batch = batch if isinstance(batch, CopyBatch) else CopyBatch.of(batch)
        conn = self.conn
        refused: list = []
        try:
            with conn.begin():
                cursor = conn.connection.driver_connection.cursor()
                with cursor.copy(self.copy_sql) as copy:
                    copy.write(copy_batch.text)
                written = set(conn.execute(self.upsert_from_stage).scalars())
                lines = copy_batch.lines
                if len(written) != len(lines):
                    # Not written: ids an earlier batch of this run already wrote.
                    c = LegacyAccount.__table__.c
                    earlier = conn.execute(
                        select(c.legacy_user_id, c.source_line).where(
                            c.system_id == self.system_id,
                            c.legacy_user_id.in_([i for i in lines if i not in written]),
                        )
                    ).all()
                    refused = [(lines[legacy_id], legacy_id, "duplicate_id", _duplicate(first_line))
                               for legacy_id, first_line in earlier]
        except self.driver_errors:
            # The generic path: duplicates by query, then executemany, then row by row.
            return super()._write(batch if isinstance(batch, dict) else copy_batch.rows())
        return len(copy_batch.lines) - len(refused), refused


# COPY's text format (PostgreSQL docs, "COPY", File Formats): tab-separated, \N for NULL,
# and these four characters escaped with a backslash.
_COPY_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
_COPY_ESCAPED = re.compile(r"\\(.)")


def _copy_field(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        # str.replace, not str.translate with a table: translate is per character in Python's
        # mapping protocol and was most of the import's time.
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)  # int


@dataclass
class CopyBatch:
    """A batch as COPY text of _COPY_COLUMNS plus {legacy id: source line}: what the reader
    process sends (a string pickles far more cheaply than thousands of dicts)."""

    lines: dict[str, int]
    text: str

    @classmethod
    def of(cls, batch: dict[str, dict]) -> CopyBatch:
        dumps, field_of = json.dumps, _copy_field
        columns = _COPY_COLUMNS[:-1]
        out = []
        for row in batch.values():
            out.append("\t".join([field_of(row[name]) for name in columns]))
            # JSON text holds no raw tab, newline or CR (it escapes them): only \ to double.
            out.append("\t" + dumps(row["raw"], ensure_ascii=False).replace("\\", "\\\\") + "\n")
        return cls({legacy_id: row["source_line"] for legacy_id, row in batch.items()}, "".join(out))

    def rows(self) -> dict[str, dict]:
        """Back to rows, for the row-by-row path after the database refused the batch."""
        def value(text):
            return None if text == "\\N" else _COPY_ESCAPED.sub(lambda m: _COPY_UNESCAPES[m[1]], text)

        rows = {}
        for line in self.text.split("\n")[:-1]:  # not splitlines(): \v, \f... are data here
            row = dict(zip(_COPY_COLUMNS, map(value, line.split("\t")), strict=True))
            row["raw"] = json.loads(row["raw"])
            row["source_line"] = int(row["source_line"])
            if row["birth_date"] is not None:
                row["birth_date"] = date.fromisoformat(row["birth_date"])
            rows[row["legacy_user_id"]] = row
        return rows


def _duplicate(first_line: int):
    return _l("Duplicate legacy id; the first one, at line %(n)d, was imported.", n=first_line)


# --- the import ---------------------------------------------------------------------------------


def guess_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    return "jsonl" if suffix in (".jsonl", ".ndjson") else "csv"


def import_file(
    system: LegacySystem,
    path: str | Path,
    *,
    now: datetime,
    rejects_path: str | Path,
    fmt: str | None = None,
    mapping: Mapping | None = None,
    encoding: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    parallel: bool = True,
) -> ImportResult:
    """Import one export file into system; write every refused record to rejects_path.

    progress, when given, is called with the number of bytes read since its last call.
    parallel: read and clean in a second process (idp.legacy.child_reader); False keeps it all
    in this one.
    """
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise ImportFailed(_l("Unknown format %(f)s (csv or jsonl).", f=fmt))
    mapping = mapping or Mapping()
    encoding = str(encoding or system.encoding or ExportEncoding.UTF8)
    if encoding not in {e.value for e in ExportEncoding}:
        raise ImportFailed(_l("Unknown encoding %(e)s (utf-8 or cp1258).", e=encoding))

    with _one_import_at_a_time(system.id):
        run = LegacyImportRun(
            id=secrets.token_hex(16),
            system_id=system.id,
            file_name=str(path)[-500:],
            file_format=fmt,
            encoding=encoding,
            started_at=now,
        )
        db.session.add(run)
        db.session.commit()
        result = ImportResult(run_id=run.id, rejects_path=str(rejects_path))

        job = _Job(system, run.id, mapping, result, now, parallel)
        try:
            job.run(path, fmt, encoding, rejects_path, batch_size, progress)
        finally:
            # Also after a failure: the run row then says how far it got.
            _finish_run(run.id, result, now)
    return result


# pg_advisory_lock(namespace, system id): "legacy import" in the first key.
_IMPORT_LOCK_NAMESPACE = 0x1E6A_C1


@contextlib.contextmanager
def _one_import_at_a_time(system_id: int):
    """Refuse a second import into the same system while one runs (PostgreSQL: a session
    advisory lock, released by the server even if this process dies). On SQLite, the embedded
    development default, imports are not guarded."""
    if db.engine.dialect.name != "postgresql":
        yield
        return
    conn = db.engine.connect()
    try:
        got = conn.execute(select(func.pg_try_advisory_lock(_IMPORT_LOCK_NAMESPACE, system_id))).scalar()
        conn.commit()
        if not got:
            raise ImportFailed(_l("Another import into this system is running; try again when it has finished."))
        try:
            yield
        finally:
            conn.execute(select(func.pg_advisory_unlock(_IMPORT_LOCK_NAMESPACE, system_id)))
            conn.commit()
    finally:
        conn.close()


class _Job:
    """One import: reads records, cleans them, batches them, reports the refused ones."""

    def __init__(self, system, run_id: str, mapping: Mapping, result: ImportResult, now, parallel: bool):
        self.system_id = system.id
        self.run_id = run_id
        self.mapping = mapping
        self.result = result
        self.now = now
        self.cleaner = _RowCleaner(system, mapping, now.date())
        self.rejects = None
        self.parallel = parallel

    def reject(self, line: int, legacy_id, code: str, message) -> None:
        result = self.result
        result.rejected += 1
        result.reasons[code] = result.reasons.get(code, 0) + 1
        if code == "unreadable_encoding":
            result.encoding_rejects += 1
        self.rejects.writerow([line, legacy_id or "", code, str(message)])

    def run(self, path, fmt, encoding, rejects_path, batch_size, progress) -> None:
        # backslashreplace: an unreadable id shows as escapes in the report, never as mojibake.
        with (
            open(path, "rb") as fh,
            open(rejects_path, "w", encoding="utf-8", errors="backslashreplace", newline="") as out,
        ):
            self.rejects = csv.writer(out)
            self.rejects.writerow(["line", "legacy_id", "code", "reason"])
            lines = _Lines(fh, encoding)
            records = (_csv_records if fmt == "csv" else _jsonl_records)(lines, self.mapping)
            is_json = fmt == "jsonl"
            if self.parallel:
                self._consume_in_child(records, lines, is_json, batch_size, progress)
                return
            writer = self._writer()
            try:
                self._consume(records, lines, writer, is_json, batch_size, progress)
            finally:
                writer.close()

    def _writer(self) -> _Writer:
        cls = _PostgresWriter if db.engine.dialect.name == "postgresql" else _Writer
        return cls(self.system_id, self.run_id, self.reject, self.result, self.now)

    def _consume_in_child(self, records, lines, is_json, batch_size, progress) -> None:
        """Read and clean in a forked child; write here. Same rows, rejects and totals."""
        job = self
        as_copy = db.engine.dialect.name == "postgresql"  # asked here: the child never touches the database

        def produce(send):
            pending: list = []
            read_bytes = [0]

            def reject(line, legacy_id, code, message):
                result = job.result
                result.rejected += 1
                result.reasons[code] = result.reasons.get(code, 0) + 1
                if code == "unreadable_encoding":
                    result.encoding_rejects += 1
                pending.append([line, legacy_id or "", code, str(message)])

            def taken():
                rows, pending[:] = list(pending), []
                done, read_bytes[0] = read_bytes[0], 0
                return rows, done

            class Forward:
                def flush(self, batch):
                    if batch:
                        send(("batch", CopyBatch.of(batch) if as_copy else batch, *taken()))

            job.reject = reject
            job._consume(records, lines, Forward(), is_json, batch_size,
                         lambda n: read_bytes.__setitem__(0, read_bytes[0] + n))
            r = job.result
            send((child_reader.DONE, (r.read, r.rejected, r.encoding_rejects, r.fields_dropped, r.reasons),
                  *taken()))

        result = self.result
        writer = self._writer()  # after the fork: the child inherits no writer thread
        try:
            for message in child_reader.run_in_child(produce, failure=ImportFailed):
                if message[0] == child_reader.FAILED:
                    raise ImportFailed(message[1])
                kind, payload, rejected_rows, read_bytes = message
                self.rejects.writerows(rejected_rows)
                if kind == "batch":
                    writer.flush(payload)
                else:
                    read, rejected, encoding_rejects, dropped, reasons = payload
                    result.read += read
                    result.rejected += rejected
                    result.encoding_rejects += encoding_rejects
                    result.fields_dropped += dropped
                    for code, n in reasons.items():
                        result.reasons[code] = result.reasons.get(code, 0) + n
                if progress is not None and read_bytes:
                    progress(read_bytes)
        finally:
            writer.close()

    def _consume(self, records, lines, writer, is_json, batch_size, progress) -> None:
        result = self.result
        batch: dict[str, dict] = {}
        reported = 0
        for first, last, record in records:
            result.read += 1
            try:
                if isinstance(record, _Reject):
                    raise record
                values, dropped = _checked_row(self.cleaner, lines, first, last, record, is_json)
            except _Reject as exc:
                self.reject(first, _id_hint(record, self.mapping), exc.code, exc.message)
                continue
            finally:
                lines.forget(last)
            result.fields_dropped += dropped
            legacy_id = values["legacy_user_id"]
            if legacy_id in batch:
                first_line = batch[legacy_id]["source_line"]
                self.reject(first, legacy_id, "duplicate_id", _duplicate(first_line))
                continue
            values["source_line"] = first
            batch[legacy_id] = values
            if len(batch) >= batch_size:
                writer.flush(batch)
                batch = {}
                if progress is not None:
                    progress(lines.bytes_read - reported)
                    reported = lines.bytes_read
        writer.flush(batch)
        if progress is not None:
            progress(lines.bytes_read - reported)


def _checked_row(cleaner: _RowCleaner, lines: _Lines, first: int, last: int, record, is_json):
    if lines.bad and lines.touched(lines.bad, first, last):
        raise _Reject("unreadable_encoding", _unreadable())
    if lines.nul and lines.touched(lines.nul, first, last):
        raise _Reject("control_characters", _l("The record contains NUL characters."))
    if lines.fallback_used and lines.touched(lines.fallback_used, first, last):
        # Decoded from the declared legacy encoding: only keep it if it reads as Vietnamese.
        texts = [v for v in record.values() if isinstance(v, str)]
        if not all(reads_as_vietnamese(t) for t in texts):
            raise _Reject("unreadable_encoding", _unreadable())
        record = {k: _nfc(v) if isinstance(v, str) else v for k, v in record.items()}
    return cleaner.clean(record, json_record=is_json)


def _unreadable():
    return _l("The text is neither UTF-8 nor the declared encoding; it was not stored.")


def _id_hint(record, mapping: Mapping) -> str:
    """The record's legacy id for the rejects report, when it has one."""
    if not isinstance(record, dict):
        return ""
    key = mapping.columns["legacy_id"].casefold()
    for k, v in record.items():
        if str(k).casefold() == key and isinstance(v, str | int):
            return str(v).strip()[:128]
    return ""


def _finish_run(run_id: str, result: ImportResult, now: datetime) -> None:
    try:
        db.session.execute(
            update(LegacyImportRun)
            .where(LegacyImportRun.id == run_id)
            .values(
                finished_at=now,
                rows_read=result.read,
                rows_imported=result.imported,
                rows_rejected=result.rejected,
                fields_dropped=result.fields_dropped,
            )
        )
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        raise
