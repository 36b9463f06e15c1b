"""Vietnamese names: NFC normalization, accent-insensitive search key, split (pure)."""

from __future__ import annotations

import unicodedata

import pytest

from idp.errors import ValidationError
from idp.identity.names import normalize_name, search_key, split_name


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _rejected(value) -> str:
    with pytest.raises(ValidationError) as info:
        normalize_name(value)
    assert info.value.field == "full_name"
    return str(info.value.message)


# --- normalize_name ----------------------------------------------------------------------------


def test_nfd_input_comes_out_nfc():
    typed = nfd("Nguyễn Thị Hoà")
    assert typed != nfc(typed)  # the fixture really is decomposed
    result = normalize_name(typed)
    assert result == nfc("Nguyễn Thị Hoà")
    assert unicodedata.is_normalized("NFC", result)
    assert all(not unicodedata.combining(c) for c in result)


def test_nfc_input_is_kept_as_typed():
    # Case and tone placement are the person's: the registered string is authoritative.
    assert normalize_name("Trần thị THUỶ") == "Trần thị THUỶ"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("  Nguyễn   Văn  An  ", "Nguyễn Văn An"),
        ("Nguyễn\tVăn\nAn\r\n", "Nguyễn Văn An"),
        ("Nguyễn\u00a0Văn\u3000An", "Nguyễn Văn An"),
    ],
)
def test_whitespace_is_collapsed_and_stripped(typed, expected):
    assert normalize_name(typed) == expected


@pytest.mark.parametrize(
    "name",
    [
        "Lê Văn Tám",
        "Đặng Thị Ngọc Hân",
        "H'Hen Niê",
        "Y-Moan Ênuôl",
        "Nguyễn Văn A.",
        "Jean-Pierre O'Brien",
        "Ksor Y Phun",
    ],
)
def test_allowed_names(name):
    assert normalize_name(name) == name


def test_typographic_apostrophe_becomes_ascii():
    assert normalize_name("H\u2019Hen Niê") == "H'Hen Niê"


@pytest.mark.parametrize("value", ["", "   ", "\t\n", None])
def test_empty_name(value):
    assert _rejected(value) == "Enter the full name."


def test_length_limit_counts_nfc_characters():
    assert len(normalize_name("A" * 200)) == 200
    # 200 letters in NFD are 400 code points but 200 after NFC.
    assert len(normalize_name(nfd("Ế" * 200))) == 200


def test_too_long():
    assert _rejected("A" * 201) == "The full name must have at most 200 characters."


@pytest.mark.parametrize("value", ["Nguyễn Văn 2", "Lê 3 An", "An\uff11", "An\u0663"])
def test_digits_rejected(value):
    assert _rejected(value) == "The full name must not contain digits."


@pytest.mark.parametrize(
    "value", ["Nguyễn\x00An", "An\x1f", "An\x1cBình", "An\x7f", "An\x85Bình", "An\x1b[31m"]
)
def test_control_characters_rejected(value):
    assert _rejected(value) == "The full name contains control characters."


@pytest.mark.parametrize(
    "value",
    [
        "An@example",
        "An_Bình",
        "An!",
        "An, Bình",
        "An (Bình)",
        'An "Bình"',
        "An\U0001f600",
        "An\u200dBình",  # zero-width joiner
        "An\u202eBình",  # right-to-left override
        "An\u200bBình",  # zero-width space
        "\u0301An",  # a combining mark on nothing
        "An \u0301",
        "A\u0331\u0332\u0333n",  # marks piled on one letter
        "An\u00bd",
    ],
)
def test_other_characters_rejected(value):
    assert _rejected(value) == (
        "The full name may contain only letters, spaces, apostrophes, hyphens and periods."
    )


def test_one_uncomposable_mark_on_a_letter_is_allowed():
    # No precomposed form exists for q + dot below; a rare name must still be writable.
    assert normalize_name("Q\u0323uang") == "Q\u0323uang"


# --- search_key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Nguyễn Thị Hoà", "Nguyen thi hòa"),
        ("hoà", "hòa"),  # old and new tone placement
        ("thuỷ", "thủy"),
        ("Thuý", "THÚY"),
        ("khoẻ", "khỏe"),
        (nfd("Nguyễn Thị Hoà"), "Nguyễn Thị Hoà"),
        ("  Nguyễn   Văn\tAn ", "nguyen van an"),
    ],
)
def test_search_key_equivalences(a, b):
    assert search_key(a) == search_key(b)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("Đặng", "dang"),
        ("đặng", "dang"),
        ("ĐỖ ĐỨC ĐẠT", "do duc dat"),
        (nfd("Đoàn"), "doan"),
        ("Nguyễn Thị Hoà", "nguyen thi hoa"),
        ("Trương Ưng", "truong ung"),
        ("Ðặng", "dang"),  # U+00D0 eth, a common mis-conversion of Đ in legacy data
        ("", ""),
    ],
)
def test_search_key_values(value, key):
    assert search_key(value) == key


def test_search_key_collides_for_different_names():
    # Documented limit: the key finds candidates, it never decides a match.
    assert search_key("Lê") == search_key("Lệ") == search_key("Le") == "le"


def test_search_key_differs_for_different_letters():
    assert search_key("Đào") != search_key("Hào")
    assert search_key("Nguyễn Văn An") != search_key("Nguyễn Văn Ân Bình")


VOWELS = "aăâeêioôơuưy"
TONES = ["", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323"]


@pytest.mark.parametrize("vowel", VOWELS + VOWELS.upper())
def test_search_key_folds_every_vietnamese_vowel_and_tone(vowel):
    base = search_key(vowel)
    assert base in "aeiouy" and len(base) == 1
    for tone in TONES:
        letter = nfc(vowel + tone)
        assert len(letter) == 1  # Vietnamese letters all have a precomposed form
        assert search_key(letter) == base
        assert search_key(nfd(letter)) == base


# --- split_name --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("full", "parts"),
    [
        ("Nguyễn Văn An", ("Nguyễn", "Văn", "An")),
        ("Đặng Thị Ngọc Hân", ("Đặng", "Thị Ngọc", "Hân")),
        ("Lê An", ("Lê", "", "An")),
        ("An", ("", "", "An")),
        ("  Trần   Thị  Thuỷ ", ("Trần", "Thị", "Thuỷ")),
        ("", ("", "", "")),
        ("   ", ("", "", "")),
    ],
)
def test_split_name(full, parts):
    assert split_name(full) == parts


def test_split_name_returns_nfc():
    family, middle, given = split_name(nfd("Nguyễn Thị Hoà"))
    assert (family, middle, given) == (nfc("Nguyễn"), nfc("Thị"), nfc("Hoà"))
