"""Checking a page for a message whatever the language it is shown in."""

from __future__ import annotations

import html as html_lib
import re
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

PO = Path(__file__).resolve().parents[2] / "idp" / "translations" / "vi" / "LC_MESSAGES" / "messages.po"


@cache
def _catalogue() -> list[tuple[str, str]]:
    with PO.open("rb") as fh:
        return [(m.id, m.string) for m in read_po(fh) if isinstance(m.id, str) and m.string]


def shows(page: str, fragment: str) -> bool:
    """True when the page shows the English fragment or the Vietnamese of a message containing it."""
    text = html_lib.unescape(page)
    if fragment in text:
        return True
    for msgid, msgstr in _catalogue():
        if fragment in msgid:
            # Placeholders are filled in on the page: look for the longest literal piece.
            piece = max(re.split(r"%\(\w+\)[sd]|%[sd]", msgstr), key=len).strip()
            if piece and piece in text:
                return True
    return False
