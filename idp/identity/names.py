"""Vietnamese personal names: normalization, accent-insensitive search key, split.

The full name as registered (NFC) is the authoritative string; the search key only finds
candidates (Lê, Lệ and Le share one key) and never decides a match.
"""

from __future__ import annotations

import unicodedata

from flask_babel import lazy_gettext as _l

from idp.errors import ValidationError

MAX_NAME_LENGTH = 200

# Whitespace a pasted or imported name may carry; collapsed to one space, not rejected.
_LAYOUT_CONTROLS = frozenset("\t\n\r\v\f")
_PUNCTUATION = frozenset(" '-.")
# Typographic apostrophes (phone keyboards insert them) become the ASCII one.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'"})
# A letter may carry at most this many combining marks that NFC could not compose;
# Vietnamese needs none after NFC, more is "zalgo" text.
_MAX_MARKS = 2

# U+0111/U+0110 have no canonical decomposition, so NFD leaves them alone. Ð/ð (U+00D0/U+00F0,
# eth) are a frequent mis-conversion of Đ/đ in legacy data; mapping them only widens the search.
_SEARCH_MAP = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "Ð": "D"})


def normalize_name(value: str) -> str:
    """A full name in NFC with single spaces; raises ValidationError(field="full_name")."""
    if not isinstance(value, str):
        value = ""
    text = unicodedata.normalize("NFC", value).translate(_APOSTROPHES)
    # Before collapsing: str.split() would silently turn U+001C..U+001F into spaces.
    for char in text:
        if unicodedata.category(char) == "Cc" and char not in _LAYOUT_CONTROLS:
            raise ValidationError(
                _l("The full name contains control characters."), field="full_name"
            )
    text = " ".join(text.split())
    if not text:
        raise ValidationError(_l("Enter the full name."), field="full_name")
    if len(text) > MAX_NAME_LENGTH:
        raise ValidationError(
            _l("The full name must have at most 200 characters."), field="full_name"
        )
    marks = 0
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category == "Nd" or char.isdigit():
            raise ValidationError(_l("The full name must not contain digits."), field="full_name")
        if category.startswith("M"):
            marks += 1
            if index == 0 or marks > _MAX_MARKS or not _is_letter_or_mark(text[index - 1]):
                raise _bad_character()
            continue
        marks = 0
        if not (category.startswith("L") or char in _PUNCTUATION):
            raise _bad_character()
    return text


def _is_letter_or_mark(char: str) -> bool:
    return unicodedata.category(char)[0] in "LM"


def _bad_character() -> ValidationError:
    return ValidationError(
        _l("The full name may contain only letters, spaces, apostrophes, hyphens and periods."),
        field="full_name",
    )


def search_key(value: str) -> str:
    """Accent- and case-insensitive key: "Nguyễn Thị Hoà" and "nguyen thi hòa" share one."""
    decomposed = unicodedata.normalize("NFD", value or "")
    # By category, not combining class: a few marks have class 0 yet are still marks.
    stripped = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    return " ".join(stripped.translate(_SEARCH_MAP).casefold().split())


def split_name(full_name: str) -> tuple[str, str, str]:
    """(family_name, middle_name, given_name) in Vietnamese order.

    First word family, last word given, the rest middle ("" when none). A single word is the
    given name; an empty name gives three empty strings.
    """
    words = unicodedata.normalize("NFC", full_name or "").split()
    if not words:
        return "", "", ""
    if len(words) == 1:
        return "", "", words[0]
    return words[0], " ".join(words[1:-1]), words[-1]
