"""Importing legacy exports: nothing lost, nothing garbled, idempotent."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import date

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from idp.extensions import db
from idp.legacy import importer, services
from idp.legacy.models import LegacyAccount, LegacyImportRun, LinkState
from tests.legacy.conftest import HEADER, NOW, csv_bytes


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


def good(n: int, **overrides) -> dict:
    """A valid row: Hà Nội prefix, born 1999, male."""
    row = {
        "legacy_id": f"U{n}",
        "username": f"user{n}",
        "password_hash": _md5(f"pw{n}"),
        "personal_number": f"001099{n:06d}",
        "full_name": "Nguyễn Văn An",
        "birth_date": "1999-05-14",
        "gender": "male",
        "phone": "0912 345 678",
        "email": f"An.Nguyen{n}@Example.VN",
    }
    row.update(overrides)
    return row


def accounts(system) -> dict[str, LegacyAccount]:
    rows = db.session.scalars(select(LegacyAccount).where(LegacyAccount.system_id == system.id))
    return {a.legacy_user_id: a for a in rows}


def count(system) -> int:
    return db.session.scalar(
        select(func.count()).select_from(LegacyAccount).where(LegacyAccount.system_id == system.id)
    )


def test_a_clean_csv_is_imported_and_normalized(system, do_import):
    result, refused = do_import(system, csv_bytes([good(1), good(2, birth_date="14/05/1999")]))
    assert (result.read, result.imported, result.rejected) == (2, 2, 0)
    assert refused == []
    stored = accounts(system)
    one = stored["U1"]
    assert one.personal_number == "001099000001"
    assert one.full_name == "Nguyễn Văn An"
    assert one.birth_date == date(1999, 5, 14)
    assert stored["U2"].birth_date == date(1999, 5, 14)
    assert one.gender == "male"
    assert one.phone == "+84912345678"
    assert one.email == "an.nguyen1@example.vn"
    assert one.username == "user1" and one.username_key == "user1"
    assert one.hash_scheme == "md5_hex"
    assert one.link_state == LinkState.UNLINKED
    assert one.source_line == 2
    # The raw row keeps the record as read, without the secret columns.
    assert one.raw["full_name"] == "Nguyễn Văn An"
    assert one.raw["phone"] == "0912 345 678"
    assert "password_hash" not in one.raw and "salt" not in one.raw
    run = db.session.get(LegacyImportRun, result.run_id)
    assert (run.rows_read, run.rows_imported, run.rows_rejected) == (2, 2, 0)
    assert run.finished_at == NOW


def test_reimport_updates_and_never_duplicates(system, do_import):
    rows = [good(n) for n in range(1, 6)]
    do_import(system, csv_bytes(rows))
    assert count(system) == 5
    result, _ = do_import(system, csv_bytes(rows))
    assert (result.read, result.imported, result.rejected) == (5, 5, 0)
    assert count(system) == 5

    rows[0]["email"] = "moi@example.vn"
    rows[1]["full_name"] = "Nguyễn Văn Ân"
    result, _ = do_import(system, csv_bytes(rows), batch_size=2)
    assert count(system) == 5
    stored = accounts(system)
    assert stored["U1"].email == "moi@example.vn"
    assert stored["U2"].full_name == "Nguyễn Văn Ân"
    assert stored["U1"].imported_at == NOW


def test_reimport_keeps_claims_and_reopens_automatic_decisions_on_changed_data(
    system, do_import
):
    from tests.legacy.test_linking import make_citizen

    identity = make_citizen("001099000001", "Nguyễn Văn An", date(1999, 5, 14))
    rows = [good(1), good(2), good(3), good(4)]
    do_import(system, csv_bytes(rows))
    stored = accounts(system)
    services.link(stored["U1"], identity.id, by="auto", now=NOW, state="auto_linked")
    services.link(stored["U2"], identity.id, by="claim", now=NOW, state="claimed")
    services.link(stored["U3"], identity.id, by="auto", now=NOW, state="conflict", reason="x")
    services.link(stored["U4"], identity.id, by="auto", now=NOW, state="auto_linked")
    db.session.commit()

    for row in rows[:3]:
        row["full_name"] = "Trần Thị Bình"
    rows[3]["email"] = "other@example.vn"  # not a matching field: the link stays
    do_import(system, csv_bytes(rows))
    stored = accounts(system)
    assert stored["U1"].link_state == LinkState.UNLINKED and stored["U1"].identity_id is None
    assert stored["U2"].link_state == LinkState.CLAIMED and stored["U2"].identity_id == identity.id
    assert stored["U3"].link_state == LinkState.UNLINKED
    assert stored["U3"].candidate_identity_id is None and stored["U3"].conflict_reason is None
    assert stored["U4"].link_state == LinkState.AUTO_LINKED


BAD_ROWS = [
    (good(10, legacy_id=""), "missing_id"),
    (good(11, personal_number="00109901234"), "invalid_personal_number"),
    (good(12, personal_number="999099000012"), "invalid_personal_number"),
    (good(13, gender="female"), "invalid_personal_number"),  # G digit says male
    (good(14, birth_date="2001-01-01"), "invalid_personal_number"),  # number says 1999
    (good(15, tax_code="0100233489"), "invalid_tax_code"),  # wrong check digit
    (good(16, id_number="12345"), "invalid_id_number"),
    (good(17, birth_date="31/02/1999"), "invalid_birth_date"),
    (good(18, gender="x"), "invalid_gender"),
    (good(19, full_name="Nguyễn Văn 4n"), "invalid_name"),
    (good(20, hash_scheme="rot13"), "unknown_hash_scheme"),
    (good(21, password_hash="zz"), "invalid_hash"),
    (good(22, hash_scheme="salted_sha256", password_hash="a" * 64), "missing_salt"),
    (good(23, legacy_id="x" * 200), "too_long"),
]


def test_every_bad_row_is_reported_and_no_good_row_is_lost(system, do_import):
    goods = [good(n) for n in range(1, 8)]
    rows = []
    for i, (bad, _) in enumerate(BAD_ROWS):
        rows.append(goods[i % len(goods)] if i < len(goods) else good(100 + i))
        rows.append(bad)
    rows.append(good(1, email="dup@example.vn"))  # duplicate id within the file
    with force_locale("en"):  # the reasons are read below in English
        result, refused = do_import(system, csv_bytes(rows), batch_size=3)

    assert result.read == len(rows)
    assert result.read == result.imported + result.rejected
    assert result.imported == count(system)
    expected = sorted([code for _, code in BAD_ROWS] + ["duplicate_id"])
    assert sorted(r["code"] for r in refused) == expected
    by_code = {r["code"]: r for r in refused}
    assert by_code["missing_id"]["legacy_id"] == ""
    assert by_code["invalid_tax_code"]["legacy_id"] == "U15"
    assert all(r["reason"] for r in refused)
    # Line numbers point at the file (header is line 1).
    assert by_code["invalid_personal_number"]["line"] in {"5", "7", "9", "11"}
    duplicate = by_code["duplicate_id"]
    assert duplicate["line"] == str(len(rows) + 1) and duplicate["legacy_id"] == "U1"
    assert "line 2" in duplicate["reason"]
    # The first occurrence wins.
    assert accounts(system)["U1"].email == "an.nguyen1@example.vn"


def test_duplicate_within_one_batch(system, do_import):
    rows = [good(1), good(1, email="second@example.vn")]
    result, refused = do_import(system, csv_bytes(rows))
    assert (result.imported, result.rejected) == (1, 1)
    assert refused[0]["code"] == "duplicate_id" and refused[0]["line"] == "3"


def test_wrong_column_count_and_nul_bytes(system, do_import):
    content = csv_bytes([good(1), good(2), good(3)])
    lines = content.split(b"\n")
    lines[2] = lines[2] + b",extra"
    lines[3] = lines[3].replace(b"user3", b"us\x00er3")
    result, refused = do_import(system, b"\n".join(lines))
    assert (result.read, result.imported, result.rejected) == (3, 1, 2)
    assert {(r["line"], r["code"]) for r in refused} == {
        ("3", "wrong_column_count"),
        ("4", "control_characters"),
    }


def test_quoted_newlines_keep_line_numbers(system, do_import):
    content = csv_bytes([good(1, username="a\nb"), good(2, legacy_id="")])
    result, refused = do_import(system, content)
    assert result.imported == 1
    assert accounts(system)["U1"].username == "a\nb"
    assert refused[0]["line"] == "4"


def test_a_utf8_bom_is_ignored(system, do_import):
    result, _ = do_import(system, b"\xef\xbb\xbf" + csv_bytes([good(1)]))
    assert result.imported == 1


def test_missing_id_column_fails_the_whole_file(system, do_import):
    header = tuple(h for h in HEADER if h != "legacy_id")
    with pytest.raises(importer.ImportFailed):
        do_import(system, csv_bytes([good(1)], header=header))


def test_bad_phone_or_email_is_dropped_not_the_account(system, do_import):
    result, refused = do_import(system, csv_bytes([good(1, phone="12", email="not-an-address")]))
    assert (result.imported, result.rejected, result.fields_dropped) == (1, 0, 2)
    one = accounts(system)["U1"]
    assert one.phone is None and one.email is None
    assert one.raw["phone"] == "12" and one.raw["email"] == "not-an-address"


# --- Vietnamese text ----------------------------------------------------------------------------


def test_nfd_input_is_stored_as_nfc(system, do_import):
    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Thuỷ")
    result, _ = do_import(system, csv_bytes([good(1, full_name=nfd, username=nfd)]))
    assert result.imported == 1
    one = accounts(system)["U1"]
    assert one.full_name == "Nguyễn Thị Thuỷ"
    assert unicodedata.is_normalized("NFC", one.full_name)
    assert one.username == unicodedata.normalize("NFC", nfd)


TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"


def _cp1258(text: str) -> bytes:
    """Windows-1258 as Vietnamese software wrote it: the letter, then its tone mark."""
    out = b""
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            tone = "".join(p for p in parts if p in TONE_MARKS)
            letter = unicodedata.normalize("NFC", "".join(p for p in parts if p not in TONE_MARKS))
            out += (letter + tone).encode("cp1258")
    return out


NAMES = ["Nguyễn Thị Thuỷ", "Đặng Văn Đức", "Huỳnh Ngọc Ánh", "Trương Thị Mỹ Lệ"]


def test_windows_1258_input_is_converted_to_nfc(system, do_import):
    services.update_system(system, now=NOW, encoding="cp1258")
    db.session.commit()
    text = csv_bytes([good(i + 1, full_name=name) for i, name in enumerate(NAMES)]).decode()
    content = _cp1258(text)
    assert unicodedata.normalize("NFC", content.decode("cp1258")) == text
    assert content.decode("cp1258") != text  # really base letters plus tone marks
    result, refused = do_import(system, content)
    assert (result.imported, result.rejected) == (len(NAMES), 0), refused
    stored = accounts(system)
    for i, name in enumerate(NAMES):
        assert stored[f"U{i + 1}"].full_name == name
        assert stored[f"U{i + 1}"].raw["full_name"] == name


def test_encoding_option_overrides_the_system(system, do_import):
    content = _cp1258(csv_bytes([good(1, full_name="Đặng Thị Thuỷ")]).decode())
    result, refused = do_import(system, content, encoding="cp1258")
    assert result.imported == 1, refused
    assert accounts(system)["U1"].full_name == "Đặng Thị Thuỷ"


def test_non_utf8_file_in_a_utf8_system_is_reported_not_stored(system, do_import):
    content = _cp1258(csv_bytes([good(1, full_name="Đặng Thị Thuỷ"), good(2)]).decode())
    result, refused = do_import(system, content)
    # Row 2 is pure ASCII apart from its name, which is also not UTF-8 here.
    assert result.imported == 0
    assert {r["code"] for r in refused} == {"unreadable_encoding"}
    assert result.rejected == result.read == 2
    assert count(system) == 0


# TCVN3 (ABC) and VNI bytes for "Nguyễn Văn Đức": both decode as Windows-1258 without error,
# into text that is not Vietnamese.
TCVN3_NAME = b"Nguy\xd4n V\xa8n \xa7\xf8c"
VNI_NAME = b"Nguye\xe3n Va\xean \xd1\xf6\xf9c"
VNI_PLAIN = b"Nguye\xe3n Va\xean An"  # only letters Windows-1258 also has


@pytest.mark.parametrize("name_bytes", [TCVN3_NAME, VNI_NAME, VNI_PLAIN])
def test_other_legacy_encodings_are_reported_not_stored(system, do_import, name_bytes):
    services.update_system(system, now=NOW, encoding="cp1258")
    db.session.commit()
    content = csv_bytes([good(1, full_name="PLACEHOLDER"), good(2)]).replace(
        b"PLACEHOLDER", name_bytes
    )
    result, refused = do_import(system, content)
    assert result.imported == 1
    assert [(r["legacy_id"], r["code"]) for r in refused] == [("U1", "unreadable_encoding")]
    assert set(accounts(system)) == {"U2"}


def test_reads_as_vietnamese():
    assert importer.reads_as_vietnamese("Nguyễn Thị Thuỷ")
    assert importer.reads_as_vietnamese(unicodedata.normalize("NFD", "Người Quảng Huế"))
    assert importer.reads_as_vietnamese("user@example.vn")
    assert not importer.reads_as_vietnamese("Nguyeăn")
    assert not importer.reads_as_vietnamese("NguyÔn")
    assert not importer.reads_as_vietnamese("Ñöùc")
    assert not importer.reads_as_vietnamese("Tra\u0300\u0301n")


# --- JSON Lines and mapping ---------------------------------------------------------------------


def test_jsonl_with_malformed_lines(system, do_import):
    lines = [
        json.dumps(good(1), ensure_ascii=False),
        "{not json",
        "[1, 2]",
        "",
        json.dumps({**good(2), "legacy_id": 2, "extra": {"nested": True}}, ensure_ascii=False),
        json.dumps(good(3, full_name=unicodedata.normalize("NFD", "Lê Thị Hoà"))),
    ]
    content = ("\n".join(lines) + "\n").encode()
    result, refused = do_import(system, content, name="export.jsonl")
    assert (result.read, result.imported, result.rejected) == (5, 3, 2)
    assert [(r["line"], r["code"]) for r in refused] == [("2", "malformed_json"), ("3", "malformed_json")]
    stored = accounts(system)
    assert set(stored) == {"U1", "2", "U3"}
    assert stored["2"].raw["extra"] == {"nested": True}
    assert stored["U3"].full_name == "Lê Thị Hoà"


def test_jsonl_invalid_utf8_line(system, do_import):
    content = (json.dumps(good(1)) + "\n").encode() + b'{"legacy_id": "U2", "full_name": "\xc4\x90\xe3ng"}\n'
    result, refused = do_import(system, content, fmt="jsonl")
    assert (result.imported, result.rejected) == (1, 1)
    assert refused[0]["code"] == "unreadable_encoding"


def test_mapping_file_renames_columns_and_values(system, do_import, tmp_path):
    mapping_path = tmp_path / "mapping.json"
    mapping_path.write_text(
        json.dumps(
            {
                "columns": {
                    "legacy_id": "MaNguoiDung",
                    "username": "TenDangNhap",
                    "password_hash": "MatKhau",
                    "full_name": "HoTen",
                    "personal_number": "SoDinhDanh",
                    "birth_date": "NgaySinh",
                    "gender": "GioiTinh",
                },
                "values": {"gender": {"1": "male", "0": "female"}},
                "birth_date_format": "%Y%m%d",
            }
        )
    )
    header = ("MaNguoiDung", "TenDangNhap", "MatKhau", "HoTen", "SoDinhDanh", "NgaySinh", "GioiTinh")
    rows = [
        {"MaNguoiDung": "7", "TenDangNhap": "An.Nguyen", "MatKhau": _md5("x"),
         "HoTen": "Nguyễn Văn An", "SoDinhDanh": "001099000007", "NgaySinh": "19990514",
         "GioiTinh": "1"},
        {"MaNguoiDung": "8", "TenDangNhap": "b", "MatKhau": _md5("y"), "HoTen": "Trần Thị Bình",
         "SoDinhDanh": "079185000123", "NgaySinh": "19850302", "GioiTinh": "0"},
    ]
    mapping = services.load_mapping(mapping_path)
    result, refused = do_import(system, csv_bytes(rows, header=header), mapping=mapping)
    assert (result.imported, result.rejected) == (2, 0), refused
    stored = accounts(system)
    assert stored["7"].username == "An.Nguyen" and stored["7"].username_key == "an.nguyen"
    assert stored["7"].gender == "male" and stored["8"].gender == "female"
    assert stored["8"].birth_date == date(1985, 3, 2)
    assert stored["7"].password_hash == _md5("x")
    assert "MatKhau" not in stored["7"].raw


def test_mapping_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"columns": {"nonsense": "x"}}')
    with pytest.raises(importer.ImportFailed):
        services.load_mapping(bad)
    bad.write_text("not json")
    with pytest.raises(importer.ImportFailed):
        services.load_mapping(bad)


# --- command line -------------------------------------------------------------------------------


def test_cli_import_prints_totals_and_writes_rejects(app, system, tmp_path):
    export = tmp_path / "export.csv"
    export.write_bytes(csv_bytes([good(1), good(2, personal_number="1")]))
    rejects_path = tmp_path / "rej.csv"
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["legacy", "import", "portal", str(export), "--rejects", str(rejects_path)]
    )
    assert result.exit_code == 0, result.output
    assert "read: 2" in result.output
    assert "imported: 1" in result.output
    assert "rejected: 1" in result.output
    assert "invalid_personal_number: 1" in result.output
    assert "invalid_personal_number" in rejects_path.read_text()
    again = runner.invoke(args=["legacy", "import", "portal", str(export), "--format", "csv"])
    assert again.exit_code == 0 and "imported: 1" in again.output
    assert (tmp_path / "export.csv.rejects.csv").exists()


def test_cli_import_unknown_system(app, tmp_path):
    export = tmp_path / "export.csv"
    export.write_bytes(csv_bytes([good(1)]))
    result = app.test_cli_runner().invoke(args=["legacy", "import", "nowhere", str(export)])
    assert result.exit_code != 0


def test_cli_add_system_and_list(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["legacy", "add-system", "mot-cua", "--name", "Một cửa", "--agency", "TTPVHCC",
              "--hash-scheme", "salted_sha256", "--salt-position", "after", "--encoding", "cp1258"]
    )
    assert result.exit_code == 0, result.output
    missing = runner.invoke(
        args=["legacy", "add-system", "other", "--name", "X", "--agency", "Y",
              "--hash-scheme", "salted_sha256"]
    )
    assert missing.exit_code != 0 and "salt" in missing.output.lower()
    listed = runner.invoke(args=["legacy", "systems"])
    assert "mot-cua" in listed.output and "cp1258" in listed.output


def test_a_row_the_database_refuses_is_reported_and_the_batch_kept(system, do_import):
    # A trigger stands in for any refusal the validation could not foresee.
    dialect = db.engine.dialect.name
    if dialect == "sqlite":
        create = [
            "CREATE TRIGGER legacy_test_refuse BEFORE INSERT ON legacy_accounts "
            "WHEN NEW.legacy_user_id = 'U2' BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        ]
        drop = ["DROP TRIGGER legacy_test_refuse"]
    else:
        create = [
            "CREATE FUNCTION legacy_test_refuse() RETURNS trigger AS $$ BEGIN "
            "IF NEW.legacy_user_id = 'U2' THEN RAISE EXCEPTION 'refused by test'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER legacy_test_refuse BEFORE INSERT ON legacy_accounts "
            "FOR EACH ROW EXECUTE FUNCTION legacy_test_refuse()",
        ]
        drop = ["DROP TRIGGER legacy_test_refuse ON legacy_accounts",
                "DROP FUNCTION legacy_test_refuse()"]
    with db.engine.begin() as conn:
        for statement in create:
            conn.exec_driver_sql(statement)
    try:
        result, refused = do_import(system, csv_bytes([good(n) for n in range(1, 6)]), batch_size=3)
    finally:
        with db.engine.begin() as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)
    assert (result.read, result.imported, result.rejected) == (5, 4, 1)
    assert [(r["legacy_id"], r["code"]) for r in refused] == [("U2", "database_refused")]
    assert "refused by test" in refused[0]["reason"]  # the database's own words
    assert set(accounts(system)) == {"U1", "U3", "U4", "U5"}


def test_name_shortcut_agrees_with_normalize_name():
    import sys
    from pathlib import Path

    from idp.errors import ValidationError
    from idp.identity import names

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import legacy_gen

    samples = [p.full_name for p in legacy_gen.people(2000, seed=7)]
    samples += [unicodedata.normalize("NFD", s) for s in samples[:200]]
    samples += [s.upper() for s in samples[:200]] + [s.lower() for s in samples[:200]]
    samples += [
        " Nguyễn  Văn An ", "Nguyễn\tVăn", "H'Hen Niê", "Nguyễn Văn An Jr.", "Y-Moan",
        "Nguyễn Văn 4n", "", "   ", "a" * 201, "Ñoño", "Trần\u0300", "Lê\u2019Thị",
    ]
    for sample in samples:
        try:
            expected = names.normalize_name(sample)
        except ValidationError:
            with pytest.raises(ValidationError):
                importer._normalize_name(sample)
        else:
            assert importer._normalize_name(sample) == expected, sample


def test_a_second_import_into_one_system_is_refused_while_the_first_runs(system, do_import):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("imports are guarded by a PostgreSQL advisory lock; the embedded SQLite default is not")
    other = services.create_system(slug="other", name="Hệ thống khác", agency="UBND", hash_scheme="md5_hex", now=NOW)
    db.session.commit()
    holder = db.engine.connect()  # stands for an import running in another process
    try:
        holder.execute(select(func.pg_advisory_lock(importer._IMPORT_LOCK_NAMESPACE, system.id)))
        holder.commit()
        with force_locale("en"), pytest.raises(importer.ImportFailed, match="Another import into this system"):
            do_import(system, csv_bytes([good(1)]))
        assert count(system) == 0
        result, _ = do_import(other, csv_bytes([good(1)]))  # another system is not held up
        assert result.imported == 1
    finally:
        holder.execute(select(func.pg_advisory_unlock(importer._IMPORT_LOCK_NAMESPACE, system.id)))
        holder.close()
    result, _ = do_import(system, csv_bytes([good(1)]))
    assert result.imported == 1
