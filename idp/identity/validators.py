"""Format rules of national identifiers and contact data.

Pure functions: the only I/O is reading the bundled prefix list once.

Every function returns the canonical form of a valid value or raises ValidationError naming the
field. `today` is always passed in so that the rules never depend on the clock.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from functools import cache
from importlib import resources

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from stdnum import exceptions as stdnum_errors
from stdnum.vn import mst

from idp.errors import ValidationError

# Separators people type or paste inside numbers ("001 099 012345", "001.099.012345").
_SEPARATORS = re.compile(r"[\s.\-]")
# [0-9] rather than \d: \d would accept Arabic-Indic and other Unicode digits.
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
_NINE_DIGITS = re.compile(r"[0-9]{9}")
_PASSPORT = re.compile(r"[A-Z0-9]{6,20}")

GENDERS = ("male", "female")
_MIN_BIRTH_DATE = date(1900, 1, 1)


@cache
def _prefix_file() -> dict:
    # Read once: the list changes only with a release, never at run time.
    path = resources.files("idp").joinpath("data", "personal_number_prefixes.json")
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _prefix_data() -> tuple[frozenset[str], tuple[tuple[int, int], ...]]:
    data = _prefix_file()
    ranges = tuple((int(low), int(high)) for low, high in data["abroad_ranges"])
    return frozenset(data["provinces"]), ranges


def province_names() -> dict[str, str]:
    """Province prefix -> province name (the pre-2025 names, NFC); a copy."""
    return dict(_prefix_file()["provinces"])


def is_known_prefix(prefix: str) -> bool:
    """True for one of the 63 province codes or a code in a configured abroad range."""
    provinces, ranges = _prefix_data()
    if prefix in provinces:
        return True
    if not (len(prefix) == 3 and prefix.isascii() and prefix.isdigit()):
        return False
    code = int(prefix)
    return any(low <= code <= high for low, high in ranges)


def _compact(value) -> str:
    if not isinstance(value, str):
        return ""
    return _SEPARATORS.sub("", value)


def _twelve_digits(value) -> str:
    digits = _compact(value)
    if not digits:
        raise ValidationError(_l("Enter the personal number."), field="personal_number")
    if not _TWELVE_DIGITS.fullmatch(digits):
        raise ValidationError(
            _l("The personal number must have exactly 12 digits."), field="personal_number"
        )
    return digits


def _facts(digits: str) -> dict:
    g, yy = int(digits[3]), int(digits[4:6])
    return {
        "prefix": digits[:3],
        "birth_year": 1900 + 100 * (g // 2) + yy,
        "gender": "male" if g % 2 == 0 else "female",
    }


def personal_number_facts(value: str) -> dict:
    """What the personal number encodes: {"prefix", "birth_year", "gender"}.

    Checks only the 12-digit format; use personal_number() to validate.
    """
    return _facts(_twelve_digits(value))


_PERSONAL_NUMBER_MESSAGES = {
    "personal_number": (
        _l("The first three digits of the personal number are not a province or country code."),
        _l("The personal number gives a birth year in the future."),
    ),
    "tax_code": (
        _l("The first three digits of the 12-digit tax code are not a province or country code."),
        _l("The 12-digit tax code gives a birth year in the future."),
    ),
}


def _check_personal_number(digits: str, *, today: date, field: str) -> dict:
    unknown_prefix, future_year = _PERSONAL_NUMBER_MESSAGES[field]
    facts = _facts(digits)
    if not is_known_prefix(facts["prefix"]):
        raise ValidationError(unknown_prefix, field=field)
    if facts["birth_year"] > today.year:
        raise ValidationError(future_year, field=field)
    return facts


def personal_number(
    value: str,
    *,
    birth_date: date | None = None,
    gender: str | None = None,
    today: date,
) -> str:
    """The 12-digit personal identification number (số định danh cá nhân).

    There is no check digit, so only the format, the prefix, the birth year and the agreement
    with the given birth date and gender can be checked.
    """
    digits = _twelve_digits(value)
    facts = _check_personal_number(digits, today=today, field="personal_number")
    if birth_date is not None and facts["birth_year"] != birth_date.year:
        raise ValidationError(
            _l("The personal number contradicts the date of birth."), field="personal_number"
        )
    if gender is not None and facts["gender"] != _gender(gender):
        raise ValidationError(
            _l("The personal number contradicts the gender."), field="personal_number"
        )
    return digits


def legacy_id_number(value: str) -> str:
    """The old 9-digit identity card number (CMND); a secondary identifier only."""
    digits = _compact(value)
    if not digits:
        raise ValidationError(_l("Enter the old identity card number."), field="legacy_id_number")
    if not _NINE_DIGITS.fullmatch(digits):
        raise ValidationError(
            _l("The old identity card number must have exactly 9 digits."),
            field="legacy_id_number",
        )
    return digits


def passport_number(value: str) -> str:
    """A passport number: 6 to 20 letters or digits, returned upper-case."""
    text = re.sub(r"\s", "", value) if isinstance(value, str) else ""
    if not text:
        raise ValidationError(_l("Enter the passport number."), field="passport")
    # isascii first: "ß".upper() is "SS", which must not sneak through.
    if not text.isascii() or not _PASSPORT.fullmatch(text.upper()):
        raise ValidationError(
            _l("The passport number must have 6 to 20 letters or digits."), field="passport"
        )
    return text.upper()


def tax_code(value: str, *, today: date) -> str:
    """An enterprise/tax code (MST): 10 digits, a branch `NNNNNNNNNN-NNN`, or 12 digits.

    The 12-digit form is a personal number used by an individual or household business
    (Circular 86/2024/TT-BTC); it has no check digit, so only its format is checked.
    """
    field = "tax_code"
    digits = _compact(value)
    if not digits:
        raise ValidationError(_l("Enter the tax code."), field=field)
    if not (digits.isascii() and digits.isdigit()):
        raise ValidationError(_l("The tax code must contain only digits."), field=field)
    head, dash, tail = value.rpartition("-")
    if dash and len(_compact(head)) == 10 and len(_compact(tail)) != 3:
        # "0100233488-01" is a mistyped branch, not the 12-digit personal number it compacts to.
        raise ValidationError(
            _l("The branch number of the tax code must have 3 digits."), field=field
        )
    if len(digits) == 12:
        _check_personal_number(digits, today=today, field=field)
        return digits
    if len(digits) not in (10, 13):
        raise ValidationError(_l("The tax code must have 10, 12 or 13 digits."), field=field)
    try:
        number = mst.validate(digits)
    except stdnum_errors.InvalidChecksum:
        raise ValidationError(
            _l("The check digit of the tax code is wrong."), field=field
        ) from None
    except stdnum_errors.InvalidComponent:
        if len(digits) == 13 and digits.endswith("000"):
            raise ValidationError(
                _l("The branch number of the tax code must be between 001 and 999."), field=field
            ) from None
        raise ValidationError(_l("The tax code is not a valid number."), field=field) from None
    except stdnum_errors.ValidationError:
        raise ValidationError(_l("The tax code is not a valid number."), field=field) from None
    return mst.format(number)


def tax_code_parent(value: str) -> str | None:
    """The parent's 10-digit code when value is a valid branch tax code, else None."""
    digits = _compact(value)
    if len(digits) == 13 and mst.is_valid(digits):
        return digits[:10]
    return None


def phone(value: str) -> str:
    """A phone number, Vietnamese by default, returned in E.164 (+84...)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(_l("Enter the phone number."), field="phone")
    try:
        number = phonenumbers.parse(value, "VN")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationError(_l("The phone number is not valid."), field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email(value: str) -> str:
    """An e-mail address, normalized and lower-cased (the syntax only; no DNS lookup)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(_l("Enter the e-mail address."), field="email")
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise ValidationError(_l("The e-mail address is not valid."), field="email") from None
    # Lower-cased whole so that one mailbox is one identity, whatever case was typed.
    return result.normalized.lower()


def _gender(value: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    if text not in GENDERS:
        raise ValidationError(_l("Choose a gender: male or female."), field="gender")
    return text


def gender(value: str) -> str:
    """The gender as the personal number encodes it: "male" or "female"."""
    return _gender(value)


def birth_date(value: date, *, today: date) -> date:
    """A date of birth: not in the future, not before 1900."""
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        raise ValidationError(_l("The date of birth is not a valid date."), field="birth_date")
    if value > today:
        raise ValidationError(_l("The date of birth cannot be in the future."), field="birth_date")
    if value < _MIN_BIRTH_DATE:
        raise ValidationError(_l("The date of birth cannot be before 1900."), field="birth_date")
    return value
