"""Business identities and representations: the rules, through services and `flask business`."""

from __future__ import annotations

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from idp.business import representation, services
from idp.business.models import BusinessProfile, BusinessStatus
from idp.errors import Conflict, DomainError, InvalidFields
from idp.extensions import db
from idp.identity.models import IdentifierType, IdentityKind
from idp.timeutil import utcnow
from tests.business.conftest import (
    AGENT,
    BUSINESS_NAME,
    LEGAL,
    OTHER,
    TAX_CODE,
    audit_actions,
    make_business,
    make_person,
)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def _create(**fields):
    values = dict(tax_code=TAX_CODE, name=BUSINESS_NAME, legal_form="joint_stock", now=utcnow(),
                  by="cli:test")
    values.update(fields)
    return services.create_business(**values)


def test_business_identity_keyed_by_tax_code(app):
    legal = make_person(app, LEGAL, level=2)
    with app.app_context():
        identity = _create(tax_code="0100-233-488", address="  Số 1   Tràng Tiền, Hà Nội ",
                           legal_representative_id=legal)
        assert identity.kind == IdentityKind.BUSINESS and identity.full_name == BUSINESS_NAME
        assert identity.name_search == "cong ty tnhh giai phap so ha noi"
        primary = identity.primary_identifier
        assert primary.type == IdentifierType.TAX_CODE and primary.value == TAX_CODE
        profile = db.session.get(BusinessProfile, identity.id)
        assert profile.address == "Số 1 Tràng Tiền, Hà Nội"
        assert profile.business_status == BusinessStatus.ACTIVE
        assert profile.verification["tax_code"]["source"] == "officer"
        assert profile.verification["name"]["by"] == "cli:test"
        assert representation.is_legal_representative(legal, identity.id, now=utcnow())
        with pytest.raises(Conflict):
            _create()
    assert [a[0] for a in audit_actions(app)] == ["business.representative.granted", "business.created"]


@pytest.mark.parametrize(
    ("tax_code", "message"),
    [
        ("0100233489", "check digit"),
        ("0100233488-000", "between 001 and 999"),
        ("01002334", "10, 12 or 13 digits"),
        ("0100233488-01", "3 digits"),
        ("", "Enter the tax code"),
    ],
)
def test_invalid_tax_codes_are_refused_naming_the_field(app, tax_code, message):
    with app.app_context(), force_locale("en"):
        with pytest.raises(InvalidFields) as caught:
            _create(tax_code=tax_code, legal_form="branch" if "-" in tax_code else "joint_stock")
        assert "tax_code" in caught.value.errors
        assert message in str(caught.value.errors["tax_code"])


def test_branch_needs_its_parent_and_a_matching_form(app):
    with app.app_context(), force_locale("en"):
        with pytest.raises(InvalidFields) as caught:
            _create(tax_code="0100233488-001", legal_form="branch", name="CHI NHÁNH HẢI PHÒNG")
        assert "0100233488" in str(caught.value.errors["tax_code"])
        assert "parent" in str(caught.value.errors["tax_code"])
        parent = _create()
        with pytest.raises(InvalidFields) as caught:
            _create(tax_code="0100233488-001", legal_form="joint_stock", name="CHI NHÁNH")
        assert "legal_form" in caught.value.errors
        branch = _create(tax_code="0100233488001", legal_form="branch", name="CHI NHÁNH HẢI PHÒNG")
        assert branch.primary_identifier.value == "0100233488-001"
        assert db.session.get(BusinessProfile, branch.id).parent_identity_id == parent.id


def test_household_business_uses_a_personal_number(app):
    with app.app_context():
        household = _create(tax_code="001099012345", legal_form="household_business",
                            name="HỘ KINH DOANH NGUYỄN VĂN AN")
        assert household.primary_identifier.value == "001099012345"
        with pytest.raises(InvalidFields) as caught:
            _create(tax_code="079185000123", legal_form="joint_stock", name="CÔNG TY X")
        assert "legal_form" in caught.value.errors


def test_level_one_cannot_be_a_legal_representative(app):
    agent = make_person(app, AGENT)
    with app.app_context(), force_locale("en"):
        with pytest.raises(DomainError) as caught:
            _create(legal_representative_id=agent)
        assert "level 2" in str(caught.value.message)
        assert services.business_by_tax_code(TAX_CODE) is None  # nothing half-made
        business = _create()
        with pytest.raises(DomainError):
            representation.grant(business_id=business.id, representative_id=agent,
                                 role="legal_representative", now=utcnow(), by="cli:test",
                                 reason="Điều lệ công ty", officer=True)
        with pytest.raises(DomainError):
            services.request_registration(requester_id=agent, tax_code="0314409058",
                                          name="CÔNG TY Y", legal_form="joint_stock", now=utcnow())


def test_who_may_grant_and_revoke(app):
    legal = make_person(app, LEGAL, level=2)
    agent = make_person(app, AGENT)
    other = make_person(app, OTHER)
    business = make_business(app, representative_id=legal)
    with app.app_context():
        now = utcnow()
        rep = representation.grant(business_id=business, representative_id=agent, now=now,
                                   by=str(legal), scopes=["profile", "openid"])
        assert rep.scopes == ["profile"]  # openid and business are implied
        # An authorized person cannot authorize others, nor a legal representative be made here.
        with pytest.raises(DomainError):
            representation.grant(business_id=business, representative_id=other, now=now, by=str(agent))
        with pytest.raises(DomainError):
            representation.grant(business_id=business, representative_id=other, now=now,
                                 by=str(legal), role="legal_representative")
        # One open representation per person and business.
        with pytest.raises(Conflict):
            representation.grant(business_id=business, representative_id=agent, now=now, by=str(legal))
        # Officers must give a reason.
        with pytest.raises(DomainError):
            representation.grant(business_id=business, representative_id=other, now=now,
                                 by="cli:test", officer=True)
        with pytest.raises(InvalidFields):
            representation.grant(business_id=business, representative_id=other, now=now,
                                 by=str(legal), client_ids=["no-such-rp"])
        # Someone else cannot revoke; the person may give it up.
        with pytest.raises(DomainError):
            representation.revoke(rep.id, now=now, by=str(other))
        with pytest.raises(DomainError):
            representation.revoke(representation.open_representation(business, legal).id,
                                  now=now, by=str(legal))
        representation.revoke(rep.id, now=now, by=str(agent))
    actions = audit_actions(app)
    assert [a[0] for a in actions].count("business.representative.granted") == 2
    assert actions[-1][0] == "business.representative.revoked" and actions[-1][1] == str(agent)


def test_cli_create_grant_show_revoke(app, runner):
    legal = make_person(app, LEGAL, level=2)
    make_person(app, AGENT)
    result = runner.invoke(args=["business", "create", "--tax-code", TAX_CODE, "--name", BUSINESS_NAME,
                                 "--legal-form", "joint_stock", "--representative", LEGAL["personal_number"]])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["business", "create", "--tax-code", "0100233488-000", "--name", "X",
                              "--legal-form", "branch"])
    assert bad.exit_code != 0 and "tax_code:" in bad.output and "001" in bad.output
    result = runner.invoke(args=["business", "grant", TAX_CODE, AGENT["personal_number"],
                                 "--client", "nope", "--reason", "Giấy ủy quyền"])
    assert result.exit_code != 0 and "client_ids" in result.output
    result = runner.invoke(args=["business", "grant", TAX_CODE, AGENT["personal_number"],
                                 "--scope", "profile", "--reason", "Giấy ủy quyền số 12"])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(args=["business", "show", TAX_CODE])
    assert "Trần Thị Bình" in shown.output and "legal_representative" in shown.output
    result = runner.invoke(args=["business", "revoke", TAX_CODE, AGENT["personal_number"],
                                 "--reason", "Hết hạn hợp đồng"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["business", "set-status", TAX_CODE, "suspended", "--reason", "Tạm ngừng"])
    assert result.exit_code == 0, result.output
    actions = audit_actions(app)
    assert all(a[1].startswith("cli:") for a in actions)
    assert [a[0] for a in actions] == [
        "business.representative.granted", "business.created", "business.representative.granted",
        "business.representative.revoked", "business.status_changed"]
    with app.app_context():
        assert not representation.is_legal_representative(legal, services.business_by_tax_code(TAX_CODE).id,
                                                          now=utcnow())  # suspended


def test_registration_request_approved_by_an_officer(app, runner):
    legal = make_person(app, LEGAL, level=2)
    with app.app_context():
        item = services.request_registration(
            requester_id=legal, tax_code="0314409058", name="CÔNG TY CỔ PHẦN SÀI GÒN XANH",
            legal_form="joint_stock", address="Quận 1, TP. Hồ Chí Minh", now=utcnow())
        request_id = item.id
        with pytest.raises(Conflict):
            services.request_registration(requester_id=legal, tax_code="0314409058", name="X",
                                          legal_form="joint_stock", now=utcnow())
    listed = runner.invoke(args=["business", "requests"])
    assert "0314409058" in listed.output
    result = runner.invoke(args=["business", "approve", str(request_id)])
    assert result.exit_code == 0, result.output
    again = runner.invoke(args=["business", "approve", str(request_id)])
    assert again.exit_code != 0 and again.output.startswith("Error: request: ")
    with app.app_context():
        business = services.business_by_tax_code("0314409058")
        assert representation.is_legal_representative(legal, business.id, now=utcnow())
        profile = db.session.get(BusinessProfile, business.id)
        assert profile.verification["name"]["source"] == "request"
        assert profile.verification["name"]["by"].startswith("cli:")
    actions = [a[0] for a in audit_actions(app)]
    assert actions == ["business.requested", "business.representative.granted", "business.created",
                       "business.request.approved"]


def test_rejected_request(app, runner):
    legal = make_person(app, LEGAL, level=2)
    with app.app_context():
        request_id = services.request_registration(
            requester_id=legal, tax_code="0314409058", name="CÔNG TY Z", legal_form="joint_stock",
            now=utcnow()).id
    assert runner.invoke(args=["business", "reject", str(request_id)]).exit_code != 0  # reason needed
    result = runner.invoke(args=["business", "reject", str(request_id), "--reason", "Sai tên"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert services.business_by_tax_code("0314409058") is None
        assert db.session.scalar(select(services.BusinessRequest)).decision_reason == "Sai tên"
