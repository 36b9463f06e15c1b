"""Claim and acr mappings: configuration checks and reading upstream claims."""

from __future__ import annotations

from datetime import date

import pytest

from idp.accounts.factors import ACR_LOW, ACR_SUBSTANTIAL, acr_for
from idp.federation import mapping, presets
from idp.federation.mapping import MappingError

CLAIMS = {"personal_number": ["citizen_id", "personal_number"], "full_name": "name", "birth_date": "birthdate",
          "gender": "gender", "phone": "phone_number", "email": "email"}


def test_presets_are_valid_data():
    assert {"vneid", "generic"} <= set(presets.names())
    for name in presets.names():
        preset = presets.get(name)
        mapping.validate_claim_mapping(preset["claim_mapping"])
        mapping.validate_acr_mapping(preset["acr_mapping"])
        assert "openid" in preset["scopes"].split()
    vneid = presets.get("vneid")
    assert vneid["button_label"] == "Đăng nhập bằng tài khoản định danh điện tử quốc gia"
    assert "personal_number" in vneid["claim_mapping"]["personal_number"]


@pytest.mark.parametrize("bad", [
    [], {"personal_number": "x"}, {"full_name": "name"}, {"personal_number": "x", "full_name": "n", "shoe": "s"},
    {"personal_number": 5, "full_name": "n"}, {"personal_number": ["x", ""], "full_name": "n"},
])
def test_bad_claim_mappings_are_refused(bad):
    with pytest.raises(MappingError):
        mapping.validate_claim_mapping(bad)


@pytest.mark.parametrize("bad", [
    {}, [], {"x": {"identity_level": 3}}, {"x": {"identity_level": True}}, {"x": {"identity_level": 2, "amr": "mfa"}},
    {"x": {"identity_level": 2, "amr": ["MFA!"]}}, {"x": {"identity_level": 1, "session_acr": "gold"}}, {"x": 2},
])
def test_bad_acr_mappings_are_refused(bad):
    with pytest.raises(MappingError):
        mapping.validate_acr_mapping(bad)


def test_claims_are_read_through_the_mapping():
    claim_map = mapping.validate_claim_mapping(CLAIMS)
    person = mapping.map_person(claim_map, {
        "personal_number": "001 099 012345", "name": "  Nguyễn   Văn An ", "birthdate": "1999-05-14",
        "gender": "Nam", "email": "an@example.vn", "phone_number": "0912345678", "unrelated": "x",
    }, issuer="https://up", subject="s")
    assert person.personal_number == "001099012345"
    assert person.full_name == "Nguyễn Văn An"
    assert person.birth_date == date(1999, 5, 14)
    assert person.gender == "male"
    assert person.snapshot["personal_number"] == "001 099 012345" and "unrelated" not in person.snapshot
    # The first claim present wins; unreadable values are absent, never guessed.
    person = mapping.map_person(claim_map, {"citizen_id": "079185000123", "personal_number": "001099012345",
                                            "name": "Trần Thị Bình", "birthdate": "02/03/1985", "gender": "x"},
                                issuer="https://up", subject="s")
    assert person.personal_number == "079185000123" and person.birth_date == date(1985, 3, 2)
    assert person.gender is None
    empty = mapping.map_person(claim_map, {"citizen_id": "12345", "birthdate": "0000-05-14", "name": 7},
                               issuer="https://up", subject="s")
    assert empty.personal_number is None and empty.birth_date is None and empty.full_name is None


def test_custom_gender_values():
    claim_map = mapping.validate_claim_mapping({**CLAIMS, "gender_values": {"male": ["1"], "female": ["2"]}})
    assert mapping.map_person(claim_map, {"gender": 2}, issuer="i", subject="s").gender == "female"
    assert mapping.map_person(claim_map, {"gender": "male"}, issuer="i", subject="s").gender is None


def test_missing_fields_decide_whether_userinfo_is_read():
    claim_map = mapping.validate_claim_mapping({"personal_number": "national_id", "full_name": "name"})
    assert mapping.missing_fields(claim_map, {"sub": "s", "name": "A"}) == ["personal_number"]
    assert mapping.missing_fields(claim_map, {"national_id": "001099012345", "name": "A"}) == []


def test_assurance_from_the_acr_mapping():
    acrs = mapping.validate_acr_mapping({
        "2": {"identity_level": 2, "amr": ["fed", "mfa"], "session_acr": ACR_SUBSTANTIAL},
        "1": {"identity_level": 1, "amr": ["fed"]},
    })
    high = mapping.assurance_for(acrs, "2")
    assert (high.identity_level, high.amr, high.upstream_acr) == (2, ["fed", "mfa"], "2")
    unknown = mapping.assurance_for(acrs, "9")
    assert (unknown.identity_level, unknown.amr) == (1, ["fed"])
    assert mapping.assurance_for(acrs, None).identity_level == 1
    assert mapping.assurance_for({"*": {"identity_level": 2, "amr": ["fed"]}}, "x").identity_level == 2


def test_mfa_from_upstream_gives_substantial_only_to_a_verified_identity():
    assert acr_for(2, ["fed", "mfa"]) == ACR_SUBSTANTIAL
    assert acr_for(1, ["fed", "mfa"]) == ACR_LOW
    assert acr_for(2, ["fed"]) == ACR_LOW


def test_session_acr_caps_what_the_session_claims():
    capped = mapping.Assurance(upstream_acr="1", identity_level=1, amr=["fed", "mfa"], session_acr=ACR_LOW)
    # A locally verified identity logging in through a level-1 upstream: no "mfa" above the cap.
    assert mapping.session_amr(capped, identity_level=2, acr_for=acr_for) == ["fed"]
    open_ = mapping.Assurance(upstream_acr="2", identity_level=2, amr=["fed", "mfa"], session_acr=ACR_SUBSTANTIAL)
    assert mapping.session_amr(open_, identity_level=2, acr_for=acr_for) == ["fed", "mfa"]
