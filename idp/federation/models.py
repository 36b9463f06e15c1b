"""Tables of the federation upstream: providers, links to identities, the officers' queue."""

from __future__ import annotations

from idp.extensions import db


class UpstreamProvider(db.Model):
    """An OpenID Connect provider people may log in through (the national e-ID, ...)."""

    __tablename__ = "upstream_providers"

    id = db.Column(db.Integer, primary_key=True)
    # In URLs (/federation/<slug>/...) and in the shared store's keys.
    slug = db.Column(db.String(40), nullable=False, unique=True)
    # Shown to people (Vietnamese); button_label, when set, is the whole login button text.
    display_name = db.Column(db.String(200), nullable=False)
    button_label = db.Column(db.String(200))
    # Exactly as the upstream's discovery document states it.
    issuer = db.Column(db.String(500), nullable=False, unique=True)
    # Discovery metadata, cached; refreshed when older than METADATA_MAX_AGE.
    metadata_json = db.Column(db.JSON, nullable=False)
    metadata_fetched_at = db.Column(db.DateTime, nullable=False)
    client_id = db.Column(db.String(255), nullable=False)
    # SecretBox ciphertext bound to the context "upstream:<slug>".
    client_secret_encrypted = db.Column(db.Text, nullable=False)
    token_auth_method = db.Column(db.String(40), nullable=False, default="client_secret_basic")
    # Space-separated, as sent in the authorization request.
    scopes = db.Column(db.String(500), nullable=False)
    # Extra authorization request parameters (e.g. acr_values), JSON object of strings.
    authorize_params = db.Column(db.JSON, nullable=False, default=dict)
    # Field -> upstream claim name(s): personal_number, full_name, birth_date, gender, phone, email.
    claim_mapping = db.Column(db.JSON, nullable=False)
    # Upstream acr -> {"identity_level": 1|2, "amr": [...], "session_acr": ...}; "*" is the default.
    acr_mapping = db.Column(db.JSON, nullable=False)
    enabled = db.Column(db.Boolean, nullable=False, default=True)
    # Order of the buttons on the login page (ascending).
    position = db.Column(db.Integer, nullable=False, default=0)
    created_at = db.Column(db.DateTime, nullable=False)
    updated_at = db.Column(db.DateTime, nullable=False)

    def __repr__(self) -> str:
        return f"<UpstreamProvider {self.slug}>"


class UpstreamLink(db.Model):
    """An upstream account (issuer, sub) that logs in as one identity."""

    __tablename__ = "upstream_links"

    id = db.Column(db.Integer, primary_key=True)
    # The issuer, not the provider row: a provider removed and added again keeps its links.
    issuer = db.Column(db.String(500), nullable=False)
    subject = db.Column(db.String(255), nullable=False)
    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), nullable=False, index=True)
    provider_slug = db.Column(db.String(40), nullable=False)
    linked_at = db.Column(db.DateTime, nullable=False)
    last_login_at = db.Column(db.DateTime)
    # Evidence of identity verification through this upstream (level 2), when there was one.
    verified_level = db.Column(db.SmallInteger)
    verified_acr = db.Column(db.String(200))
    verified_at = db.Column(db.DateTime)

    __table_args__ = (db.UniqueConstraint("issuer", "subject"),)


class FederationConflict(db.Model):
    """An upstream login that matched an identity by number but disagreed: an officer decides."""

    __tablename__ = "federation_conflicts"

    id = db.Column(db.Integer, primary_key=True)
    provider_slug = db.Column(db.String(40), nullable=False)
    issuer = db.Column(db.String(500), nullable=False)
    subject = db.Column(db.String(255), nullable=False)
    # The identity the personal number names, if any.
    identity_id = db.Column(db.Uuid, db.ForeignKey("identities.id"), index=True)
    # number_mismatch, name_differs, birth_date_differs, birth_date_missing, invalid_claims ...
    reason = db.Column(db.String(200), nullable=False)
    # The mapped upstream claims as received (personal data: for officers only).
    claims = db.Column(db.JSON, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False)
    resolved_at = db.Column(db.DateTime)
    resolved_by = db.Column(db.String(200))
    resolution = db.Column(db.String(200))

    __table_args__ = (db.Index("ix_federation_conflicts_open", "resolved_at", "created_at"),)
