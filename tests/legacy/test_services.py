"""Services the login, claim and admin flows build on."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pytest

from idp.clients import services as client_services
from idp.errors import Conflict, InvalidFields, ValidationError
from idp.extensions import db
from idp.legacy import services
from idp.legacy.models import LegacyAccount, LinkState
from tests.legacy.conftest import NOW, csv_bytes
from tests.legacy.test_linking import make_citizen


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_system_rules(app_ctx):
    with pytest.raises(InvalidFields) as info:
        services.create_system(slug="Bad Slug", name="", agency="x", hash_scheme="nope", now=NOW)
    assert {"slug", "name", "hash_scheme"} <= set(info.value.errors)
    with pytest.raises(InvalidFields) as info:
        services.create_system(slug="s", name="n", agency="a", hash_scheme="salted_sha256", now=NOW)
    assert "salt_position" in info.value.errors
    services.create_system(slug="s", name="n", agency="a", hash_scheme="md5_hex", now=NOW)
    with pytest.raises(Conflict):
        services.create_system(slug="s", name="n", agency="a", hash_scheme="md5_hex", now=NOW)
    with pytest.raises(ValidationError):
        services.require_system("nowhere")


@pytest.fixture
def salted(app_ctx, do_import):
    system = services.create_system(
        slug="mot-cua", name="Một cửa", agency="TTPVHCC", hash_scheme="salted_sha256",
        salt_position="after", now=NOW,
    )
    db.session.commit()
    rows = [
        {"legacy_id": "1", "username": "AnNguyen", "salt": "xy", "password_hash": _sha("cũ1xy")},
        {"legacy_id": "2", "username": "binh", "salt": "zz", "password_hash": _sha("zzcũ2"),
         "hash_scheme": "md5_hex"},
        {"legacy_id": "3", "username": "Bob", "password_hash": hashlib.md5(b"b").hexdigest(),  # noqa: S324
         "hash_scheme": "md5_hex"},
        {"legacy_id": "4", "username": "bob", "password_hash": hashlib.md5(b"c").hexdigest(),  # noqa: S324
         "hash_scheme": "md5_hex"},
        {"legacy_id": "5", "username": "nohash"},
    ]
    result, refused = do_import(system, csv_bytes(rows))
    assert result.rejected == 1 and refused[0]["code"] == "invalid_hash"  # row 2: not md5
    return system


def test_find_legacy_account(salted):
    assert services.find_legacy_account("mot-cua", "annguyen").legacy_user_id == "1"
    assert services.find_legacy_account("mot-cua", " AnNguyen ").legacy_user_id == "1"
    # Two usernames differing only in case: the exact one, else nobody.
    assert services.find_legacy_account("mot-cua", "Bob").legacy_user_id == "3"
    assert services.find_legacy_account("mot-cua", "bob").legacy_user_id == "4"
    assert services.find_legacy_account("mot-cua", "BOB") is None
    assert services.find_legacy_account("mot-cua", "nobody") is None
    assert services.find_legacy_account("other", "annguyen") is None
    assert services.find_legacy_account("mot-cua", "") is None


def test_verify_legacy_password(salted):
    one = services.find_legacy_account("mot-cua", "AnNguyen")
    assert services.verify_legacy_password(one, "cũ1")
    assert not services.verify_legacy_password(one, "cũ2")
    bob = services.find_legacy_account("mot-cua", "Bob")
    assert services.verify_legacy_password(bob, "b")  # the row's own scheme
    assert not services.verify_legacy_password(bob, "c")
    assert not services.verify_legacy_password(services.find_legacy_account("mot-cua", "nohash"), "")
    assert not services.verify_legacy_password(None, "x")


def test_link_claim_conflict_reject(salted):
    an = make_citizen("001099012345", "Nguyễn Văn An", date(1999, 5, 14))
    binh = make_citizen("079185000123", "Trần Thị Bình", date(1985, 3, 2), gender="female")
    account = services.find_legacy_account("mot-cua", "AnNguyen")

    services.link(account, an.id, by="claim", now=NOW)
    assert account.link_state == LinkState.CLAIMED and account.identity_id == an.id
    assert account.linked_by == "claim" and account.linked_at == NOW
    with pytest.raises(Conflict):
        services.link(account, binh.id, by="claim", now=NOW)
    services.link(account, an.id, by="claim", now=NOW)  # the same identity again: fine
    services.link(account, binh.id, by="officer:42", now=NOW, state="claimed", force=True)
    assert account.identity_id == binh.id

    services.link(account, an.id, by="auto", now=NOW, state="conflict", reason="name differs")
    assert account.identity_id is None and account.candidate_identity_id == an.id
    services.link(account, an.id, by="officer:42", now=NOW, state="rejected")
    assert account.link_state == LinkState.REJECTED and account.linked_by == "officer:42"
    with pytest.raises(ValidationError):
        services.link(account, None, by="claim", now=NOW)
    services.link(account, None, by="officer:42", now=NOW, state="unlinked")
    assert account.link_state == LinkState.UNLINKED and account.candidate_identity_id is None
    db.session.commit()


def test_linked_accounts_for_the_legacy_claim(salted, app_ctx):
    from flask import current_app

    an = make_citizen("001099012345", "Nguyễn Văn An", date(1999, 5, 14))
    client, _secret = client_services.create_client(
        name="Một cửa", agency="TTPVHCC", redirect_uris=["https://motcua.example.vn/cb"],
        config=current_app.config, now=NOW,
    )
    services.update_system(salted, now=NOW, client_id=client.client_id)
    services.link(services.find_legacy_account("mot-cua", "AnNguyen"), an.id, by="claim", now=NOW)
    services.link(services.find_legacy_account("mot-cua", "Bob"), an.id, by="auto", now=NOW,
                  state="auto_linked")
    services.link(services.find_legacy_account("mot-cua", "bob"), an.id, by="auto", now=NOW,
                  state="conflict", reason="x")
    db.session.commit()
    every = services.linked_accounts(an.id)
    assert [a["legacy_user_id"] for a in every] == ["1", "3"]
    assert services.linked_accounts(an.id, client_id=client.client_id) == every
    assert services.linked_accounts(an.id, client_id="someone-else") == []


def test_report_counts(salted, app):
    an = make_citizen("001099012345", "Nguyễn Văn An", date(1999, 5, 14))
    services.create_system(slug="empty", name="E", agency="A", hash_scheme="bcrypt", now=NOW)
    accounts = {a.legacy_user_id: a for a in db.session.query(LegacyAccount)}
    services.link(accounts["1"], an.id, by="claim", now=NOW)
    services.link(accounts["3"], an.id, by="auto", now=NOW, state="auto_linked")
    services.link(accounts["4"], an.id, by="auto", now=NOW, state="conflict", reason="x")
    db.session.commit()
    report = {r["system"]: r for r in services.report()}
    mot_cua = report["mot-cua"]
    assert mot_cua["imported"] == 4
    assert (mot_cua["auto_linked"], mot_cua["claimed"], mot_cua["conflict"]) == (1, 1, 1)
    assert (mot_cua["rejected"], mot_cua["unlinked"]) == (0, 1)
    assert mot_cua["mapped_share"] == 0.5
    assert mot_cua["last_import"]["read"] == 5 and mot_cua["last_import"]["rejected"] == 1
    assert report["empty"]["imported"] == 0 and report["empty"]["mapped_share"] == 0.0
    assert report["empty"]["last_import"] is None

    output = app.test_cli_runner().invoke(args=["legacy", "report", "--json"]).output
    assert {r["system"]: r["claimed"] for r in json.loads(output)} == {"empty": 0, "mot-cua": 1}


def test_conflict_queue_and_pending_conflicts(salted):
    an = make_citizen("001099012345", "Nguyễn Văn An", date(1999, 5, 14))
    accounts = {a.legacy_user_id: a for a in db.session.query(LegacyAccount)}
    for key in ("1", "3", "4"):
        services.link(accounts[key], an.id, by="auto", now=NOW, state="conflict", reason="name differs")
    db.session.commit()
    rows, total = services.conflict_queue(per_page=2)
    assert total == 3 and len(rows) == 2
    rest, _ = services.conflict_queue(page=2, per_page=2)
    assert {a.legacy_user_id for a in rows + rest} == {"1", "3", "4"}
    assert [a.legacy_user_id for a in services.pending_conflicts_for(an.id)] == ["1", "3", "4"]

    services.link(accounts["3"], an.id, by="officer:7", now=NOW, state="rejected")
    assert accounts["3"].conflict_reason == "name differs"  # kept when no reason is given
    services.link(accounts["4"], an.id, by="officer:7", now=NOW, state="rejected",
                  reason="a different person")
    assert accounts["4"].conflict_reason == "a different person"
    db.session.commit()
    assert services.conflict_queue()[1] == 1
    assert [a.legacy_user_id for a in services.pending_conflicts_for(an.id)] == ["1"]
