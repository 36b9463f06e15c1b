"""Tables of legacy systems, their imported accounts, and the import runs."""

from __future__ import annotations

import enum

from idp.extensions import db


class LinkState(enum.StrEnum):
    UNLINKED = "unlinked"
    AUTO_LINKED = "auto_linked"  # number matched, name and birth date agreed
    CLAIMED = "claimed"  # the person proved the old password
    CONFLICT = "conflict"  # number matched, something disagreed: an officer decides
    REJECTED = "rejected"  # an officer decided it is not this person's


LINKED_STATES = (LinkState.AUTO_LINKED, LinkState.CLAIMED)


class ExportEncoding(enum.StrEnum):
    UTF8 = "utf-8"
    CP1258 = "cp1258"  # Windows-1258; decodes to combining sequences, normalized to NFC


def _enum(cls, name):
    return db.Enum(
        cls, name=name, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class LegacySystem(db.Model):
    """An old system whose user table is imported (portal, one-stop-shop, sector system)."""

    __tablename__ = "legacy_systems"

    id = db.Column(db.Integer, primary_key=True)
    slug = db.Column(db.String(64), nullable=False, unique=True)
    name = db.Column(db.String(200), nullable=False)
    agency = db.Column(db.String(200), nullable=False)
    # Default scheme of the export (idp.legacy.hashes.SCHEMES); a row may name its own.
    hash_scheme = db.Column(db.String(32), nullable=False)
    # For salted_sha256: is the salt before or after the password.
    salt_position = db.Column(db.String(8))
    # Encoding its exports use; input that is neither this nor UTF-8 is rejected, not stored.
    encoding = db.Column(
        _enum(ExportEncoding, "legacy_encoding"), nullable=False, default=ExportEncoding.UTF8
    )
    # The relying party that is this system, if it became one (tokens tell it its user ids).
    client_id = db.Column(db.String(64), db.ForeignKey("clients.client_id"), unique=True)
    created_at = db.Column(db.DateTime, nullable=False)
    updated_at = db.Column(db.DateTime, nullable=False)

    __table_args__ = (
        db.CheckConstraint(
            "salt_position IS NULL OR salt_position IN ('before', 'after')", name="salt_position"
        ),
    )

    def __repr__(self) -> str:
        return f"<LegacySystem {self.slug}>"


class LegacyAccount(db.Model):
    """One user row of a legacy system, as exported, and its link to a unified identity."""

    __tablename__ = "legacy_accounts"

    id = db.Column(db.Integer, primary_key=True)
    system_id = db.Column(db.Integer, db.ForeignKey("legacy_systems.id"), nullable=False)
    # The user's id in that system: what the system will be told in tokens.
    legacy_user_id = db.Column(db.String(128), nullable=False)
    username = db.Column(db.String(200))
    # casefold(NFC(username)): lookup at login, whatever case the person types.
    username_key = db.Column(db.String(200))
    password_hash = db.Column(db.String(512))
    hash_scheme = db.Column(db.String(32))
    salt = db.Column(db.String(256))
    # Identifiers as given, canonical form; validated at import.
    personal_number = db.Column(db.String(12), index=True)
    id_number = db.Column(db.String(9))  # old 9-digit CMND
    tax_code = db.Column(db.String(14))
    full_name = db.Column(db.String(200))  # NFC
    birth_date = db.Column(db.Date)
    gender = db.Column(db.String(8))
    phone = db.Column(db.String(20))
    email = db.Column(db.String(254))
    # The input record as read (decoded, without the password hash and salt).
    raw = db.Column(db.JSON, nullable=False)
    link_state = db.Column(
        _enum(LinkState, "legacy_link_state"), nullable=False, default=LinkState.UNLINKED
    )
    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"))
    # For a conflict: the identity the number pointed at, shown to the officer.
    candidate_identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"))
    conflict_reason = db.Column(db.String(200))
    linked_by = db.Column(db.String(64))
    linked_at = db.Column(db.DateTime)
    # Which import run wrote the row last, and from which input line (duplicate detection).
    import_run = db.Column(db.String(32), nullable=False)
    source_line = db.Column(db.Integer, nullable=False)
    imported_at = db.Column(db.DateTime, nullable=False)
    updated_at = db.Column(db.DateTime, nullable=False)

    system = db.relationship("LegacySystem")

    __table_args__ = (
        db.UniqueConstraint("system_id", "legacy_user_id", name="uq_legacy_accounts_system_user"),
        db.Index("ix_legacy_accounts_system_username", "system_id", "username_key"),
        db.Index("ix_legacy_accounts_system_state", "system_id", "link_state"),
        # Partial indexes: only the rows they serve pay for them at import and linking.
        db.Index(
            "ix_legacy_accounts_id_number",
            "id_number",
            sqlite_where=db.text("id_number IS NOT NULL"),
            postgresql_where=db.text("id_number IS NOT NULL"),
        ),
        db.Index(
            "ix_legacy_accounts_identity_id",
            "identity_id",
            sqlite_where=db.text("identity_id IS NOT NULL"),
            postgresql_where=db.text("identity_id IS NOT NULL"),
        ),
        db.Index(
            "ix_legacy_accounts_candidate",
            "candidate_identity_id",
            sqlite_where=db.text("candidate_identity_id IS NOT NULL"),
            postgresql_where=db.text("candidate_identity_id IS NOT NULL"),
        ),
        # The officers' queue, oldest first.
        db.Index(
            "ix_legacy_accounts_conflicts",
            "updated_at",
            "id",
            sqlite_where=db.text("link_state = 'conflict'"),
            postgresql_where=db.text("link_state = 'conflict'"),
        ),
        # Linked states, and only they, name an identity.
        db.CheckConstraint(
            "(link_state IN ('auto_linked', 'claimed')) = (identity_id IS NOT NULL)",
            name="linked_has_identity",
        ),
    )

    @property
    def is_linked(self) -> bool:
        return self.link_state in LINKED_STATES

    def __repr__(self) -> str:
        return f"<LegacyAccount {self.system_id}:{self.legacy_user_id} {self.link_state}>"


class LegacyImportRun(db.Model):
    """One `flask legacy import`: what was read, imported and rejected."""

    __tablename__ = "legacy_import_runs"

    id = db.Column(db.String(32), primary_key=True)
    system_id = db.Column(db.Integer, db.ForeignKey("legacy_systems.id"), nullable=False, index=True)
    file_name = db.Column(db.String(500), nullable=False)
    file_format = db.Column(db.String(8), nullable=False)
    encoding = db.Column(db.String(16), nullable=False)
    started_at = db.Column(db.DateTime, nullable=False)
    finished_at = db.Column(db.DateTime)
    rows_read = db.Column(db.Integer, nullable=False, default=0)
    rows_imported = db.Column(db.Integer, nullable=False, default=0)
    rows_rejected = db.Column(db.Integer, nullable=False, default=0)
    # Fields dropped from imported rows (unusable phone or e-mail; kept in the raw row).
    fields_dropped = db.Column(db.Integer, nullable=False, default=0)
