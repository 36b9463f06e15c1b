"""Verifying the password hashes that legacy systems export.

`verify(scheme, stored_hash, password, salt=..., salt_position=...)` answers True or False and
never raises for a malformed hash (a broken export row must not become a 500 at login).
Where libpass (the maintained fork of passlib) has a handler it is used; the formats it lacks
(raw hex digests, salted SHA-256, ASP.NET Identity v2/v3, ASP.NET Membership) are composed here
from hashlib, and every comparison goes through hmac.compare_digest.

This module only verifies: a verified legacy password is re-hashed with argon2id by the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from passlib.hash import bcrypt, django_pbkdf2_sha256, md5_crypt, phpass, sha512_crypt

SALT_BEFORE = "before"
SALT_AFTER = "after"
SALT_POSITIONS = (SALT_BEFORE, SALT_AFTER)

_HEX = re.compile(r"[0-9a-fA-F]+")
# bcrypt uses only the first 72 bytes; PHP, .NET and Java implementations truncate silently,
# while the bcrypt package (>= 5) raises, so the truncation is done here.
_BCRYPT_MAX_BYTES = 72
# ASP.NET Identity v3: the PRF number in the header -> hashlib name.
_ASPNET_PRF = {0: "sha1", 1: "sha256", 2: "sha512"}
# Like ASP.NET's own verifier: a salt or subkey below 128 bits is refused.
_ASPNET_MIN_BYTES = 16
# A bound on attacker-controlled work: an imported v3 hash could name 2**32 - 1 iterations.
_ASPNET_MAX_ITERATIONS = 10_000_000


@dataclass(frozen=True)
class Scheme:
    name: str
    description: str
    check: Callable[[str, bytes, str | None, str | None], bool]  # (hash, password, salt, position)
    looks_valid: Callable[[str, str | None], bool]  # (hash, salt): format check at import
    needs_salt: bool = False
    needs_salt_position: bool = False


# --- raw and salted digests (no libpass handler) ------------------------------------------------


def _hex_digest(algorithm: str, size: int):
    def check(stored: str, password: bytes, salt, position) -> bool:
        computed = hashlib.new(algorithm, password).hexdigest()
        # Exports differ in case; compare lower-case, in constant time.
        return _same_text(computed, stored)

    def looks_valid(stored: str, salt) -> bool:
        text = stored.strip()
        return len(text) == size and _HEX.fullmatch(text) is not None

    return check, looks_valid


def _same_text(computed_hex: str, stored: str) -> bool:
    # As bytes: compare_digest refuses non-ASCII str, and a garbled export may contain some.
    return hmac.compare_digest(computed_hex.encode(), stored.strip().lower().encode("utf-8"))


def _salted_sha256(stored: str, password: bytes, salt: str | None, position: str | None) -> bool:
    # The salt is text as the export gives it, joined to the password as UTF-8 bytes.
    salt_bytes = (salt or "").encode("utf-8")
    if position == SALT_BEFORE:
        message = salt_bytes + password
    elif position == SALT_AFTER:
        message = password + salt_bytes
    else:
        return False
    return _same_text(hashlib.sha256(message).hexdigest(), stored)


def _salted_sha256_valid(stored: str, salt) -> bool:
    text = stored.strip()
    return len(text) == 64 and _HEX.fullmatch(text) is not None and bool(salt)


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


# --- ASP.NET Membership (System.Web.Security.SqlMembershipProvider, "SHA1" format) -------------


def _aspnet_membership_sha1(stored: str, password: bytes, salt, position) -> bool:
    # base64(SHA1(salt bytes + UTF-16LE password)); the salt column is base64.
    salt_bytes = _b64decode(salt or "")
    expected = _b64decode(stored)
    if not salt_bytes or expected is None or len(expected) != 20:
        return False
    try:
        utf16 = password.decode("utf-8").encode("utf-16-le")
    except UnicodeDecodeError:
        return False
    computed = hashlib.sha1(salt_bytes + utf16).digest()  # noqa: S324 (the legacy format)
    return hmac.compare_digest(computed, expected)


def _aspnet_membership_valid(stored: str, salt) -> bool:
    digest = _b64decode(stored)
    return digest is not None and len(digest) == 20 and bool(_b64decode(salt or ""))


# --- ASP.NET Identity (Microsoft.AspNetCore.Identity.PasswordHasher) ----------------------------
# v2: base64(0x00 | salt[16] | PBKDF2-HMAC-SHA1(password, salt, 1000 iterations)[32])
# v3: base64(0x01 | prf u32 BE | iterations u32 BE | salt length u32 BE | salt | subkey)
# The password is the .NET string as UTF-8 (Rfc2898DeriveBytes / KeyDerivation.Pbkdf2).


def _aspnet_v2(raw: bytes, password: bytes) -> bool:
    if len(raw) != 1 + 16 + 32 or raw[0] != 0x00:
        return False
    salt, subkey = raw[1:17], raw[17:]
    computed = hashlib.pbkdf2_hmac("sha1", password, salt, 1000, len(subkey))
    return hmac.compare_digest(computed, subkey)


def _aspnet_v3_parts(raw: bytes):
    if len(raw) < 13 or raw[0] != 0x01:
        return None
    prf, iterations, salt_length = struct.unpack(">III", raw[1:13])
    salt = raw[13 : 13 + salt_length]
    subkey = raw[13 + salt_length :]
    if (
        prf not in _ASPNET_PRF
        or not 0 < iterations <= _ASPNET_MAX_ITERATIONS
        or salt_length < _ASPNET_MIN_BYTES
        or len(salt) != salt_length
        or len(subkey) < _ASPNET_MIN_BYTES
    ):
        return None
    return _ASPNET_PRF[prf], iterations, salt, subkey


def _aspnet_v3(raw: bytes, password: bytes) -> bool:
    parts = _aspnet_v3_parts(raw)
    if parts is None:
        return False
    algorithm, iterations, salt, subkey = parts
    computed = hashlib.pbkdf2_hmac(algorithm, password, salt, iterations, len(subkey))
    return hmac.compare_digest(computed, subkey)


def _aspnet_identity(version: int | None):
    def check(stored: str, password: bytes, salt, position) -> bool:
        raw = _b64decode(stored)
        if not raw:
            return False
        if raw[0] == 0x00 and version in (None, 2):
            return _aspnet_v2(raw, password)
        if raw[0] == 0x01 and version in (None, 3):
            return _aspnet_v3(raw, password)
        return False

    def looks_valid(stored: str, salt) -> bool:
        raw = _b64decode(stored)
        if not raw:
            return False
        if raw[0] == 0x00 and version in (None, 2):
            return len(raw) == 49
        if raw[0] == 0x01 and version in (None, 3):
            return _aspnet_v3_parts(raw) is not None
        return False

    return check, looks_valid


# --- libpass handlers ---------------------------------------------------------------------------


def _libpass(handler, shape: str, *, truncate: int | None = None):
    # The import checks the shape with a regex (parsing a million hashes with libpass costs
    # more than the rest of the import); libpass parses for real when verifying.
    pattern = re.compile(shape)

    def check(stored: str, password: bytes, salt, position) -> bool:
        secret = password[:truncate] if truncate else password
        try:
            return bool(handler.verify(secret, stored.strip()))
        except (ValueError, TypeError):
            # libpass's malformed-hash and password-value errors are ValueErrors; a missing
            # backend (a deployment fault) is not, and is not hidden.
            return False

    def looks_valid(stored: str, salt) -> bool:
        return pattern.fullmatch(stored.strip()) is not None

    return check, looks_valid


_CRYPT64 = "[./0-9A-Za-z]"


def _scheme(name, description, pair, **flags) -> Scheme:
    check, looks_valid = pair
    return Scheme(name, description, check, looks_valid, **flags)


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        _scheme("md5_hex", "unsalted MD5, hex", _hex_digest("md5", 32)),
        _scheme("sha1_hex", "unsalted SHA-1, hex", _hex_digest("sha1", 40)),
        _scheme(
            "salted_sha256",
            "SHA-256 of salt+password or password+salt (per system), hex; salt per account",
            (_salted_sha256, _salted_sha256_valid),
            needs_salt=True,
            needs_salt_position=True,
        ),
        _scheme(
            "bcrypt",
            "bcrypt $2a$, $2b$, $2y$ (first 72 bytes of the password)",
            _libpass(
                bcrypt, rf"\$2[aby]\$[0-9]{{2}}\${_CRYPT64}{{53}}", truncate=_BCRYPT_MAX_BYTES
            ),
        ),
        _scheme(
            "django_pbkdf2_sha256",
            "Django pbkdf2_sha256$iterations$salt$hash",
            _libpass(django_pbkdf2_sha256, r"pbkdf2_sha256\$[0-9]+\$[^$]+\$[A-Za-z0-9+/]+={0,2}"),
        ),
        _scheme("aspnet_identity_v2", "ASP.NET Identity v2 (PBKDF2-SHA1, 1000)", _aspnet_identity(2)),
        _scheme("aspnet_identity_v3", "ASP.NET Identity v3 (PBKDF2, header)", _aspnet_identity(3)),
        _scheme(
            "aspnet_identity",
            "ASP.NET Identity, v2 or v3 by its format marker",
            _aspnet_identity(None),
        ),
        _scheme(
            "aspnet_membership_sha1",
            "ASP.NET Membership SHA1: base64 SHA-1 of base64 salt + UTF-16LE password",
            (_aspnet_membership_sha1, _aspnet_membership_valid),
            needs_salt=True,
        ),
        _scheme(
            "phpass", "phpass portable hashes $P$ / $H$",
            _libpass(phpass, rf"\$[PH]\${_CRYPT64}{{31}}"),
        ),
        _scheme(
            "md5_crypt", "md5-crypt $1$",
            _libpass(md5_crypt, rf"\$1\${_CRYPT64}{{0,8}}\${_CRYPT64}{{22}}"),
        ),
        _scheme(
            "sha512_crypt", "sha512-crypt $6$",
            _libpass(sha512_crypt, rf"\$6\$(?:rounds=[0-9]+\$)?{_CRYPT64}{{0,16}}\${_CRYPT64}{{86}}"),
        ),
    )
}


def _variants(password: str) -> list[bytes]:
    """The password as typed, then its NFC and NFD forms when they differ.

    Legacy systems hashed the bytes their form received; a Vietnamese password typed through
    another input method may arrive composed differently.
    """
    forms = [password]
    if not password.isascii():
        for form in ("NFC", "NFD"):
            other = unicodedata.normalize(form, password)
            if other not in forms:
                forms.append(other)
    return [f.encode("utf-8") for f in forms]


def verify(
    scheme: str,
    stored_hash: str | None,
    password: str,
    *,
    salt: str | None = None,
    salt_position: str | None = None,
) -> bool:
    """True when password matches stored_hash under scheme; False otherwise, never raises."""
    spec = SCHEMES.get(scheme or "")
    if spec is None or not stored_hash or not isinstance(password, str) or not password:
        return False
    if spec.needs_salt and not salt:
        return False
    try:
        variants = _variants(password)
    except UnicodeEncodeError:
        return False
    matched = False
    for candidate in variants:
        # No early exit: each variant is checked, so timing says nothing about which matched.
        matched |= spec.check(stored_hash, candidate, salt, salt_position)
    return matched


def looks_valid(scheme: str, stored_hash: str, *, salt: str | None = None) -> bool:
    """True when stored_hash has the shape of scheme (used to reject rows at import)."""
    spec = SCHEMES.get(scheme or "")
    if spec is None or not stored_hash:
        return False
    if spec.needs_salt and not salt:
        return False
    return spec.looks_valid(stored_hash, salt)
