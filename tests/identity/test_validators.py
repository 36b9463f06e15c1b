"""Format rules of national identifiers and contact data (pure: no app, no database)."""

from __future__ import annotations

import json
import unicodedata
from datetime import date, datetime
from pathlib import Path

import pytest

import idp
from idp.errors import ValidationError
from idp.identity import validators as v

TODAY = date(2025, 7, 1)
# Hà Nội (001), G=0 (1900s, male), born 1999.
VALID = "001099012345"


def _fails(fn, *args, field: str, **kwargs) -> str:
    """Call fn expecting a ValidationError on field; return the English message."""
    with pytest.raises(ValidationError) as info:
        fn(*args, **kwargs)
    assert info.value.field == field
    return str(info.value.message)


# --- prefix data -------------------------------------------------------------------------------

PROVINCES = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn",
    "008": "Tuyên Quang", "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu",
    "014": "Sơn La", "015": "Yên Bái", "017": "Hòa Bình", "019": "Thái Nguyên",
    "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang", "025": "Phú Thọ",
    "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định",
    "037": "Ninh Bình", "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh",
    "044": "Quảng Bình", "045": "Quảng Trị", "046": "Thừa Thiên Huế", "048": "Đà Nẵng",
    "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định", "054": "Phú Yên",
    "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng",
    "070": "Bình Phước", "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu", "079": "Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang",
    "083": "Bến Tre", "084": "Trà Vinh", "086": "Vĩnh Long", "087": "Đồng Tháp",
    "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ", "093": "Hậu Giang",
    "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}  # fmt: skip


def test_prefix_file_has_the_63_pre_2025_provinces_in_nfc():
    names = v.province_names()
    assert len(names) == 63
    assert names == {code: unicodedata.normalize("NFC", name) for code, name in PROVINCES.items()}
    assert all(unicodedata.is_normalized("NFC", name) for name in names.values())


def test_prefix_file_keeps_the_abroad_range_as_data():
    path = Path(idp.__file__).parent / "data" / "personal_number_prefixes.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["abroad_ranges"] == [[101, 295]]
    assert data["note"]


def test_province_names_returns_a_copy():
    v.province_names()["001"] = "changed"
    assert v.province_names()["001"] == "Hà Nội"


@pytest.mark.parametrize("prefix", ["001", "074", "096", "101", "175", "295"])
def test_known_prefixes(prefix):
    assert v.is_known_prefix(prefix)


@pytest.mark.parametrize(
    "prefix", ["000", "003", "005", "097", "099", "100", "296", "999", "01", "0001", "", "abc"]
)
def test_unknown_prefixes(prefix):
    assert not v.is_known_prefix(prefix)


# --- personal number ---------------------------------------------------------------------------


def test_personal_number_valid():
    assert v.personal_number(VALID, today=TODAY) == VALID


@pytest.mark.parametrize(
    "typed",
    [
        " 001099012345 ",
        "001 099 012 345",
        "001.099.012.345",
        "001-099-012345",
        "001\u00a0099012345",
    ],
)
def test_personal_number_strips_separators(typed):
    assert v.personal_number(typed, today=TODAY) == VALID


@pytest.mark.parametrize("prefix", sorted(PROVINCES))
def test_personal_number_every_province_prefix(prefix):
    number = prefix + "099012345"
    assert v.personal_number(number, today=TODAY) == number


def test_personal_number_prefix_of_a_merged_province_stays_valid():
    # Bình Dương became part of Hồ Chí Minh City in 2025; its prefix is for life.
    assert v.personal_number("074185000123", today=TODAY) == "074185000123"


@pytest.mark.parametrize("prefix", ["101", "175", "295"])
def test_personal_number_births_abroad(prefix):
    assert v.personal_number(prefix + "099012345", today=TODAY) == prefix + "099012345"


@pytest.mark.parametrize(
    "value",
    [
        "00109901234",  # 11 digits
        "0010990123456",  # 13 digits
        "00109901234A",
        "O01099012345",  # letter O, not zero
        "001099012345\u0301",
        "\uff10\uff10\uff11\uff10\uff19\uff19\uff10\uff11\uff12\uff13\uff14\uff15",  # full-width
        "\u0660\u0660\u0661\u0660\u0669\u0669\u0660\u0661\u0662\u0663\u0664\u0665",  # Arabic-Indic
        "001099_012345",
        "+01099012345",
    ],
)
def test_personal_number_wrong_format(value):
    message = _fails(v.personal_number, value, today=TODAY, field="personal_number")
    assert message == "The personal number must have exactly 12 digits."


@pytest.mark.parametrize("value", ["", "   ", " - . ", None])
def test_personal_number_missing(value):
    message = _fails(v.personal_number, value, today=TODAY, field="personal_number")
    assert message == "Enter the personal number."


@pytest.mark.parametrize("prefix", ["000", "003", "005", "097", "100", "296", "999"])
def test_personal_number_unknown_prefix(prefix):
    message = _fails(v.personal_number, prefix + "099012345", today=TODAY, field="personal_number")
    assert "province or country code" in message


@pytest.mark.parametrize(
    ("number", "year", "gender"),
    [
        ("001099012345", 1999, "male"),
        ("001199012345", 1999, "female"),
        ("001000012345", 1900, "male"),
        ("001205012345", 2005, "male"),
        ("001325012345", 2025, "female"),
        ("101212012345", 2012, "male"),
        ("001410012345", 2110, "male"),
        ("001599012345", 2199, "female"),
        ("001899012345", 2399, "male"),
        ("001999012345", 2399, "female"),
    ],
)
def test_personal_number_facts(number, year, gender):
    assert v.personal_number_facts(number) == {
        "prefix": number[:3],
        "birth_year": year,
        "gender": gender,
    }


def test_personal_number_facts_checks_the_format():
    _fails(v.personal_number_facts, "12345", field="personal_number")


def test_personal_number_birth_year_this_year_is_valid():
    assert v.personal_number("001225012345", today=TODAY) == "001225012345"


@pytest.mark.parametrize("number", ["001226012345", "001399012345", "001400012345", "001999012345"])
def test_personal_number_future_birth_year(number):
    message = _fails(v.personal_number, number, today=TODAY, field="personal_number")
    assert message == "The personal number gives a birth year in the future."


def test_personal_number_future_year_depends_on_today_not_the_clock():
    assert v.personal_number("001230012345", today=date(2030, 1, 1)) == "001230012345"
    _fails(v.personal_number, "001230012345", today=date(2029, 12, 31), field="personal_number")


@pytest.mark.parametrize("born", [date(1999, 1, 1), date(1999, 12, 31)])
def test_personal_number_agrees_with_birth_date(born):
    assert v.personal_number(VALID, birth_date=born, today=TODAY) == VALID


@pytest.mark.parametrize(
    ("number", "born"),
    [
        ("001099012345", date(1998, 12, 31)),
        ("001099012345", date(2000, 1, 1)),
        # G digit says 1900s, the birth date 2000s: same YY, wrong century.
        ("001000012345", date(2000, 5, 1)),
        ("001200012345", date(1900, 5, 1)),
    ],
)
def test_personal_number_contradicts_birth_date(number, born):
    message = _fails(
        v.personal_number, number, birth_date=born, today=TODAY, field="personal_number"
    )
    assert message == "The personal number contradicts the date of birth."


@pytest.mark.parametrize(
    ("number", "gender"),
    [
        ("001099012345", "male"),
        ("001199012345", "female"),
        ("001205012345", "male"),
        ("001305012345", "female"),
    ],
)
def test_personal_number_agrees_with_gender(number, gender):
    assert v.personal_number(number, gender=gender, today=TODAY) == number


@pytest.mark.parametrize(
    ("number", "gender"),
    [
        ("001099012345", "female"),
        ("001199012345", "male"),
        ("001205012345", "female"),
        ("001305012345", "male"),
    ],
)
def test_personal_number_contradicts_gender(number, gender):
    message = _fails(v.personal_number, number, gender=gender, today=TODAY, field="personal_number")
    assert message == "The personal number contradicts the gender."


def test_personal_number_with_invalid_gender_names_the_gender_field():
    _fails(v.personal_number, VALID, gender="other", today=TODAY, field="gender")


def test_personal_number_all_cross_checks_together():
    number = v.personal_number(
        "079 305 000 001", birth_date=date(2005, 3, 8), gender="female", today=TODAY
    )
    assert number == "079305000001"


# --- legacy CMND -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("123456789", "123456789"), (" 123 456 789 ", "123456789"), ("023.456.789", "023456789")],
)
def test_legacy_id_number_valid(typed, expected):
    assert v.legacy_id_number(typed) == expected


@pytest.mark.parametrize(
    "value", ["12345678", "1234567890", "001099012345", "12345678A", "１２３４５６７８９"]
)
def test_legacy_id_number_invalid(value):
    message = _fails(v.legacy_id_number, value, field="legacy_id_number")
    assert message == "The old identity card number must have exactly 9 digits."


@pytest.mark.parametrize("value", ["", None])
def test_legacy_id_number_missing(value):
    _fails(v.legacy_id_number, value, field="legacy_id_number")


# --- passport ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("B1234567", "B1234567"),
        ("b 123 4567", "B1234567"),
        ("C12345", "C12345"),
        ("A" * 20, "A" * 20),
    ],
)
def test_passport_number_valid(typed, expected):
    assert v.passport_number(typed) == expected


@pytest.mark.parametrize(
    "value", ["B1234", "A" * 21, "B123-4567", "B123/4567", "Ä1234567", "ß1234567", "B12345６"]
)
def test_passport_number_invalid(value):
    message = _fails(v.passport_number, value, field="passport")
    assert message == "The passport number must have 6 to 20 letters or digits."


@pytest.mark.parametrize("value", ["", "   ", None])
def test_passport_number_missing(value):
    _fails(v.passport_number, value, field="passport")


# --- tax code ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["0100233488", "0314409058", "0100112437"])
def test_tax_code_known_good(code):
    assert v.tax_code(code, today=TODAY) == code


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("01.00.233.488", "0100233488"),
        (" 0100 233 488 ", "0100233488"),
        ("0100233488-001", "0100233488-001"),
        ("0100233488001", "0100233488-001"),
        ("0100233488 - 999", "0100233488-999"),
    ],
)
def test_tax_code_canonical_form(typed, expected):
    assert v.tax_code(typed, today=TODAY) == expected


def test_tax_code_bad_check_digit():
    message = _fails(v.tax_code, "0100233487", today=TODAY, field="tax_code")
    assert message == "The check digit of the tax code is wrong."


def test_tax_code_branch_with_bad_parent_check_digit():
    message = _fails(v.tax_code, "0100233487-001", today=TODAY, field="tax_code")
    assert message == "The check digit of the tax code is wrong."


def test_tax_code_no_check_digit_exists_when_remainder_is_zero():
    # The weighted sum of 010100006 is 0 mod 11: 10 - 0 = 10 is no digit, so no code is valid.
    for last in "0123456789":
        message = _fails(v.tax_code, "010100006" + last, today=TODAY, field="tax_code")
        assert message == "The check digit of the tax code is wrong."


@pytest.mark.parametrize("code", ["0100233488-000", "0100233488000"])
def test_tax_code_branch_000_is_invalid(code):
    message = _fails(v.tax_code, code, today=TODAY, field="tax_code")
    assert message == "The branch number of the tax code must be between 001 and 999."


@pytest.mark.parametrize("code", ["010023348", "01002334881", "01002334880011", "0100-2334-880011"])
def test_tax_code_wrong_length(code):
    message = _fails(v.tax_code, code, today=TODAY, field="tax_code")
    assert message == "The tax code must have 10, 12 or 13 digits."


@pytest.mark.parametrize("code", ["010023348A", "0100233488/001", "０１００２３３４８８"])
def test_tax_code_not_digits(code):
    message = _fails(v.tax_code, code, today=TODAY, field="tax_code")
    assert message == "The tax code must contain only digits."


@pytest.mark.parametrize(
    "code", ["0100233488-01", "0100233488-1", "0100233488-0001", "0100233488-"]
)
def test_tax_code_branch_suffix_must_have_three_digits(code):
    # Without this, "0100233488-01" would compact to a valid 12-digit personal number.
    message = _fails(v.tax_code, code, today=TODAY, field="tax_code")
    assert message == "The branch number of the tax code must have 3 digits."


def test_tax_code_zero_sequence_is_invalid():
    _fails(v.tax_code, "0100000000", today=TODAY, field="tax_code")


@pytest.mark.parametrize("value", ["", "  ", None])
def test_tax_code_missing(value):
    assert _fails(v.tax_code, value, today=TODAY, field="tax_code") == "Enter the tax code."


@pytest.mark.parametrize(
    "typed", ["001099012345", "001 099 012 345", "074185000123", "101212012345"]
)
def test_tax_code_personal_number_of_a_household_business(typed):
    assert v.tax_code(typed, today=TODAY) == typed.replace(" ", "")


@pytest.mark.parametrize("code", ["003099012345", "000099012345", "296099012345"])
def test_tax_code_personal_number_unknown_prefix(code):
    message = _fails(v.tax_code, code, today=TODAY, field="tax_code")
    assert "province or country code" in message


def test_tax_code_personal_number_future_birth_year():
    message = _fails(v.tax_code, "001226012345", today=TODAY, field="tax_code")
    assert "future" in message


@pytest.mark.parametrize(
    ("code", "parent"),
    [
        ("0100233488-001", "0100233488"),
        ("0100233488001", "0100233488"),
        ("0100233488", None),
        ("001099012345", None),
        ("0100233488-000", None),
        ("0100233487-001", None),
        ("", None),
    ],
)
def test_tax_code_parent(code, parent):
    assert v.tax_code_parent(code) == parent


# --- phone -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("0912345678", "+84912345678"),
        ("091 234 5678", "+84912345678"),
        ("091.234.5678", "+84912345678"),
        ("+84 91 234 56 78", "+84912345678"),
        ("+84912345678", "+84912345678"),
        ("(024) 3822 3456", "+842438223456"),
        # Foreign numbers are accepted when valid: residents abroad keep their numbers.
        ("+33 1 42 68 53 00", "+33142685300"),
    ],
)
def test_phone_valid(typed, expected):
    assert v.phone(typed) == expected


@pytest.mark.parametrize(
    "value",
    ["0123456789", "12345", "09123456789012", "abc", "+84 12", "+84 91 234 567", "0912 345 67a"],
)
def test_phone_invalid(value):
    assert _fails(v.phone, value, field="phone") == "The phone number is not valid."


@pytest.mark.parametrize("value", ["", "  ", None])
def test_phone_missing(value):
    _fails(v.phone, value, field="phone")


# --- e-mail ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("nguyen.van.a@example.com", "nguyen.van.a@example.com"),
        ("Nguyen.Van.A@Example.COM", "nguyen.van.a@example.com"),
        ("  an@so-ttt.gov.vn ", "an@so-ttt.gov.vn"),
    ],
)
def test_email_valid(typed, expected):
    assert v.email(typed) == expected


@pytest.mark.parametrize(
    "value",
    ["no-at-sign", "a@b", "a@@example.com", "a b@example.com", "a@example..com", "a@localhost"],
)
def test_email_invalid(value):
    assert _fails(v.email, value, field="email") == "The e-mail address is not valid."


@pytest.mark.parametrize("value", ["", "   ", None])
def test_email_missing(value):
    _fails(v.email, value, field="email")


# --- gender and date of birth ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"), [("male", "male"), ("female", "female"), (" Female ", "female")]
)
def test_gender_valid(typed, expected):
    assert v.gender(typed) == expected


@pytest.mark.parametrize("value", ["", "m", "f", "nam", "nữ", "other", None])
def test_gender_invalid(value):
    _fails(v.gender, value, field="gender")


@pytest.mark.parametrize("born", [TODAY, date(2000, 2, 29), date(1900, 1, 1)])
def test_birth_date_valid(born):
    assert v.birth_date(born, today=TODAY) == born


def test_birth_date_accepts_a_datetime_as_its_date():
    assert v.birth_date(datetime(1999, 5, 1, 12, 30), today=TODAY) == date(1999, 5, 1)


def test_birth_date_in_the_future():
    message = _fails(v.birth_date, date(2025, 7, 2), today=TODAY, field="birth_date")
    assert message == "The date of birth cannot be in the future."


def test_birth_date_before_1900():
    message = _fails(v.birth_date, date(1899, 12, 31), today=TODAY, field="birth_date")
    assert message == "The date of birth cannot be before 1900."


@pytest.mark.parametrize("value", [None, "1999-05-01", 19990501])
def test_birth_date_not_a_date(value):
    _fails(v.birth_date, value, today=TODAY, field="birth_date")
