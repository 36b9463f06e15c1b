"""The audit actions: every action recorded must be listed here and in docs/audit.md."""

from __future__ import annotations

# action -> what happened (the actor and target conventions are in docs/audit.md).
ACTIONS: dict[str, str] = {
    # Login history (sensitive personal data: redacted after AUDIT_LOGIN_RETENTION_DAYS).
    "login.succeeded": "a person logged in (any method)",
    "login.failed": "a login attempt failed (wrong password, unknown account, second factor)",
    "login.throttled": "a login attempt was refused by throttling or the growing delay",
    "login.locked": "a factor locked after too many consecutive failures",
    "logout": "an SSO session ended (logout, timeout, end of all sessions)",
    # Credentials and factors.
    "password.changed": "a person changed their password",
    "password.reset": "a password was set by an administrator or a reset",
    "factor.totp_enabled": "an authenticator app was enrolled",
    "factor.totp_removed": "an authenticator app was removed",
    "factor.recovery_codes_generated": "new recovery codes replaced the old ones",
    "factor.recovery_code_used": "a recovery code was used",
    "factor.unlocked": "a locked factor was unlocked",
    "contact.changed": "a phone number or e-mail address was added, changed or verified",
    # Consent.
    "consent.granted": "a person consented to a relying party's scopes",
    "consent.withdrawn": "a person withdrew a consent",
    # Tokens.
    "token.revoked": "a token was revoked (revocation endpoint, logout, consent withdrawal)",
    "token.reuse_detected": "a rotated refresh token or a redeemed code was presented again",
    # Relying parties.
    "client.created": "a relying party was registered",
    "client.updated": "a relying party's registration changed",
    "client.secret_rotated": "a relying party got a new secret",
    "client.disabled": "a relying party was disabled",
    "client.enabled": "a relying party was enabled again",
    # Signing keys.
    "key.created": "a signing key was generated",
    "key.rotated": "signing keys were rotated",
    "key.retired": "a signing key was retired",
    # Administration.
    "admin.identity.created": "an officer created an identity",
    "admin.identity.updated": "an officer changed an identity's data",
    "admin.identity.verified": "an officer recorded an in-person verification (level 2)",
    "admin.identifier.corrected": "an officer corrected a national identifier (history kept)",
    "admin.identity.locked": "an officer locked an identity",
    "admin.identity.unlocked": "an officer unlocked an identity",
    "admin.identity.merged": "an officer merged two identities",
    "admin.identity.viewed": "an officer opened an identity's record",
    "admin.role.granted": "a role was granted",
    "admin.role.revoked": "a role was revoked",
    "admin.sessions.ended": "an officer ended a person's sessions",
    # Legacy systems.
    "legacy.imported": "legacy accounts were imported",
    "legacy.linked": "a legacy account was linked to an identity",
    "legacy.unlinked": "a legacy account link was removed",
    "legacy.rejected": "an officer rejected a legacy account's candidate identity",
    # Upstream identity providers.
    "federation.linked": "an upstream identity was linked to an identity",
    "federation.unlinked": "an upstream identity link was removed",
    # Businesses and their representatives.
    "business.created": "a business identity was registered (officer, import or approved request)",
    "business.imported": "businesses were imported from a registry extract",
    "business.status_changed": "a business was suspended, dissolved or made active again",
    "business.requested": "a legal representative asked to register their business",
    "business.request.approved": "an officer approved a business registration request",
    "business.request.rejected": "an officer refused a business registration request",
    "business.representative.granted": "a person was made a representative of a business",
    "business.representative.revoked": "a representation of a business was revoked",
    "business.representative.expired": "a representation of a business ended at its validity end",
    # The audit log itself.
    "audit.redacted": "login history past its retention was redacted",
    "audit.exported": "audit entries were exported",
}

# Patterns of the login history, redacted after AUDIT_LOGIN_RETENTION_DAYS ("x.*" is a prefix).
LOGIN_HISTORY_ACTIONS: tuple[str, ...] = ("login.*", "logout")
