"""Bulk import of businesses from a registry extract (CSV with a header, or JSON Lines).

The same discipline as the legacy import (idp/legacy/importer.py, whose readers are bound to
the legacy columns): every record is either imported or written to the rejects report with a
code and a reason, and the totals say so (read == imported + rejected). Records are committed
one by one, so a failure half-way keeps what was done and the report says where it stopped.

Columns (JSON keys): tax_code, name, legal_form, address (optional), status (optional,
default active), legal_representative (optional: the personal number of a verified citizen).
A branch's parent must be registered before it: list parents first.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flask_babel import lazy_gettext as _l

from idp import audit
from idp.business import representation, services
from idp.business.models import RepresentationRole
from idp.errors import Conflict, DomainError, InvalidFields, ValidationError
from idp.extensions import db
from idp.identity import services as identity_services
from idp.identity import validators
from idp.identity.models import IdentifierType

FORMATS = ("csv", "jsonl")
COLUMNS = ("tax_code", "name", "legal_form", "address", "status", "legal_representative")
REQUIRED = ("tax_code", "name", "legal_form")


class ImportFailed(DomainError):
    """The file as a whole cannot be imported (unreadable, no header, a missing column)."""

    code = "import_failed"


@dataclass
class ImportResult:
    read: int = 0
    imported: int = 0
    rejected: int = 0
    rejects_path: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)


class _Reject(Exception):  # noqa: N818 (a control-flow signal)
    def __init__(self, code: str, message):
        super().__init__(code)
        self.code = code
        self.message = message


def guess_format(path) -> str:
    return "jsonl" if Path(path).suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"


def _csv_records(fh):
    reader = csv.reader(fh)
    try:
        header = [h.strip().casefold() for h in next(reader)]
    except StopIteration:
        return
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ImportFailed(_l("The CSV header cannot be read: %(e)s", e=str(exc))) from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImportFailed(_l("The file has no column %(c)s.", c=", ".join(missing)))
    previous = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            yield previous + 1, _Reject("unreadable_encoding", _l("The line is not valid UTF-8."))
            return  # the decoder cannot resynchronize: the rest is reported as not read
        except csv.Error as exc:
            first, previous = previous + 1, reader.line_num
            yield first, _Reject("malformed_csv", _l("Malformed CSV: %(e)s", e=str(exc)))
            continue
        first, previous = previous + 1, reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            yield first, _Reject("wrong_column_count", _l(
                "Wrong number of columns: %(got)d instead of %(expected)d.",
                got=len(row), expected=len(header)))
            continue
        yield first, dict(zip(header, row, strict=True))


def _jsonl_records(fh):
    number = 0
    while True:
        try:
            text = fh.readline()
        except UnicodeDecodeError:
            yield number + 1, _Reject("unreadable_encoding", _l("The line is not valid UTF-8."))
            return
        if not text:
            return
        number += 1
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            yield number, _Reject("malformed_json", _l("Malformed JSON: %(e)s", e=str(exc)))
            continue
        if not isinstance(record, dict):
            yield number, _Reject("malformed_json", _l("The line is not a JSON object."))
            continue
        yield number, {str(k).casefold(): v for k, v in record.items()}


def _value(record: dict, name: str):
    value = record.get(name)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def import_file(path, *, now: datetime, by: str, rejects_path, fmt: str | None = None,
                source: str = "import") -> ImportResult:
    """Import one file; write every refused record to rejects_path (CSV: line, tax_code, code,
    reason). Each business and each legal representative is audited; one `business.imported`
    entry sums the run up."""
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise ImportFailed(_l("Unknown format %(f)s (csv or jsonl).", f=fmt))
    result = ImportResult(rejects_path=str(rejects_path))
    with (
        open(path, encoding="utf-8-sig", newline="") as fh,
        open(rejects_path, "w", encoding="utf-8", errors="backslashreplace", newline="") as out,
    ):
        rejects = csv.writer(out)
        rejects.writerow(["line", "tax_code", "code", "reason"])
        records = _csv_records(fh) if fmt == "csv" else _jsonl_records(fh)
        for line, record in records:
            result.read += 1
            hint = _value(record, "tax_code") if isinstance(record, dict) else ""
            try:
                if isinstance(record, _Reject):
                    raise record
                _import_one(record, now=now, by=by, source=source)
                result.imported += 1
            except _Reject as exc:
                db.session.rollback()
                result.rejected += 1
                result.reasons[exc.code] = result.reasons.get(exc.code, 0) + 1
                rejects.writerow([line, (hint or "")[:32], exc.code, str(exc.message)])
    audit.record("business.imported", actor=by, target_type="business", now=now,
                 details={"file": Path(path).name[:100], "read": result.read,
                          "imported": result.imported, "rejected": result.rejected})
    db.session.commit()
    return result


def _reject_code(exc: InvalidFields, raw_code, now: datetime) -> str:
    field_name = next(iter(exc.errors))
    if field_name == "tax_code":
        try:
            code = validators.tax_code(raw_code or "", today=now.date())
        except ValidationError:
            return "invalid_tax_code"
        if validators.tax_code_parent(code):
            return "parent_missing"  # a valid branch code: what failed is its parent
    return f"invalid_{field_name}"


def _import_one(record: dict, *, now: datetime, by: str, source: str) -> None:
    try:
        values = services.validate_fields(
            tax_code=_value(record, "tax_code"), name=_value(record, "name"),
            legal_form_value=_value(record, "legal_form"), address=_value(record, "address"),
            status=_value(record, "status") or "active", now=now)
    except InvalidFields as exc:
        # One code per record: the first bad field names it ("invalid_tax_code").
        reasons = "; ".join(f"{f}: {m}" for f, m in exc.errors.items())
        raise _Reject(_reject_code(exc, _value(record, "tax_code"), now), reasons) from None
    person_number = (_value(record, "legal_representative") or "").strip()
    try:
        identity = services.build_business(values, now=now, by=by, source=source)
        if person_number:
            person = identity_services.identity_by_identifier(
                IdentifierType.PERSONAL_NUMBER, person_number.replace(" ", ""))
            if person is None:
                raise _Reject("unknown_representative", _l(
                    "No citizen account has the legal representative's personal number."))
            representation.add(business=identity, representative_id=person.id,
                               role=RepresentationRole.LEGAL_REPRESENTATIVE, now=now, by=by,
                               reason="imported with the business")
        services._created_entry(identity, values, by=by, source=source, now=now)
        db.session.commit()
    except Conflict:
        raise _Reject("exists", _l("A business with this tax code is already registered.")) from None
    except DomainError as exc:
        raise _Reject(f"invalid_{exc.field or 'record'}", exc.message) from None
