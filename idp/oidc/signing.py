"""Signing with the key ring's cached key objects."""

from __future__ import annotations

from flask import current_app
from joserfc.jwk import KeySet

from idp.oidc.keys import SigningKeyError, ensure_keys, get_keyring
from idp.timeutil import utcnow


def _active_key(alg: str):
    ring = get_keyring()
    try:
        return ring.signing_key(alg)
    except SigningKeyError:
        # A fresh database: create the keys once (safe when several processes race).
        ensure_keys(now=utcnow(), config=current_app.config)
        ring.invalidate()
        return ring.signing_key(alg)


def signing_key_set(alg: str) -> KeySet:
    """The active key of alg as a one-key KeySet, so joserfc writes its kid in the header."""
    kid, key = _active_key(alg)
    cache = current_app.extensions.setdefault("idp_signing_sets", {})
    if kid not in cache:
        cache[kid] = KeySet([key])
    return cache[kid]


def published_jwks() -> dict:
    jwks = get_keyring().jwks()
    if not jwks["keys"]:
        _active_key("RS256")
        jwks = get_keyring().jwks()
    return jwks
