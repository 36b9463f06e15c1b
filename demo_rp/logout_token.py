"""Validation of back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, §2.6)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry, extract_compact

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ALLOWED_ALGS = ("RS256", "ES256")
ALLOWED_TYPS = ("logout+jwt", "application/logout+jwt")


class LogoutTokenError(Exception):
    """The logout token is not acceptable; the message is the error_description."""


class LogoutTokenValidator:
    """Checks signature, header and claims; remembers each jti to refuse replays.

    `load_keys(force)` returns the provider's JWKS as a dict; `force` asks for a fresh copy
    (done at most once per `refresh_interval` seconds, when the kid is unknown).
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        load_keys: Callable[[bool], dict[str, Any]],
        max_age: int = 300,
        leeway: int = 60,
        refresh_interval: int = 60,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.load_keys = load_keys
        self.max_age = max_age
        self.leeway = leeway
        self.refresh_interval = refresh_interval
        self.now = now
        self._lock = threading.Lock()
        self._seen_jti: dict[str, float] = {}
        self._last_refresh = float("-inf")

    def validate(self, token: str) -> dict[str, Any]:
        if not token:
            raise LogoutTokenError("logout_token is missing")
        self._check_header(token)
        claims = self._verify_signature(token)
        self._check_claims(claims)
        self._remember_jti(claims["jti"])
        return claims

    def _check_header(self, token: str) -> None:
        try:
            header = extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise LogoutTokenError("logout_token is not a compact JWS") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGS:
            raise LogoutTokenError(f"alg {alg!r} is not allowed (only RS256, ES256)")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in ALLOWED_TYPS):
            raise LogoutTokenError(f"typ {typ!r} is not logout+jwt")

    def _verify_signature(self, token: str) -> dict[str, Any]:
        registry = JWSRegistry(algorithms=list(ALLOWED_ALGS), strict_check_header=False)
        try:
            try:
                keys = KeySet.import_key_set(self.load_keys(False))
                result = jwt.decode(token, keys, registry=registry)
            except InvalidKeyIdError:
                if not self._may_refresh():
                    raise
                keys = KeySet.import_key_set(self.load_keys(True))
                result = jwt.decode(token, keys, registry=registry)
        except InvalidKeyIdError as exc:
            raise LogoutTokenError("no key of the provider matches the token's kid") from exc
        except JoseError as exc:
            raise LogoutTokenError(f"signature not verified: {exc.error}") from exc
        except LogoutTokenError:
            raise
        except Exception as exc:  # network errors, malformed JWKS
            raise LogoutTokenError("the provider's keys could not be loaded") from exc
        return result.claims

    def _may_refresh(self) -> bool:
        with self._lock:
            now = self.now()
            if now - self._last_refresh < self.refresh_interval:
                return False
            self._last_refresh = now
            return True

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = self.now()
        if claims.get("iss") != self.issuer:
            raise LogoutTokenError("iss is not the provider")

        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or self.client_id not in audiences:
            raise LogoutTokenError("aud does not contain this client")

        iat = claims.get("iat")
        if not _is_number(iat):
            raise LogoutTokenError("iat is missing")
        if iat > now + self.leeway:
            raise LogoutTokenError("iat is in the future")
        if iat < now - self.max_age - self.leeway:
            raise LogoutTokenError("the token is too old (iat)")

        if "exp" in claims:
            exp = claims["exp"]
            if not _is_number(exp) or exp <= now - self.leeway:
                raise LogoutTokenError("the token has expired (exp)")

        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
            raise LogoutTokenError("events does not contain the back-channel logout event")

        sid, sub = claims.get("sid"), claims.get("sub")
        if not sid and not sub:
            raise LogoutTokenError("neither sid nor sub is present")
        for name, value in (("sid", sid), ("sub", sub)):
            if value is not None and not isinstance(value, str):
                raise LogoutTokenError(f"{name} must be a string")

        if "nonce" in claims:
            raise LogoutTokenError("a logout token must not contain nonce")

        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise LogoutTokenError("jti is missing")

    def _remember_jti(self, jti: str) -> None:
        now = self.now()
        # Older tokens are refused by the iat check, so a jti need not be kept longer.
        keep_until = now + self.max_age + 2 * self.leeway
        with self._lock:
            for old in [k for k, until in self._seen_jti.items() if until <= now]:
                del self._seen_jti[old]
            if jti in self._seen_jti:
                raise LogoutTokenError("jti has already been used (replay)")
            self._seen_jti[jti] = keep_until


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
