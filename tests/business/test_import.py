"""`flask business import`: every record imported or reported with its reason."""

from __future__ import annotations

import csv
import json

from idp.business import representation, services
from idp.timeutil import utcnow
from tests.business.conftest import AGENT, LEGAL, audit_actions, make_person

CSV = """tax_code,name,legal_form,address,status,legal_representative
0100233488,CÔNG TY CỔ PHẦN HÀ NỘI,joint_stock,Hà Nội,,001099012345
0100233488-001,CHI NHÁNH HẢI PHÒNG,branch,,active,
0100233489,CÔNG TY SAI SỐ,joint_stock,,,
0100233488-000,CHI NHÁNH KHÔNG HỢP LỆ,branch,,,
0314409058-002,CHI NHÁNH MỒ CÔI,branch,,,
0100233488,CÔNG TY TRÙNG,joint_stock,,,
0100112437,CÔNG TY GIẢI THỂ,llc_single_member,,dissolved,
0314409058,CÔNG TY ĐẠI DIỆN CẤP 1,joint_stock,,,079185000123
0314409058,thiếu cột
"""


def test_csv_import_with_rejects_report(app, tmp_path):
    legal = make_person(app, LEGAL, level=2)
    make_person(app, AGENT)  # level 1: cannot be a legal representative
    source = tmp_path / "dn.csv"
    source.write_text(CSV, encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    result = app.test_cli_runner().invoke(
        args=["business", "import", str(source), "--rejects", str(rejects)])
    assert result.exit_code == 0, result.output
    assert "read 9, imported 3, rejected 6" in result.output
    rows = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert {(r["line"], r["code"]) for r in rows} == {
        ("4", "invalid_tax_code"), ("5", "invalid_tax_code"), ("6", "parent_missing"),
        ("7", "exists"), ("9", "invalid_representative"), ("10", "wrong_column_count"),
    }
    by_line = {r["line"]: r for r in rows}
    assert by_line["5"]["tax_code"] == "0100233488-000"
    assert "tax_code" in by_line["5"]["reason"]
    with app.app_context():
        parent = services.business_by_tax_code("0100233488")
        assert representation.is_legal_representative(legal, parent.id, now=utcnow())
        branch = services.business_by_tax_code("0100233488-001")
        assert services.get_business(branch.id)[1].parent_identity_id == parent.id
        dissolved = services.get_business(services.business_by_tax_code("0100112437").id)[1]
        assert dissolved.business_status.value == "dissolved"
        assert dissolved.verification["name"]["source"] == "import"
        assert services.business_by_tax_code("0314409058") is None  # its row was refused whole
    imported = [a for a in audit_actions(app) if a[0] == "business.imported"]
    assert imported[0][2] == {"file": "dn.csv", "read": 9, "imported": 3, "rejected": 6}


def test_jsonl_import(app, tmp_path):
    source = tmp_path / "dn.jsonl"
    lines = [
        json.dumps({"tax_code": "0100233488", "name": "CÔNG TY A", "legal_form": "joint_stock"}),
        "{not json",
        json.dumps({"tax_code": 100233488, "name": "CÔNG TY B", "legal_form": "joint_stock"}),
        json.dumps(["a list"]),
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "r.csv"
    with app.app_context():
        from idp.business import importer

        result = importer.import_file(source, now=utcnow(), by="cli:test", rejects_path=rejects)
    assert (result.read, result.imported, result.rejected) == (4, 1, 3)
    assert result.reasons == {"malformed_json": 2, "invalid_tax_code": 1}
