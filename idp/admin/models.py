"""Tables of the admin console: in-person verifications, merges; indexes for the identity search."""

from __future__ import annotations

from idp.extensions import db
from idp.identity.models import Identifier, Identity

# Evidence an officer may record for an in-person verification (level 2).
EVIDENCE_TYPES = ("chip_citizen_id", "citizen_id", "identity_card", "passport")


class IdentityVerification(db.Model):
    """Evidence of an identity's assurance level, recorded by an officer in person."""

    __tablename__ = "identity_verifications"

    id = db.Column(db.Integer, primary_key=True)
    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, index=True)
    level = db.Column(db.SmallInteger, nullable=False)
    evidence_type = db.Column(db.String(32), nullable=False)
    document_number = db.Column(db.String(32), nullable=False)
    officer_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False)
    verified_at = db.Column(db.DateTime, nullable=False)
    note = db.Column(db.String(500), nullable=False)

    __table_args__ = (db.CheckConstraint("level IN (1, 2)", name="level"),)


class IdentityMerge(db.Model):
    """Two duplicate identities made one: merged_id became a tombstone pointing at survivor_id."""

    __tablename__ = "identity_merges"

    id = db.Column(db.Integer, primary_key=True)
    survivor_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, index=True)
    # An identity is merged away once.
    merged_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, unique=True)
    officer_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False)
    reason = db.Column(db.String(500), nullable=False)
    at = db.Column(db.DateTime, nullable=False)
    # Both identities before the merge and what moved (for review).
    snapshot = db.Column(db.JSON, nullable=False)


# Indexes the identity search needs on the identity package's tables (migration 0005):
# an exact match on any identifier value, current or historical ...
db.Index("ix_identifiers_value", Identifier.__table__.c.value)
# ... and a name prefix (LIKE 'key%') that also gives the order of the result page. On
# PostgreSQL text_pattern_ops makes LIKE use the index whatever the database collation.
db.Index(
    "ix_identities_name_search_prefix",
    Identity.__table__.c.name_search,
    Identity.__table__.c.id,
    postgresql_ops={"name_search": "text_pattern_ops"},
)
