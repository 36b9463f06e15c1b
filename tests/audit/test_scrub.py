"""Secrets, codes and tokens never reach the log; a short digest at most."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from idp import audit
from idp.audit.chain import REDACTED, scrub, sensitivity
from idp.extensions import db


def test_digest_is_short_and_stable():
    assert audit.digest("abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()[:12]
    assert audit.digest(b"abc") == audit.digest("abc")
    assert audit.digest(None) is None


def test_key_classification():
    for key in ("password", "new_password", "newPassword", "userpassword", "otp", "totp_code",
                "pin", "passphrase"):
        assert sensitivity(key) == "hide", key
    for key in ("refresh_token", "accessToken", "id-token", "code", "authorization_code",
                "client_secret", "client_assertion", "Authorization", "cookie", "recovery_codes",
                "private_key", "sessiontoken"):
        assert sensitivity(key) == "digest", key
    for key in ("method", "client_id", "reason", "token_type_hint", "code_challenge_method",
                "kid", "scope", "encoded"):
        assert sensitivity(key) is None, key


def test_scrub_is_recursive():
    out = scrub({"form": {"password": "hunter2", "login": "x"},
                 "tokens": ["t1", "t2"], "list": [{"code": "c"}], "secret": None})
    assert out == {"form": {"password": REDACTED, "login": "x"},
                   "tokens": [audit.digest("t1"), audit.digest("t2")],
                   "list": [{"code": audit.digest("c")}], "secret": None}


def test_raw_secrets_never_stored(app_ctx):
    secrets = {"password": "hoa sen nở trên hồ tây", "refresh_token": "rt-7Hq9XzLr2mPq",
               "code": "123456", "otp": "654321", "client_assertion": "eyJhbGciOi.x.y",
               "headers": {"Cookie": "__Host-sid=abcdef0123456789"}}
    entry = audit.record("token.revoked", actor="client:demo", details={**secrets, "reason": "x"})
    db.session.commit()
    raw = db.session.execute(text("SELECT content FROM audit_log WHERE id = :i"),
                             {"i": entry.id}).scalar()
    raw = raw if isinstance(raw, str) else str(raw)
    for value in ("hoa sen", "rt-7Hq9XzLr2mPq", "123456", "654321", "eyJhbGciOi", "abcdef0123"):
        assert value not in raw
    assert entry.details["password"] == REDACTED
    assert entry.details["refresh_token"] == audit.digest("rt-7Hq9XzLr2mPq")
    assert entry.details["reason"] == "x"
    assert audit.verify().ok
