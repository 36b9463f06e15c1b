"""Claims released at the userinfo endpoint, by scope (documented in docs/claims.md)."""

from __future__ import annotations

from idp.identity.models import Identity
from idp.identity.names import split_name


def userinfo_claims(identity: Identity, sub: str, scopes: list[str]) -> dict:
    claims: dict = {"sub": sub}
    if "profile" in scopes:
        family, middle, given = split_name(identity.full_name)
        claims.update(
            name=identity.full_name,
            family_name=family,
            middle_name=middle or None,
            given_name=given,
            birthdate=identity.birth_date.isoformat() if identity.birth_date else None,
            gender=identity.gender.value if identity.gender else None,
            assurance_level=identity.assurance_level,
        )
    if "email" in scopes and identity.email:
        # Contact verification arrives with the recovery issue; until then nothing is verified.
        claims.update(email=identity.email, email_verified=False)
    if "phone" in scopes and identity.phone:
        claims.update(phone_number=identity.phone, phone_number_verified=False)
    if "national_id" in scopes:
        primary = identity.primary_identifier
        if primary is not None:
            claims.update(national_id=primary.value, national_id_type=primary.type.value)
    return {k: v for k, v in claims.items() if v is not None}
