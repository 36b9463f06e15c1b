"""From upstream claims to the unified identity's fields, and from upstream acr to assurance.

Pure functions over plain values: the claim mapping and the acr mapping are data (one
upstream provider's configuration), validated when the provider is added.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime

from idp.accounts.factors import ACR_LOW, ACR_SUBSTANTIAL

FIELDS = ("personal_number", "full_name", "birth_date", "gender", "phone", "email")
# Fields without which no identity can be created or matched.
REQUIRED_FIELDS = ("personal_number", "full_name")
# The acr values this provider issues, weakest first (a session never claims more than it has).
ACR_ORDER = (ACR_LOW, ACR_SUBSTANTIAL, "urn:eid:loa:high")
DEFAULT_ACR_ENTRY = {"identity_level": 1, "amr": ["fed"]}
_AMR_VALUE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
_SEPARATORS = re.compile(r"[\s.\-]")

# Numeric codes differ between systems: give them with "gender_values" in the mapping.
MALE = {"male", "m", "nam"}
FEMALE = {"female", "f", "nữ", "nu"}


class MappingError(ValueError):
    """A claim or acr mapping is not usable; the message names the problem."""


@dataclass
class UpstreamPerson:
    """What an upstream said about the person, mapped onto our fields (None when absent)."""

    issuer: str
    subject: str
    personal_number: str | None = None
    full_name: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    phone: str | None = None
    email: str | None = None
    # The mapped values as received, for the officers' queue (no tokens).
    snapshot: dict = field(default_factory=dict)


@dataclass
class Assurance:
    """What one upstream login proves: the identity level and the session's amr."""

    upstream_acr: str | None
    identity_level: int
    amr: list[str]
    session_acr: str | None = None


# --- validation of the configuration -------------------------------------------------------

def validate_claim_mapping(mapping) -> dict:
    """{field: [claim names]}; a single name is accepted and made a list."""
    if not isinstance(mapping, dict):
        raise MappingError("the claim mapping must be a JSON object")
    out = {}
    for key, value in mapping.items():
        if key == "gender_values":
            out[key] = _gender_values(value)
            continue
        if key not in FIELDS:
            raise MappingError(f"unknown field {key!r} in the claim mapping (known: {', '.join(FIELDS)})")
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise MappingError(f"claim mapping {key!r}: give a claim name or a list of claim names")
        out[key] = names
    for key in REQUIRED_FIELDS:
        if not out.get(key):
            raise MappingError(f"the claim mapping must name the claim of {key!r}")
    return out


def _gender_values(value) -> dict:
    if not isinstance(value, dict) or set(value) - {"male", "female"}:
        raise MappingError('gender_values must be {"male": [...], "female": [...]}')
    return {k: [str(v).casefold() for v in vs] for k, vs in value.items()}


def validate_acr_mapping(mapping) -> dict:
    """{upstream acr: {"identity_level": 1|2, "amr": [...], "session_acr": optional}}."""
    if not isinstance(mapping, dict) or not mapping:
        raise MappingError("the acr mapping must be a non-empty JSON object")
    out = {}
    for acr, entry in mapping.items():
        if not isinstance(entry, dict):
            raise MappingError(f"acr {acr!r}: the entry must be an object")
        level = entry.get("identity_level")
        if level not in (1, 2) or isinstance(level, bool):
            raise MappingError(f"acr {acr!r}: identity_level must be 1 or 2")
        amr = entry.get("amr", ["fed"])
        if not isinstance(amr, list) or not all(isinstance(a, str) and _AMR_VALUE.match(a) for a in amr):
            raise MappingError(f"acr {acr!r}: amr must be a list of short lower-case values")
        session_acr = entry.get("session_acr")
        if session_acr is not None and session_acr not in ACR_ORDER:
            raise MappingError(f"acr {acr!r}: session_acr must be one of {', '.join(ACR_ORDER)}")
        clean = {"identity_level": level, "amr": list(dict.fromkeys(amr))}
        if session_acr:
            clean["session_acr"] = session_acr
        out[str(acr)] = clean
    return out


# --- at login --------------------------------------------------------------------------------

def needed_claims(mapping: dict) -> set[str]:
    """Every claim name the mapping may read."""
    return {name for key, names in mapping.items() if key in FIELDS for name in names}


def missing_fields(mapping: dict, claims: dict) -> list[str]:
    """Mapped fields none of whose claims is present (userinfo may have them)."""
    return [key for key in FIELDS if mapping.get(key) and _first(claims, mapping[key]) is None]


def _first(claims: dict, names: list[str]):
    for name in names:
        value = claims.get(name)
        if value not in (None, "", [], {}):
            return value
    return None


def map_person(mapping: dict, claims: dict, *, issuer: str, subject: str) -> UpstreamPerson:
    """Read the mapped claims; values that cannot be read become None (never guessed)."""
    raw = {key: _first(claims, mapping[key]) for key in FIELDS if mapping.get(key)}
    person = UpstreamPerson(issuer=issuer, subject=subject)
    person.personal_number = _number(raw.get("personal_number"))
    name = raw.get("full_name")
    person.full_name = unicodedata.normalize("NFC", " ".join(name.split())) if isinstance(name, str) and name.strip() else None
    person.birth_date = parse_birth_date(raw.get("birth_date"))
    person.gender = _gender(raw.get("gender"), mapping.get("gender_values"))
    person.phone = raw["phone"] if isinstance(raw.get("phone"), str) else None
    person.email = raw["email"] if isinstance(raw.get("email"), str) else None
    person.snapshot = {key: value for key, value in raw.items() if isinstance(value, (str, int, bool))}
    return person


def _number(value) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:012d}"
    if not isinstance(value, str):
        return None
    digits = _SEPARATORS.sub("", value)
    return digits if len(digits) == 12 and digits.isascii() and digits.isdigit() else None


def parse_birth_date(value) -> date | None:
    """YYYY-MM-DD (OpenID Connect) or DD/MM/YYYY; partial dates ("0000-05-14", "1999") are absent."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            parsed = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        return parsed if parsed.year > 1800 else None
    return None


def _gender(value, custom: dict | None) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = unicodedata.normalize("NFC", str(value)).strip().casefold()
    if custom:
        for gender, values in custom.items():
            if text in values:
                return gender
        return None
    if text in MALE:
        return "male"
    if text in FEMALE:
        return "female"
    return None


def assurance_for(acr_mapping: dict, upstream_acr) -> Assurance:
    """The entry for the upstream's acr, the "*" entry, or level 1 with amr ["fed"]."""
    acr = upstream_acr if isinstance(upstream_acr, str) else None
    entry = (acr_mapping.get(acr) if acr is not None else None) or acr_mapping.get("*") or DEFAULT_ACR_ENTRY
    return Assurance(
        upstream_acr=acr,
        identity_level=entry["identity_level"],
        amr=list(entry.get("amr") or ["fed"]),
        session_acr=entry.get("session_acr"),
    )


def acr_rank(acr: str | None) -> int:
    return ACR_ORDER.index(acr) if acr in ACR_ORDER else -1


def session_amr(assurance: Assurance, *, identity_level: int, acr_for) -> list[str]:
    """The amr for the session, capped so that its acr never exceeds the entry's session_acr."""
    amr = list(assurance.amr)
    if assurance.session_acr and acr_rank(acr_for(identity_level, amr)) > acr_rank(assurance.session_acr):
        amr = [a for a in amr if a not in ("mfa", "otp", "hwk", "swk")]
    return amr
