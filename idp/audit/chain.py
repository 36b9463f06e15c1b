"""Pure functions of the chain: canonical JSON, hashes, scrubbing of details.

Each entry has two parts. The personal part (actor, target id, address, details and a random
salt) can be redacted when its retention ends; `personal_hash` covers it. `content_hash` covers
the permanent part (time, action, target type) and `personal_hash`, and `hash` chains it to the
previous entry: hash = SHA-256(prev_hash + content_hash). A redacted entry keeps its
`personal_hash`, so the chain and its permanent fields still verify; the salt is erased with
the data, so the hash cannot confirm a guess of what was redacted.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import uuid
from datetime import date, datetime

GENESIS = "0" * 64
REDACTED = "[redacted]"

# Key parts naming low-entropy secrets: never stored, not even as a digest (a digest of a
# guessable value can be reversed by guessing).
_HIDDEN_PARTS = {"password", "passwd", "pwd", "passphrase", "pin", "otp", "totp"}
# Key parts naming high-entropy secrets: stored as a short digest, which still correlates
# with the SHA-256 digests kept of refresh tokens.
_DIGEST_PARTS = {"secret", "secrets", "token", "tokens", "code", "codes", "passcode",
                 "assertion", "authorization", "cookie", "cookies", "credential",
                 "credentials", "private", "signature", "jwt", "bearer"}
# Substrings that mark a key even without separators ("accesstoken", "userpassword").
_HIDDEN_SUBSTRINGS = ("password", "passwd", "passphrase")
_DIGEST_SUBSTRINGS = ("secret", "token", "assertion", "authorization", "cookie")
# Names that contain such a word but hold no secret.
_SAFE_KEYS = {"token_type", "token_type_hint", "code_challenge_method", "error_code",
              "response_type", "grant_type"}


def canonical(value) -> str:
    """The one serialization that is hashed: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_default)


def _default(value):
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return digest(value)
    raise TypeError(f"audit details cannot hold {type(value).__name__}")


def iso(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest(value) -> str | None:
    """A short digest for the audit log: "sha256:" and the first 12 hex digits."""
    if value is None:
        return None
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = canonical(value).encode("utf-8")
    return "sha256:" + hashlib.sha256(data).hexdigest()[:12]


def _parts(key: str) -> list[str]:
    # "refreshToken" -> ["refresh", "token"]; "id-token" -> ["id", "token"]
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
    return [p for p in re.split(r"[^a-zA-Z0-9]+", spaced.lower()) if p]


def sensitivity(key) -> str | None:
    """"hide", "digest" or None for a details key."""
    if not isinstance(key, str):
        return None
    if key.lower() in _SAFE_KEYS:
        return None
    parts = _parts(key)
    flat = "".join(parts)
    if _HIDDEN_PARTS.intersection(parts) or any(s in flat for s in _HIDDEN_SUBSTRINGS):
        return "hide"
    if _DIGEST_PARTS.intersection(parts) or any(s in flat for s in _DIGEST_SUBSTRINGS):
        return "digest"
    return None


def scrub(value):
    """Details with secrets replaced (recursively), as plain JSON values."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            kind = sensitivity(key)
            if kind == "hide":
                out[key] = None if item is None else REDACTED
            elif kind == "digest":
                out[key] = _digest_any(item)
            else:
                out[key] = scrub(item)
        return out
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def _digest_any(item):
    if isinstance(item, list | tuple):
        return [_digest_any(i) for i in item]
    return digest(item)


def normalize_details(details):
    """Scrubbed details in the exact form that is stored and hashed (a JSON round trip)."""
    if details is None:
        return None
    return json.loads(canonical(scrub(details)))


def personal_hash(*, actor, target_id, address, details, salt) -> str:
    return sha256(canonical({"actor": actor, "target_id": target_id, "address": address,
                             "details": details, "salt": salt}))


def content_hash(*, at: datetime, action: str, target_type, personal: str) -> str:
    return sha256(canonical({"v": 1, "at": iso(at), "action": action, "target_type": target_type,
                             "personal_hash": personal}))


def chain_hash(prev_hash: str, content: str) -> str:
    return sha256(prev_hash + content)
