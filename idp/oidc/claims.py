"""Claims released at the userinfo endpoint, by scope (documented in docs/claims.md)."""

from __future__ import annotations

from idp.identity.models import Identity
from idp.identity.names import split_name
from idp.legacy import services as legacy_services


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


def acting_userinfo_claims(business: dict, sub: str, person: Identity, person_sub: str,
                           scopes: list[str]) -> dict:
    """Userinfo of a token issued while a person acted for a business.

    The business is the subject: `sub` is its subject identifier and `business_id`,
    `business_name`, `representative_role` name it and the person's role; `national_id` (with
    that scope) is its tax code. `act` (RFC 8693 §4.1) names the person who acted: their `sub`
    for this client and, by scope, their own claims.
    """
    claims: dict = {"sub": sub, **business}
    if "national_id" in scopes and business.get("business_id"):
        claims.update(national_id=business["business_id"], national_id_type="tax_code")
    claims["act"] = userinfo_claims(person, person_sub, scopes)
    return {k: v for k, v in claims.items() if v is not None}


def legacy_claims(identity_id, client_id: str | None) -> dict:
    """The person's user ids in the old system that IS this client, and in no other."""
    if not client_id:
        return {}
    accounts = legacy_services.linked_accounts(identity_id, client_id=client_id)
    if not accounts:
        return {}
    return {"legacy_accounts": [{"system": a["system"], "user_id": a["legacy_user_id"]} for a in accounts]}
