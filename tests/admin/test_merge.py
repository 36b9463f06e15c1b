"""Merging two duplicate identities: everything moves, nothing is orphaned, and tokens and
`sub` values issued for the duplicate keep working for the survivor."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from idp.accounts import factors
from idp.accounts.models import Role, RoleGrant
from idp.admin.models import IdentityMerge
from idp.extensions import db
from idp.identity.models import Identifier, Identity
from idp.legacy import services as legacy_services
from idp.legacy.models import LegacyAccount, LinkState
from idp.oidc.models import Consent, PairwiseSubject, RefreshToken
from idp.timeutil import utcnow
from tests.admin.conftest import audit_actions, enrol_totp, log_in, make_person, post
from tests.support.forms import submit
from tests.support.oidc import (
    bearer,
    code_flow_tokens,
    decode_jwt,
    exchange,
    get_code,
    make_client,
    refresh,
)

SURVIVOR_NUMBER = "001099012345"
DUPLICATE_NUMBER = "001099054321"
SCOPE = "openid profile email"
# Rows that may still name the duplicate after the merge: its tombstone and its history.
ALLOWED = {("identities", "id"), ("identifiers", "identity_id"), ("identity_merges", "merged_id")}


def _people(app):
    survivor = make_person(app, SURVIVOR_NUMBER, full_name="Nguyễn Văn Anh", birth_date=date(1999, 5, 14),
                           phone="0912345678")
    duplicate = make_person(app, DUPLICATE_NUMBER, full_name="Nguyễn Văn An", birth_date=date(1999, 5, 14),
                            phone="0987654321", email="an@example.vn")
    return survivor, duplicate


def _references_to(app, identity_id) -> dict:
    with app.app_context():
        out = {}
        for table in db.metadata.sorted_tables:
            for column in table.columns:
                if any(fk.target_fullname == "identities.id" for fk in column.foreign_keys) or (
                        table.name == "identities" and column.name == "id"):
                    count = db.session.scalar(select(func.count()).select_from(table).where(column == identity_id))
                    if count and (table.name, column.name) not in ALLOWED:
                        out[f"{table.name}.{column.name}"] = count
        return out


def test_merge_moves_everything_and_old_tokens_resolve_to_the_survivor(app, officer_client):
    survivor, duplicate = _people(app)
    codes = enrol_totp(app, duplicate)
    client_id, secret = make_client(app)
    pairwise_id, pairwise_secret = make_client(app, name="Hệ thống ngành", subject_type="pairwise")
    with app.app_context():
        grant_to = db.session.get(Identity, duplicate)
        from idp.accounts import services as account_services

        account_services.grant_role(grant_to, Role.AUDITOR, granted_by="test", now=utcnow())
        system = legacy_services.create_system(slug="portal", name="Cổng cũ", agency="UBND",
                                               hash_scheme="md5_hex", now=utcnow())
        now = utcnow()
        db.session.add(LegacyAccount(system_id=system.id, legacy_user_id="u-77", username="an77",
                                     username_key="an77", personal_number=DUPLICATE_NUMBER,
                                     full_name="Nguyễn Văn An", raw={}, link_state=LinkState.AUTO_LINKED,
                                     identity_id=duplicate, linked_by="auto", linked_at=now,
                                     import_run="r1", source_line=1, imported_at=now, updated_at=now))
        db.session.commit()

    # The duplicate logs in and gets tokens from two relying parties (public and pairwise sub),
    # and one code it has not redeemed yet.
    person = app.test_client()
    log_in(person, DUPLICATE_NUMBER, codes)
    tokens = code_flow_tokens(person, client_id, secret, scope=SCOPE)
    pairwise_tokens = code_flow_tokens(person, pairwise_id, pairwise_secret, scope=SCOPE)
    pending_code, verifier, _ = get_code(person, client_id, scope=SCOPE)
    assert person.get("/oauth2/userinfo", headers=bearer(tokens["access_token"])).get_json()["name"] == "Nguyễn Văn An"
    pairwise_sub = decode_jwt(person, pairwise_tokens["access_token"]).claims["sub"]

    browser, officer = officer_client("identity_officer")
    preview = browser.get(f"/admin/identities/{survivor}/merge", query_string={"other": DUPLICATE_NUMBER})
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert "Nguyễn Văn An" in html and "Nguyễn Văn Anh" in html and str(duplicate) in html
    url = f"/admin/identities/{survivor}/merge"
    refused = post(browser, url, {"other_id": str(duplicate), "confirm": "y", "reason": ""})
    assert refused.status_code == 400
    unconfirmed = post(browser, url, {"other_id": str(duplicate), "reason": "Trùng hồ sơ"})
    assert unconfirmed.status_code == 400
    with app.app_context():
        assert db.session.get(Identity, duplicate).status == "active"
    resp = post(browser, url, {"other_id": str(duplicate), "confirm": "y",
                               "reason": "Trùng hồ sơ, đã đối chiếu CCCD"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]

    # Tokens issued before the merge answer for the survivor.
    info = person.get("/oauth2/userinfo", headers=bearer(tokens["access_token"]))
    assert info.status_code == 200, info.get_json()
    assert info.get_json()["name"] == "Nguyễn Văn Anh"
    assert info.get_json()["sub"] == str(duplicate)  # the token's own sub
    pw_info = person.get("/oauth2/userinfo", headers=bearer(pairwise_tokens["access_token"]))
    assert pw_info.status_code == 200 and pw_info.get_json()["name"] == "Nguyễn Văn Anh"
    assert pw_info.get_json()["sub"] == pairwise_sub
    renewed = refresh(person, client_id, secret, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.get_json()
    new_claims = decode_jwt(person, renewed.get_json()["access_token"]).claims
    assert new_claims["sub"] == str(survivor)
    assert person.get("/oauth2/userinfo", headers=bearer(renewed.get_json()["access_token"])).get_json()["name"] == "Nguyễn Văn Anh"
    assert refresh(person, pairwise_id, pairwise_secret, pairwise_tokens["refresh_token"]).status_code == 200
    redeemed = exchange(person, client_id, secret, pending_code, verifier)
    assert redeemed.status_code == 200, redeemed.get_json()
    assert decode_jwt(person, redeemed.get_json()["id_token"]).claims["sub"] == str(survivor)

    # Nothing names the duplicate any more but its tombstone and its history.
    assert _references_to(app, duplicate) == {}
    with app.app_context():
        store = app.extensions["idp_store"]
        tomb, kept = db.session.get(Identity, duplicate), db.session.get(Identity, survivor)
        assert (tomb.status, tomb.merged_into_id, tomb.phone, tomb.email) == ("merged", survivor, None, None)
        assert (kept.status, kept.phone, kept.email) == ("active", "+84912345678", "an@example.vn")
        old = db.session.scalars(select(Identifier).where(Identifier.identity_id == duplicate)).all()
        assert [(i.valid_to is not None, i.change_reason) for i in old] == [(True, f"merged into {survivor}")]
        copies = db.session.scalars(select(Identifier).where(Identifier.identity_id == survivor,
                                                             Identifier.value == DUPLICATE_NUMBER)).all()
        assert [(c.valid_to is not None, c.change_reason) for c in copies] == [(True, f"merged from {duplicate}")]
        assert factors.has_totp(survivor)  # re-sealed for the survivor: the same app still works
        assert factors.verify_totp(store, survivor, codes.fresh(), config=app.config)
        assert db.session.get(RoleGrant, (survivor, Role.AUDITOR)) is not None
        assert legacy_services.linked_accounts(survivor)[0]["legacy_user_id"] == "u-77"
        assert db.session.scalar(select(func.count()).select_from(Consent).where(Consent.identity_id == survivor)) == 2
        assert db.session.scalar(select(func.count()).select_from(RefreshToken)
                                 .where(RefreshToken.identity_id == survivor)) >= 3
        assert db.session.scalar(select(PairwiseSubject.identity_id).where(PairwiseSubject.sub == pairwise_sub)) == survivor
        merge = db.session.scalar(select(IdentityMerge))
        assert (merge.survivor_id, merge.merged_id, merge.officer_id) == (survivor, duplicate, officer)
        assert merge.reason == "Trùng hồ sơ, đã đối chiếu CCCD"
        assert merge.snapshot["merged"]["full_name"] == "Nguyễn Văn An"
        assert merge.snapshot["kept"]["totp"] == "merged"

    actions = audit_actions(app, actor=str(officer))
    merged_entry = next(a for a in actions if a[0] == "admin.identity.merged")
    assert merged_entry[2] == str(survivor) and merged_entry[3]["merged"] == str(duplicate)
    assert any(a[0] == "admin.identity.updated" and a[2] == str(duplicate) for a in actions)
    for page_of in (survivor, duplicate):
        html = browser.get(f"/admin/identities/{page_of}").get_data(as_text=True)
        assert "Trùng hồ sơ, đã đối chiếu CCCD" in html
    # The duplicate's number no longer logs in; the survivor still does.
    assert submit(app.test_client(), "/login", {"login": DUPLICATE_NUMBER,
                                                "password": "một buổi sáng mùa thu ở hà nội"}).status_code != 302
    log_in(app.test_client(), SURVIVOR_NUMBER)


def test_merge_is_refused_for_the_same_or_an_already_merged_identity(app, officer_client):
    survivor, duplicate = _people(app)
    third = make_person(app, "001099099999", full_name="Nguyễn An")
    browser, _ = officer_client("identity_officer")
    same = post(browser, f"/admin/identities/{survivor}/merge",
                {"other_id": str(survivor), "confirm": "y", "reason": "thử"})
    assert same.status_code == 400
    assert post(browser, f"/admin/identities/{third}/merge",
                {"other_id": str(duplicate), "confirm": "y", "reason": "trùng"}).status_code == 302
    again = post(browser, f"/admin/identities/{survivor}/merge",
                 {"other_id": str(duplicate), "confirm": "y", "reason": "trùng"})
    assert again.status_code == 400
    # The survivor of a merge can itself be merged later: the tombstones point at the end.
    assert post(browser, f"/admin/identities/{survivor}/merge",
                {"other_id": str(third), "confirm": "y", "reason": "trùng"}).status_code == 302
    with app.app_context():
        from idp.identity.services import resolve

        assert db.session.get(Identity, duplicate).merged_into_id == survivor
        assert resolve(duplicate).id == survivor and resolve(third).id == survivor
        assert resolve("not-a-uuid") is None


def test_when_both_have_factors_the_survivors_are_kept(app):
    survivor, duplicate = _people(app)
    survivor_codes = enrol_totp(app, survivor)
    duplicate_codes = enrol_totp(app, duplicate)
    officer = make_person(app, "001080000001", full_name="Cán Bộ", birth_date=date(1980, 1, 2))
    with app.app_context():
        from idp.accounts.models import KnownDevice, PasswordCredential
        from idp.admin import services

        now = utcnow()
        own_hash = db.session.get(PasswordCredential, survivor).hash
        for who in (survivor, duplicate):
            db.session.add(KnownDevice(identity_id=who, device_digest="d" * 64, first_seen=now, last_seen=now))
        db.session.add(KnownDevice(identity_id=duplicate, device_digest="e" * 64, first_seen=now, last_seen=now))
        db.session.commit()
        merge = services.merge_identities(survivor, duplicate, officer_id=officer, reason="Trùng",
                                          config=app.config, address="127.0.0.1", now=now)
        assert merge.snapshot["kept"] == {"password": "survivor", "totp": "survivor", "email": "merged",
                                          "known_devices.identity_id": "survivor"}
        assert db.session.get(PasswordCredential, survivor).hash == own_hash
        assert db.session.get(PasswordCredential, duplicate) is None
        store = app.extensions["idp_store"]
        assert factors.verify_totp(store, survivor, survivor_codes.fresh(), config=app.config)
        assert not factors.verify_totp(store, survivor, duplicate_codes.fresh(), config=app.config)
        devices = db.session.scalars(select(KnownDevice.device_digest).where(KnownDevice.identity_id == survivor)).all()
        assert sorted(devices) == ["d" * 64, "e" * 64]
    assert _references_to(app, duplicate) == {}


def _business_with_representative(app, person, tax_code="0100233488"):
    from idp.business.models import Representation

    with app.app_context():
        now = utcnow()
        business = Identity(kind="business", full_name="Công ty TNHH Ánh Dương", name_search="cong ty tnhh anh duong",
                            status="active", assurance_level=1, created_at=now, updated_at=now)
        business.identifiers.append(Identifier(type="tax_code", value=tax_code, is_primary=True, valid_from=now))
        db.session.add(business)
        db.session.flush()
        db.session.add(Representation(business_id=business.id, representative_id=person, role="legal_representative",
                                      valid_from=now, granted_at=now, granted_by="system"))
        db.session.commit()
        return business.id


def test_represented_businesses_are_shown_and_follow_a_merge(app, officer_client):
    survivor, duplicate = _people(app)
    business = _business_with_representative(app, duplicate)
    browser, _ = officer_client("identity_officer")
    assert "Công ty TNHH Ánh Dương" in browser.get(f"/admin/identities/{duplicate}").get_data(as_text=True)
    assert "Nguyễn Văn An" in browser.get(f"/admin/identities/{business}").get_data(as_text=True)
    assert post(browser, f"/admin/identities/{survivor}/merge",
                {"other_id": str(duplicate), "confirm": "y", "reason": "Trùng"}).status_code == 302
    assert "Công ty TNHH Ánh Dương" in browser.get(f"/admin/identities/{survivor}").get_data(as_text=True)
    assert _references_to(app, duplicate) == {}


def test_a_merge_that_cannot_combine_two_records_changes_nothing(app, officer_client):
    survivor, duplicate = _people(app)
    business = _business_with_representative(app, duplicate)
    with app.app_context():
        from idp.business.models import Representation

        now = utcnow()
        db.session.add(Representation(business_id=business, representative_id=survivor, role="authorized",
                                      valid_from=now, granted_at=now, granted_by="system"))
        db.session.commit()
    browser, _ = officer_client("identity_officer")
    resp = post(browser, f"/admin/identities/{survivor}/merge",
                {"other_id": str(duplicate), "confirm": "y", "reason": "Trùng"})
    assert resp.status_code == 409
    assert "representations" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Identity, duplicate).status == "active"
        assert db.session.scalar(select(func.count()).select_from(IdentityMerge)) == 0
