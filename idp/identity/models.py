"""Tables of the unified identity."""

from __future__ import annotations

import enum
import uuid

from idp.extensions import db


class IdentityKind(enum.StrEnum):
    CITIZEN = "citizen"
    BUSINESS = "business"


class IdentityStatus(enum.StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    DISABLED = "disabled"
    MERGED = "merged"


class Gender(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"


class IdentifierType(enum.StrEnum):
    PERSONAL_NUMBER = "personal_number"  # 12-digit số định danh cá nhân
    LEGACY_ID_NUMBER = "legacy_id_number"  # old 9-digit CMND, secondary only
    PASSPORT = "passport"  # foreigners
    TAX_CODE = "tax_code"  # businesses (10, 13 with branch, or 12 for households)


# Which identifier types may be an identity's primary identifier, by kind.
PRIMARY_TYPES = {
    IdentityKind.CITIZEN: {IdentifierType.PERSONAL_NUMBER, IdentifierType.PASSPORT},
    IdentityKind.BUSINESS: {IdentifierType.TAX_CODE},
}


def _enum(cls, name):
    return db.Enum(
        cls, name=name, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Identity(db.Model):
    __tablename__ = "identities"

    # Internal, stable key: survives a re-issued personal number.
    id = db.Column(db.Uuid, primary_key=True, default=uuid.uuid4)
    kind = db.Column(_enum(IdentityKind, "identity_kind"), nullable=False)
    # Full name as registered, NFC; the authoritative string.
    full_name = db.Column(db.String(200), nullable=False)
    # Accent-insensitive key to find candidates, never to decide a match.
    name_search = db.Column(db.String(200), nullable=False, index=True)
    birth_date = db.Column(db.Date)
    gender = db.Column(_enum(Gender, "gender"))
    phone = db.Column(db.String(20), unique=True)  # E.164
    email = db.Column(db.String(254), unique=True)  # normalized by email-validator, lower-cased
    # Set only after a code or a link proved the contact belongs to the person.
    phone_verified_at = db.Column(db.DateTime)
    email_verified_at = db.Column(db.DateTime)
    status = db.Column(_enum(IdentityStatus, "identity_status"), nullable=False, default=IdentityStatus.ACTIVE)
    merged_into_id = db.Column(db.Uuid, db.ForeignKey("identities.id"))
    # 1 self-registered, 2 verified (in person or by the national e-ID at level 2).
    assurance_level = db.Column(db.SmallInteger, nullable=False, default=1)
    created_at = db.Column(db.DateTime, nullable=False)
    updated_at = db.Column(db.DateTime, nullable=False)

    # Loaded when asked for: the token and userinfo paths load identities far more often
    # than they need their numbers. Lists of identities ask for selectinload.
    identifiers = db.relationship(
        "Identifier", back_populates="identity", order_by="Identifier.valid_from", lazy="select"
    )

    __table_args__ = (
        db.CheckConstraint("assurance_level IN (1, 2)", name="assurance_level"),
        db.CheckConstraint(
            "(status = 'merged') = (merged_into_id IS NOT NULL)", name="merged_has_target"
        ),
    )

    @property
    def primary_identifier(self) -> Identifier | None:
        for ident in self.identifiers:
            if ident.is_primary and ident.valid_to is None:
                return ident
        return None

    @property
    def current_identifiers(self) -> list[Identifier]:
        return [i for i in self.identifiers if i.valid_to is None]

    def __repr__(self) -> str:
        return f"<Identity {self.id} {self.kind}>"


class Identifier(db.Model):
    """A national identifier of an identity; rows are never deleted, only closed (history)."""

    __tablename__ = "identifiers"

    id = db.Column(db.Integer, primary_key=True)
    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, index=True)
    type = db.Column(_enum(IdentifierType, "identifier_type"), nullable=False)
    value = db.Column(db.String(32), nullable=False)
    is_primary = db.Column(db.Boolean, nullable=False, default=False)
    valid_from = db.Column(db.DateTime, nullable=False)
    # Set when the identifier was replaced or corrected; NULL while current.
    valid_to = db.Column(db.DateTime)
    change_reason = db.Column(db.String(200))

    identity = db.relationship("Identity", back_populates="identifiers")

    __table_args__ = (
        # One identity per current national identifier of a type.
        db.Index(
            "uq_identifiers_current_value",
            "type",
            "value",
            unique=True,
            sqlite_where=db.text("valid_to IS NULL"),
            postgresql_where=db.text("valid_to IS NULL"),
        ),
        # At most one current primary identifier per identity.
        db.Index(
            "uq_identifiers_current_primary",
            "identity_id",
            unique=True,
            sqlite_where=db.text("is_primary AND valid_to IS NULL"),
            postgresql_where=db.text("is_primary AND valid_to IS NULL"),
        ),
    )
