"""Helpers for the legacy tests: a registered system, export files in tmp_path, an import."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from idp.extensions import db
from idp.legacy import importer, services

NOW = datetime(2026, 11, 28, 9, 0, 0)

HEADER = (
    "legacy_id", "username", "password_hash", "hash_scheme", "salt", "personal_number",
    "id_number", "tax_code", "full_name", "birth_date", "gender", "phone", "email",
)


def csv_bytes(rows: list[dict], header=HEADER, encoding="utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(h, "") for h in header])
    return out.getvalue().encode(encoding)


def rejects(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def system(app_ctx):
    system = services.create_system(
        slug="portal",
        name="Cổng dịch vụ công tỉnh",
        agency="Văn phòng UBND tỉnh",
        hash_scheme="md5_hex",
        now=NOW,
    )
    db.session.commit()
    return system


@pytest.fixture
def do_import(tmp_path):
    """do_import(system, content_bytes, name="export.csv", **options) -> (result, rejects)."""
    counter = iter(range(1000))

    def run(system, content: bytes, name: str = "export.csv", **options):
        n = next(counter)
        path = tmp_path / f"{n}-{name}"
        path.write_bytes(content)
        rejects_path = tmp_path / f"{n}-rejects.csv"
        options.setdefault("now", NOW)
        result = importer.import_file(system, path, rejects_path=rejects_path, **options)
        db.session.expire_all()
        return result, rejects(rejects_path)

    return run
