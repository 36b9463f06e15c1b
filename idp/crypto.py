"""Secrets at rest: AES-256-GCM under the key-encryption key from configuration.

KEY_ENCRYPTION_KEY may list several comma-separated keys: the first encrypts, all decrypt, so
the key can be rotated without a flag day. Each ciphertext names the key that made it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"


class DecryptionError(RuntimeError):
    """The ciphertext was not made by any configured key, or was altered."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretBox:
    def __init__(self, key_material: str):
        keys = [k.strip() for k in key_material.split(",") if k.strip()]
        if not keys:
            raise ValueError("KEY_ENCRYPTION_KEY is empty")
        # Derive a fixed-size AES key from each configured secret; its id is a short digest.
        self._keys = []
        for material in keys:
            key = hashlib.sha256(b"idp-kek:" + material.encode()).digest()
            kid = hashlib.sha256(key).hexdigest()[:8]
            self._keys.append((kid, AESGCM(key)))

    def encrypt(self, plaintext: bytes, *, context: str) -> str:
        """Encrypt; context (e.g. "signing-key:<kid>") is bound as associated data."""
        kid, aead = self._keys[0]
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, plaintext, context.encode())
        return f"{VERSION}.{kid}.{_b64(nonce)}.{_b64(sealed)}"

    def decrypt(self, token: str, *, context: str) -> bytes:
        try:
            version, kid, nonce, sealed = token.split(".")
        except ValueError:
            raise DecryptionError("malformed ciphertext") from None
        if version != VERSION:
            raise DecryptionError(f"unknown ciphertext version {version!r}")
        for candidate, aead in self._keys:
            if hmac.compare_digest(candidate, kid):
                try:
                    return aead.decrypt(_unb64(nonce), _unb64(sealed), context.encode())
                except InvalidTag:
                    raise DecryptionError("ciphertext altered or bound to another context") from None
        raise DecryptionError("no configured key-encryption key made this ciphertext")


def keyed_digest(key: str, value: str, *, purpose: str) -> str:
    """HMAC-SHA256 hex digest of value, under a key derived for one purpose."""
    sub = hmac.new(key.encode(), purpose.encode(), hashlib.sha256).digest()
    return hmac.new(sub, value.encode(), hashlib.sha256).hexdigest()
