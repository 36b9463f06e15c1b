"""Password hashing (argon2id) and the password policy of NIST SP 800-63B-4.

Pure functions of a config mapping: no request, no database, no app context needed.
"""

from __future__ import annotations

import contextlib
import functools
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import lazy_gettext as _l

from idp.errors import ValidationError

BLOCKLIST_PATH = Path(__file__).resolve().parent.parent / "data" / "password-blocklist.txt"

DEFAULT_MEMORY_KIB = 19456
DEFAULT_TIME_COST = 2
DEFAULT_PARALLELISM = 1
DEFAULT_MIN_LENGTH_SINGLE_FACTOR = 15
DEFAULT_MIN_LENGTH_MULTI_FACTOR = 8
DEFAULT_MAX_LENGTH = 128
# SP 800-63B-4: verifiers SHALL accept passwords of at least 64 characters.
MAX_LENGTH_FLOOR = 64
# Shorter personal fragments (e.g. "van", "an" in a name) would refuse far too much.
MIN_FRAGMENT_LENGTH = 4
# A repeated unit this short is never a real passphrase ("abab", "a1b2a1b2...").
MAX_TRIVIAL_UNIT = 4

# Phone numbers as stored (E.164 "+84...") or typed ("0...", "84..."); national part 9-10 digits.
_PHONE = re.compile(r"^(?:\+84|84|0)(\d{9,10})$")
_PHONE_SEPARATORS = re.compile(r"[\s().\-]")
_WORD_SEPARATORS = re.compile(r"[\s._\-+]+")


# --- hashing ---------------------------------------------------------------


def _params(config: Mapping) -> tuple[int, int, int]:
    return (
        int(config.get("ARGON2_MEMORY_KIB", DEFAULT_MEMORY_KIB)),
        int(config.get("ARGON2_TIME_COST", DEFAULT_TIME_COST)),
        int(config.get("ARGON2_PARALLELISM", DEFAULT_PARALLELISM)),
    )


@functools.lru_cache(maxsize=8)
def _hasher(params: tuple[int, int, int]) -> PasswordHasher:
    memory_kib, time_cost, parallelism = params
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_kib,
        parallelism=parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def make_hasher(config: Mapping) -> PasswordHasher:
    """The argon2id hasher for the configured parameters (one per parameter tuple)."""
    return _hasher(_params(config))


def normalize_password(password: str) -> str:
    """NFKC, so the same password typed on different keyboards/IMEs hashes the same."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str, config: Mapping) -> str:
    return make_hasher(config).hash(normalize_password(password))


def verify_password(stored_hash: str, password: str, config: Mapping) -> tuple[bool, str | None]:
    """Return (ok, new_hash); new_hash is set when ok and the stored parameters are outdated."""
    hasher = make_hasher(config)
    secret = normalize_password(password)
    if not isinstance(stored_hash, str) or not stored_hash:
        burn_verify(password, config)
        return False, None
    try:
        hasher.verify(stored_hash, secret)
    except VerifyMismatchError:
        return False, None
    except (VerificationError, InvalidHashError, ValueError):
        # Unreadable hash: refuse, after the same work as a real check.
        burn_verify(password, config)
        return False, None
    try:
        stale = hasher.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        stale = True
    return True, (hasher.hash(secret) if stale else None)


@functools.lru_cache(maxsize=8)
def _dummy_hash(params: tuple[int, int, int]) -> str:
    # A random secret nobody knows, so the burn can never succeed.
    return _hasher(params).hash(secrets.token_urlsafe(32))


def burn_verify(password: str, config: Mapping) -> None:
    """Spend one verification, so an unknown account costs as much as a known one."""
    params = _params(config)
    with contextlib.suppress(VerificationError):
        _hasher(params).verify(_dummy_hash(params), normalize_password(password))


# --- policy ----------------------------------------------------------------


@functools.cache
def load_blocklist() -> frozenset[str]:
    """The shipped list of common passwords, lower-case; read once per process."""
    with BLOCKLIST_PATH.open(encoding="utf-8") as fh:
        return frozenset(
            line.strip().lower() for line in fh if line.strip() and not line.startswith("#")
        )


def _fold(text: str) -> str:
    """Compare form: NFKC, case-folded, without accents (đ -> d) and whitespace."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).replace("đ", "d")
    return "".join(ch for ch in text if not ch.isspace())


def _alnum(text: str) -> str:
    return "".join(ch for ch in _fold(text) if ch.isalnum())


def _char_key(ch: str) -> tuple[str, int, int]:
    if "0" <= ch <= "9":
        return "digit", ord(ch) - ord("0"), 10
    if "a" <= ch <= "z":
        return "letter", ord(ch) - ord("a"), 26
    return "other", ord(ch), 0


def _is_run(text: str) -> bool:
    """One repeated character, or a sequence with a fixed step of 1 or 2 ("13579", "zyxw")."""
    if len(set(text)) == 1:
        return True
    keys = [_char_key(ch) for ch in text]
    kind, _, modulus = keys[0]
    if len(text) < 3 or kind == "other" or any(k[0] != kind for k in keys):
        return False
    # Modular, so "1234567890123" and "xyzabc" count as runs too.
    steps = {(b[1] - a[1]) % modulus for a, b in zip(keys, keys[1:], strict=False)}
    return len(steps) == 1 and steps.pop() in (1, 2, modulus - 1, modulus - 2)


def _is_date(text: str) -> bool:
    """An 8-digit date: ddmmyyyy, mmddyyyy or yyyymmdd (a birthday is guessed early)."""
    if len(text) != 8 or not text.isdigit():
        return False
    for y, m, d in (
        (text[4:], text[2:4], text[:2]),
        (text[4:], text[:2], text[2:4]),
        (text[:4], text[4:6], text[6:]),
    ):
        if 1900 <= int(y) <= 2099:
            try:
                date(int(y), int(m), int(d))
            except ValueError:
                continue
            return True
    return False


def _period(text: str) -> int | None:
    """Length of the shortest unit repeated at least twice to make text, if any."""
    for p in range(1, len(text) // 2 + 1):
        if all(text[i] == text[i - p] for i in range(p, len(text))):
            return p
    return None


def _is_easy(text: str) -> bool:
    if not text:
        return False
    if _is_run(text) or _is_date(text):
        return True
    p = _period(text)
    if p is None:
        return False
    unit = text[:p]
    return p <= MAX_TRIVIAL_UNIT or _is_easy(unit) or unit in load_blocklist()


def _is_common(password: str) -> bool:
    lowered = password.casefold()
    folded = _fold(password)
    core = _alnum(password)
    if lowered in load_blocklist() or folded in load_blocklist():
        return True
    # The letters and digits alone, when they are a whole password's worth of them.
    return _is_easy(lowered) or _is_easy(folded) or (len(core) >= 8 and _is_easy(core))


def _personal_fragments(values: Iterable[str]) -> set[str]:
    """Compare forms of the person's own values, with phone-number prefix variants."""
    fragments: set[str] = set()
    for value in values:
        if not value:
            continue
        raw = unicodedata.normalize("NFKC", str(value)).strip()
        if "@" in raw:
            # An e-mail address: its local part is personal, the domain is not.
            raw = raw.rsplit("@", 1)[0]
        compact = _PHONE_SEPARATORS.sub("", raw)
        phone = _PHONE.match(compact)
        if phone:
            national = phone.group(1)
            fragments.update({national, "0" + national, "84" + national})
            continue
        fragments.add(_alnum(raw))
        # Words of a name, or pieces of an e-mail local part ("an.nguyen").
        parts = [_alnum(part) for part in _WORD_SEPARATORS.split(raw)]
        fragments.update(parts)
        # Given name first, as some people write it.
        fragments.add("".join(reversed(parts)))
    return {f for f in fragments if len(f) >= MIN_FRAGMENT_LENGTH}


def _contains_personal(password: str, values: Iterable[str]) -> bool:
    core = _alnum(password)
    if not core:
        return False
    for fragment in _personal_fragments(values):
        if fragment in core:
            return True
        if len(core) >= MIN_FRAGMENT_LENGTH and core in fragment:
            return True
    return False


def check_password_policy(
    password: str,
    *,
    config: Mapping,
    has_second_factor: bool,
    personal_values: Iterable[str] = (),
) -> str:
    """Return the normalized password, or raise ValidationError saying which rule it breaks.

    NIST SP 800-63B-4: length only (no composition rules), blocklist, context words.
    """
    normalized = normalize_password(password)
    if has_second_factor:
        min_length = int(
            config.get("PASSWORD_MIN_LENGTH_MULTI_FACTOR", DEFAULT_MIN_LENGTH_MULTI_FACTOR)
        )
    else:
        min_length = int(
            config.get("PASSWORD_MIN_LENGTH_SINGLE_FACTOR", DEFAULT_MIN_LENGTH_SINGLE_FACTOR)
        )
    max_length = max(int(config.get("PASSWORD_MAX_LENGTH", DEFAULT_MAX_LENGTH)), MAX_LENGTH_FLOOR)
    # len() of a str counts code points, as SP 800-63B-4 asks.
    if len(normalized) < min_length:
        raise ValidationError(
            _l("Your password must have at least %(n)d characters.", n=min_length),
            field="password",
        )
    if len(normalized) > max_length:
        raise ValidationError(
            _l("Your password can have at most %(n)d characters.", n=max_length),
            field="password",
        )
    if _contains_personal(normalized, personal_values):
        raise ValidationError(
            _l(
                "Your password must not contain your personal information (name, phone number or personal number)."
            ),
            field="password",
        )
    if _is_common(normalized):
        raise ValidationError(
            _l("This password is too common or too easy to guess. Please choose another one."),
            field="password",
        )
    return normalized
