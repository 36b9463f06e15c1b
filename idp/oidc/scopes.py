"""Scopes, the claims each one releases, and the levels of assurance (acr values)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

ACR_LOW = "urn:eid:loa:low"
ACR_SUBSTANTIAL = "urn:eid:loa:substantial"
ACR_HIGH = "urn:eid:loa:high"
ACR_ORDER = [ACR_LOW, ACR_SUBSTANTIAL, ACR_HIGH]

# scope -> claims it releases at the userinfo endpoint.
SCOPE_CLAIMS = {
    "openid": ["sub"],
    "profile": ["name", "family_name", "middle_name", "given_name", "birthdate", "gender", "assurance_level"],
    "email": ["email", "email_verified"],
    "phone": ["phone_number", "phone_number_verified"],
    "address": ["address"],
    "national_id": ["national_id", "national_id_type"],
    "offline_access": [],
    # Acting for a business (docs/claims.md, "Business context"): released only when the person
    # chose a business they represent; `sub` is then the business's.
    "business": ["business_id", "business_name", "representative_role", "act"],
    # The person's user ids in the old system that is the requesting client (docs/legacy.md).
    "legacy": ["legacy_accounts"],
}

# What the consent page says each scope gives, in plain words.
SCOPE_DESCRIPTIONS = {
    "openid": _l("A number that identifies you to this system"),
    "profile": _l("Your full name, date of birth, gender and identity level"),
    "email": _l("Your e-mail address"),
    "phone": _l("Your phone number"),
    "address": _l("Your address"),
    "national_id": _l("Your personal identification number (or your business's tax code)"),
    "offline_access": _l("Access while you are not using the system (until you withdraw it)"),
    "legacy": _l("Your user number in this system's own old account, if you linked it"),
    "business": _l("The business you choose to act for (its tax code and name) and your role in it"),
}

SUPPORTED_SCOPES = list(SCOPE_CLAIMS)


def acr_rank(acr: str | None) -> int:
    return ACR_ORDER.index(acr) if acr in ACR_ORDER else -1


def claims_for(scopes) -> list[str]:
    claims: list[str] = []
    for scope in scopes:
        for claim in SCOPE_CLAIMS.get(scope, []):
            if claim not in claims:
                claims.append(claim)
    return claims
