"""Tables of businesses: their profile, who represents them, and self-service registrations.

A business is an `Identity` of kind business whose primary identifier is its tax code; it never
logs in. `BusinessProfile` holds what only a business has. `Representation` says that a person
(a citizen identity) acts for a business, in a role and within limits; rows are closed
(revoked or ended), never deleted: they are the history of who could act when.
"""

from __future__ import annotations

import enum

from idp.extensions import db


def _enum(cls, name):
    return db.Enum(
        cls, name=name, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class BusinessStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # tạm ngừng kinh doanh: cannot be acted for
    DISSOLVED = "dissolved"  # giải thể / chấm dứt hoạt động: cannot be acted for


class LegalForm(enum.StrEnum):
    """Forms of the Law on Enterprises 2020, cooperatives, households and dependent units."""

    LLC_SINGLE = "llc_single_member"  # công ty TNHH một thành viên
    LLC_MULTI = "llc_multi_member"  # công ty TNHH hai thành viên trở lên
    JOINT_STOCK = "joint_stock"  # công ty cổ phần
    PARTNERSHIP = "partnership"  # công ty hợp danh
    PRIVATE = "private_enterprise"  # doanh nghiệp tư nhân
    COOPERATIVE = "cooperative"  # hợp tác xã
    HOUSEHOLD = "household_business"  # hộ kinh doanh
    BRANCH = "branch"  # chi nhánh (13-digit code)
    REPRESENTATIVE_OFFICE = "representative_office"  # văn phòng đại diện (13-digit code)
    BUSINESS_LOCATION = "business_location"  # địa điểm kinh doanh (13-digit code)
    OTHER = "other"


class RepresentationRole(enum.StrEnum):
    LEGAL_REPRESENTATIVE = "legal_representative"  # người đại diện theo pháp luật
    AUTHORIZED = "authorized"  # người được ủy quyền, within a scope and a period


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class BusinessProfile(db.Model):
    """What a business identity has beyond the identity row (name and tax code live there)."""

    __tablename__ = "business_profiles"

    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), primary_key=True)
    legal_form = db.Column(_enum(LegalForm, "legal_form"), nullable=False)
    address = db.Column(db.String(500))
    business_status = db.Column(_enum(BusinessStatus, "business_status"), nullable=False)
    # Set for a branch, representative office or business location (13-digit code).
    parent_identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), index=True)
    # How each field was verified: {field: {"source": ..., "at": ISO time, "by": actor}}.
    verification = db.Column(db.JSON, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False)
    updated_at = db.Column(db.DateTime, nullable=False)

    identity = db.relationship("Identity", foreign_keys=[identity_id], lazy="joined")


class Representation(db.Model):
    """A person acts for a business: as its legal representative, or authorized within limits."""

    __tablename__ = "representations"

    id = db.Column(db.Integer, primary_key=True)
    business_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, index=True)
    representative_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, index=True)
    role = db.Column(_enum(RepresentationRole, "representation_role"), nullable=False)
    # Limits of an authorization; NULL means no limit of that kind.
    client_ids = db.Column(db.JSON)  # the relying parties where it may be used
    scopes = db.Column(db.JSON)  # the scopes it may be used with (openid, business implied)
    valid_from = db.Column(db.DateTime, nullable=False)
    valid_to = db.Column(db.DateTime)  # exclusive; NULL: until revoked
    granted_at = db.Column(db.DateTime, nullable=False)
    granted_by = db.Column(db.String(100), nullable=False)  # an audit actor
    reason = db.Column(db.String(300))  # why it was granted (officers must say)
    revoked_at = db.Column(db.DateTime)
    revoked_by = db.Column(db.String(100))
    revoke_reason = db.Column(db.String(300))
    # When what it gave was ended (tokens revoked, relying parties told): at revocation, or
    # when the expiry sweep found it past valid_to. NULL while it may still be used.
    ended_at = db.Column(db.DateTime)

    business = db.relationship("Identity", foreign_keys=[business_id], lazy="joined")
    representative = db.relationship("Identity", foreign_keys=[representative_id], lazy="joined")

    __table_args__ = (
        # One open representation per person and business: a change is a revoke and a grant.
        db.Index(
            "uq_representations_open",
            "business_id",
            "representative_id",
            unique=True,
            sqlite_where=db.text("ended_at IS NULL"),
            postgresql_where=db.text("ended_at IS NULL"),
        ),
        db.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_period"),
        db.CheckConstraint(
            "(revoked_at IS NULL) = (revoked_by IS NULL)", name="revoked_has_actor"
        ),
    )


class BusinessRequest(db.Model):
    """A legal representative's request to register their business; an officer decides."""

    __tablename__ = "business_requests"

    id = db.Column(db.Integer, primary_key=True)
    requester_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, index=True)
    tax_code = db.Column(db.String(32), nullable=False)
    name = db.Column(db.String(200), nullable=False)
    legal_form = db.Column(_enum(LegalForm, "legal_form"), nullable=False)
    address = db.Column(db.String(500))
    status = db.Column(_enum(RequestStatus, "business_request_status"), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False)
    decided_at = db.Column(db.DateTime)
    decided_by = db.Column(db.String(100))
    decision_reason = db.Column(db.String(300))
    business_identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"))

    requester = db.relationship("Identity", foreign_keys=[requester_id], lazy="joined")

    __table_args__ = (db.Index("ix_business_requests_status", "status", "created_at"),)
