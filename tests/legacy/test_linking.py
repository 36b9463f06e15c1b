"""Automatic linking: a number decides, name and birth date corroborate, nothing else links."""

from __future__ import annotations

import unicodedata
from datetime import date

from sqlalchemy import select

from idp.extensions import db
from idp.identity import services as identity_services
from idp.identity.models import Identifier, IdentifierType
from idp.legacy import linking, services
from idp.legacy.models import LegacyAccount, LinkState
from tests.legacy.conftest import NOW, csv_bytes


def make_citizen(number, name, birth, *, gender="male", phone=None, email=None, cmnd=None):
    identity = identity_services.create_citizen(
        personal_number=number, full_name=name, birth_date=birth, gender=gender,
        phone=phone, email=email, now=NOW,
    )
    if cmnd:
        identity.identifiers.append(
            Identifier(type=IdentifierType.LEGACY_ID_NUMBER, value=cmnd, is_primary=False,
                       valid_from=NOW)
        )
    db.session.commit()
    return identity


def row(legacy_id, **fields):
    return {"legacy_id": legacy_id, "username": legacy_id, **fields}


def states(system) -> dict[str, LegacyAccount]:
    db.session.expire_all()
    rows = db.session.scalars(select(LegacyAccount).where(LegacyAccount.system_id == system.id))
    return {a.legacy_user_id: a for a in rows}


def test_links_on_number_with_agreeing_name_and_birth_date(system, do_import):
    an = make_citizen("001099012345", "Nguyễn Văn Hoà", date(1999, 5, 14), cmnd="123456789")
    binh = make_citizen("079185000123", "Trần Thị Bình", date(1985, 3, 2), gender="female",
                        phone="0987654321", email="binh@example.vn")
    rows = [
        # Old tone placement, NFD, other case: the same name.
        row("match", personal_number="001099012345",
            full_name=unicodedata.normalize("NFD", "NGUYỄN VĂN HÒA"), birth_date="14/05/1999"),
        row("no-name", personal_number="079185000123"),  # nothing to disagree with
        row("name-differs", personal_number="001099012345", full_name="Nguyễn Văn Hà"),
        row("date-differs", personal_number="079185000123", birth_date="1985-03-03"),
        row("both-differ", personal_number="079185000123", full_name="Trần Thị Bích",
            birth_date="1985-03-03"),
        row("by-cmnd", id_number="123456789", full_name="Nguyễn Văn Hoà"),
        # Same name, e-mail and phone as Bình but no number: never linked.
        row("contacts-only", full_name="Trần Thị Bình", birth_date="1985-03-02",
            phone="0987654321", email="binh@example.vn"),
        row("unknown-number", personal_number="001099099999", full_name="Nguyễn Văn Hoà"),
        row("cmnd-vs-number", personal_number="079185000123", id_number="123456789",
            full_name="Trần Thị Bình"),
        row("cmnd-other-number", personal_number="001099054321", id_number="123456789"),
    ]
    result, refused = do_import(system, csv_bytes(rows))
    assert result.rejected == 0, refused

    outcome = linking.link_system(system, now=NOW, batch_size=3)
    got = states(system)

    assert got["match"].link_state == LinkState.AUTO_LINKED
    assert got["match"].identity_id == an.id
    assert got["match"].linked_by == "auto" and got["match"].linked_at == NOW
    assert got["no-name"].link_state == LinkState.AUTO_LINKED
    assert got["no-name"].identity_id == binh.id
    assert got["by-cmnd"].link_state == LinkState.AUTO_LINKED
    assert got["by-cmnd"].identity_id == an.id

    def conflict(key, reason, candidate):
        account = got[key]
        assert account.link_state == LinkState.CONFLICT, key
        assert account.conflict_reason == reason
        assert account.identity_id is None
        assert account.candidate_identity_id == candidate.id

    conflict("name-differs", "name differs", an)
    conflict("date-differs", "birth date differs", binh)
    conflict("both-differ", "name differs; birth date differs", binh)
    conflict("cmnd-vs-number", linking.NUMBERS_SPLIT, binh)
    conflict("cmnd-other-number", "personal number differs", an)

    for key in ("contacts-only", "unknown-number"):
        assert got[key].link_state == LinkState.UNLINKED
        assert got[key].identity_id is None and got[key].candidate_identity_id is None

    assert (outcome.auto_linked, outcome.conflict) == (3, 5)
    assert outcome.reasons["name differs"] == 2

    # A second run changes nothing: only unlinked accounts are looked at.
    again = linking.link_system(system, now=NOW)
    assert (again.auto_linked, again.conflict) == (0, 0)


def test_identity_created_later_is_linked_on_the_next_run(system, do_import):
    do_import(system, csv_bytes([row("late", personal_number="001099012345",
                                     full_name="Nguyễn Văn An")]))
    assert linking.link_system(system, now=NOW).auto_linked == 0
    make_citizen("001099012345", "Nguyễn Văn An", date(1999, 5, 14))
    assert linking.link_system(system, now=NOW).auto_linked == 1


def test_cli_link_and_report(app, system, do_import):
    make_citizen("001099012345", "Nguyễn Văn An", date(1999, 5, 14))
    do_import(system, csv_bytes([
        row("a", personal_number="001099012345", full_name="Nguyễn Văn An"),
        row("b", personal_number="001099012345", full_name="Lê Văn An"),
        row("c"),
    ]))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["legacy", "link"])
    assert result.exit_code == 0, result.output
    assert "portal: auto_linked 1, conflict 1" in result.output
    assert "name differs: 1" in result.output
    result = runner.invoke(args=["legacy", "link", "portal"])
    assert "auto_linked 0, conflict 0" in result.output
    assert runner.invoke(args=["legacy", "link", "nowhere"]).exit_code != 0

    report = runner.invoke(args=["legacy", "report"])
    assert report.exit_code == 0
    assert "portal\t3\t1\t0\t1\t0\t1\t33.3%" in report.output
    assert services.report()[0]["mapped_share"] == round(1 / 3, 4)
