"""Reading in a second process: the same rows, rejects and totals as reading in one."""

from __future__ import annotations

import multiprocessing
import os
from datetime import date

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.legacy import child_reader, importer, services
from idp.legacy.models import LegacyAccount
from tests.legacy.conftest import NOW, csv_bytes, rejects
from tests.legacy.test_import import BAD_ROWS, good


def _rows_of(system) -> list[tuple]:
    accounts = db.session.scalars(
        select(LegacyAccount).where(LegacyAccount.system_id == system.id).order_by(LegacyAccount.legacy_user_id)
    )
    return [(a.legacy_user_id, a.personal_number, a.full_name, a.birth_date, a.phone, a.email, a.raw,
             a.source_line, a.password_hash) for a in accounts]


def test_parallel_and_serial_imports_agree(app_ctx, tmp_path):
    rows = [good(n) for n in range(1, 40)]
    rows[5:5] = [bad for bad, _ in BAD_ROWS]
    rows.append(good(3, email="later@example.vn"))  # duplicate of a row some batches earlier
    rows.append(good(41, full_name="Trần Thị Hoà"))
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes(rows))
    outcome = {}
    for parallel in (False, True):
        system = services.create_system(slug=f"s{int(parallel)}", name="Hệ thống", agency="UBND",
                                        hash_scheme="md5_hex", now=NOW)
        db.session.commit()
        refused_path = tmp_path / f"rejects-{parallel}.csv"
        progressed = []
        result = importer.import_file(system, path, now=NOW, rejects_path=refused_path, batch_size=4,
                                      parallel=parallel, progress=progressed.append)
        db.session.expire_all()
        outcome[parallel] = (
            (result.read, result.imported, result.rejected, result.fields_dropped, result.reasons),
            sorted(tuple(r.values()) for r in rejects(refused_path)),
            _rows_of(system),
            sum(progressed),
        )
    serial, parallel = outcome[False], outcome[True]
    assert serial[0][0] == len(rows) and serial[0][2] == len(BAD_ROWS) + 1
    assert parallel == serial
    assert parallel[3] == path.stat().st_size  # the progress bar reaches the end


def test_a_file_level_failure_in_the_reader_is_the_import_failure(app_ctx, system, tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b"id_wrong,username\n1,a\n")
    with pytest.raises(importer.ImportFailed) as failure:
        importer.import_file(system, path, now=NOW, rejects_path=tmp_path / "r.csv")
    assert "legacy_id" in str(failure.value)


def test_a_reader_that_crashes_or_dies_is_reported_not_waited_for():
    def crash(send):
        send(("batch", 1))
        raise ValueError("boom in the reader")

    received = []
    with pytest.raises(child_reader.ReaderCrashed, match="boom in the reader"):
        for message in child_reader.run_in_child(crash):
            received.append(message)
    assert received == [("batch", 1)]

    def die(send):
        os._exit(3)

    with pytest.raises(child_reader.ReaderCrashed, match=r"exited \(3\)"):
        list(child_reader.run_in_child(die))


def test_the_reader_stops_when_the_writer_fails():
    def endless(send):
        while True:
            send(("batch", "x" * 1000))

    stream = child_reader.run_in_child(endless, depth=1)
    assert next(stream)[0] == "batch"
    stream.close()  # the parent gave up: the child is terminated, not left blocked on the queue
    assert not [p for p in multiprocessing.active_children() if p.name == "legacy-import-reader"]


NASTY = ["a\tb", "line\nbreak", "cr\rhere", "back\\slash", "\\N", "\\", "v\x0bf\x0cg", "sep\u2028x", "Nguyễn"]


def test_copy_text_round_trips_every_awkward_character():
    batch = {}
    for i, text in enumerate(NASTY):
        row = {name: None for name in importer._ROW_COLUMNS}
        row.update(legacy_user_id=f"id{i}{text}", username=text, full_name=text, source_line=i + 2,
                   birth_date=date(1999, 5, 14) if i % 2 else None, raw={"x": text, "n": None})
        batch[row["legacy_user_id"]] = row
    copy = importer.CopyBatch.of(batch)
    assert copy.lines == {k: v["source_line"] for k, v in batch.items()}
    assert copy.rows() == batch


def test_awkward_characters_are_stored_as_read(app_ctx, system, tmp_path):
    # (A bare CR is left out: the test's CSV writer would not quote it.)
    texts = [t for t in NASTY if "\r" not in t]
    rows = [good(n, username=f"u{n}{text}", full_name="Nguyễn Văn An") for n, text in enumerate(texts, 1)]
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes(rows))
    result = importer.import_file(system, path, now=NOW, rejects_path=tmp_path / "r.csv")
    assert (result.imported, result.rejected) == (len(texts), 0)
    db.session.expire_all()
    stored = {a.legacy_user_id: a for a in db.session.scalars(select(LegacyAccount))}
    for n, text in enumerate(texts, 1):
        assert stored[f"U{n}"].username == f"u{n}{text}"
        assert stored[f"U{n}"].raw["username"] == f"u{n}{text}"
