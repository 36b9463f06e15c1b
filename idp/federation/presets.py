"""Presets for `flask federation add --preset`: editable data in presets.json.

A preset gives the display name, scopes, claim mapping and acr mapping; a mapping file or an
acr-map file given on the command line replaces the preset's.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources


@cache
def _load() -> dict:
    path = resources.files("idp.federation").joinpath("presets.json")
    return json.loads(path.read_text(encoding="utf-8"))


def names() -> list[str]:
    return sorted(_load())


def get(name: str) -> dict:
    """A copy of the preset (without its note); KeyError for an unknown name."""
    preset = copy.deepcopy(_load()[name])
    preset.pop("_note", None)
    return preset
