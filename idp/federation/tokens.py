"""Validation of the tokens an upstream sends us: ID tokens and back-channel logout tokens.

One small check per rule (OpenID Connect Core §3.1.3.7; Back-Channel Logout 1.0 §2.6), each
failing with a short reason code. The signature is checked against the upstream's JWKS with an
explicit algorithm allowlist chosen before any key is touched: never "none", never HS*.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError

from idp.federation.upstream import JwksCache

ALLOWED_ALGS = ("RS256", "PS256", "ES256")
_KEY_TYPES = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
LEEWAY = 60
# An ID token comes straight from the token endpoint: one issued longer ago is not fresh.
ID_TOKEN_MAX_AGE = 600
LOGOUT_TOKEN_MAX_AGE = 300
MAX_TOKEN_LENGTH = 16 * 1024
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class TokenError(Exception):
    """The token must not be used; reason is a short code for logs and tests."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _header(raw) -> dict:
    if not isinstance(raw, str) or len(raw) > MAX_TOKEN_LENGTH or raw.count(".") != 2:
        raise TokenError("malformed")
    try:
        header = jws.extract_compact(raw.encode()).headers()
    except (JoseError, ValueError):
        raise TokenError("malformed") from None
    if not isinstance(header, dict):
        raise TokenError("malformed")
    return header


def _pick_key(keys, header: dict):
    kty = _KEY_TYPES[header["alg"]]
    kid = header.get("kid")
    found = [
        k for k in keys
        if k.key_type == kty and (kid is None or k.kid == kid) and k.get("alg") in (None, header["alg"])
    ]
    if kid is None and len(found) != 1:
        return None  # without a kid only an unambiguous key will do
    return found[0] if found else None


def verify_signature(raw, keys: JwksCache, *, algorithms=ALLOWED_ALGS, limited_refetch: bool) -> tuple[dict, dict]:
    """(header, claims) of a JWS signed by one of the upstream's keys with an allowed algorithm."""
    header = _header(raw)
    alg = header.get("alg")
    if alg not in algorithms or alg not in ALLOWED_ALGS:
        raise TokenError("alg_not_allowed")
    key = _pick_key(keys.keys(), header)
    if key is None:
        refreshed = keys.refresh(limited=limited_refetch)
        key = _pick_key(refreshed, header) if refreshed is not None else None
    if key is None:
        raise TokenError("unknown_key")
    try:
        token = jwt.decode(raw, key, algorithms=[alg])
    except BadSignatureError:
        raise TokenError("bad_signature") from None
    except (JoseError, ValueError):
        raise TokenError("invalid_token") from None
    return dict(token.header), dict(token.claims)


def _number(claims: dict, name: str, *, required: bool = True) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError(f"bad_{name}")
    return value


def _audience_ok(aud, client_id: str, *, only: bool) -> bool:
    if isinstance(aud, str):
        return aud == client_id
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        # An ID token for us and other, untrusted audiences is refused (Core §3.1.3.7 step 3).
        return aud == [client_id] if only else client_id in aud
    return False


def _check_times(claims: dict, *, now: float, leeway: int, max_age: int, exp_required: bool) -> None:
    exp = _number(claims, "exp", required=exp_required)
    if exp is not None and now >= exp + leeway:
        raise TokenError("expired")
    iat = _number(claims, "iat")
    if iat > now + leeway:
        raise TokenError("issued_in_future")
    if iat < now - max_age - leeway:
        raise TokenError("too_old")
    nbf = _number(claims, "nbf", required=False)
    if nbf is not None and nbf > now + leeway:
        raise TokenError("not_yet_valid")


def _hash_half(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def validate_id_token(raw, *, issuer: str, client_id: str, nonce: str, keys: JwksCache, now: float,
                      access_token: str | None = None, leeway: int = LEEWAY,
                      algorithms=ALLOWED_ALGS) -> dict:
    """The claims of a valid ID token for this client and this login attempt; else TokenError."""
    header, claims = verify_signature(raw, keys, algorithms=algorithms, limited_refetch=False)
    if str(header.get("typ", "JWT")).lower() not in ("jwt", "application/jwt"):
        raise TokenError("wrong_type")  # an access or logout token is not an ID token
    if claims.get("iss") != issuer:
        raise TokenError("wrong_issuer")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise TokenError("bad_sub")
    if not _audience_ok(claims.get("aud"), client_id, only=True):
        raise TokenError("wrong_audience")
    if "azp" in claims and claims["azp"] != client_id:
        raise TokenError("wrong_azp")
    _check_times(claims, now=now, leeway=leeway, max_age=ID_TOKEN_MAX_AGE, exp_required=True)
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise TokenError("wrong_nonce")
    if "events" in claims:
        raise TokenError("wrong_type")
    if access_token and "at_hash" in claims and claims["at_hash"] != _hash_half(access_token):
        raise TokenError("wrong_at_hash")
    return claims


def validate_logout_token(raw, *, issuer: str, client_id: str, keys: JwksCache, now: float,
                          leeway: int = LEEWAY, algorithms=ALLOWED_ALGS) -> dict:
    """The claims of a valid logout token (Back-Channel Logout 1.0 §2.6), without the replay
    check, which the caller makes with jti in the shared store."""
    header, claims = verify_signature(raw, keys, algorithms=algorithms, limited_refetch=True)
    if str(header.get("typ", "logout+jwt")).lower() not in ("logout+jwt", "application/logout+jwt", "jwt"):
        raise TokenError("wrong_type")
    if claims.get("iss") != issuer:
        raise TokenError("wrong_issuer")
    if not _audience_ok(claims.get("aud"), client_id, only=False):
        raise TokenError("wrong_audience")
    _check_times(claims, now=now, leeway=leeway, max_age=LOGOUT_TOKEN_MAX_AGE, exp_required=False)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise TokenError("bad_jti")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise TokenError("bad_events")
    if "nonce" in claims:
        raise TokenError("nonce_present")  # §2.4: an ID token must never pass as a logout token
    sid, sub = claims.get("sid"), claims.get("sub")
    if sid is None and sub is None:
        raise TokenError("no_sid_or_sub")
    for value in (sid, sub):
        if value is not None and (not isinstance(value, str) or not value or len(value) > 255):
            raise TokenError("bad_sid_or_sub")
    return claims
