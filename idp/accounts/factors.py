"""Second factors: TOTP (RFC 6238) and recovery codes; the acr a set of factors reaches.

The TOTP secret is encrypted at rest; a code is accepted one time step either side, and a code
already used is refused on every process and instance through the shared store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime

import pyotp
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update

from idp.accounts.models import RecoveryCode, TotpCredential
from idp.crypto import SecretBox
from idp.errors import Throttled, ValidationError
from idp.extensions import db
from idp.store import Store

ACR_LOW = "urn:eid:loa:low"
ACR_SUBSTANTIAL = "urn:eid:loa:substantial"
RECOVERY_CODE_COUNT = 10
# Digits of a recovery code, shown in groups of four (xxxx-xxxx-xxxx).
RECOVERY_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
ISSUER_NAME = "Định danh điện tử tỉnh"


def acr_for(assurance_level: int, amr: list[str]) -> str:
    """The level this session reached: identity level and authentication strength together."""
    two_factors = "mfa" in amr or ("pwd" in amr and "otp" in amr)
    if assurance_level >= 2 and two_factors:
        return ACR_SUBSTANTIAL
    return ACR_LOW


def _box(config) -> SecretBox:
    return SecretBox(config["KEY_ENCRYPTION_KEY"])


def _context(identity_id) -> str:
    return f"totp:{identity_id}"


# --- TOTP ----------------------------------------------------------------------------------

def totp_credential(identity_id) -> TotpCredential | None:
    return db.session.get(TotpCredential, identity_id)


def has_totp(identity_id) -> bool:
    cred = totp_credential(identity_id)
    return cred is not None and cred.confirmed_at is not None


def start_enrolment(identity_id, *, config, now: datetime) -> str:
    """Create (or replace an unconfirmed) TOTP secret; returns it for the QR code."""
    cred = totp_credential(identity_id)
    if cred is not None and cred.confirmed_at is not None:
        raise ValidationError(_l("An authenticator app is already set up. Remove it first."), field="code")
    secret = pyotp.random_base32()
    sealed = _box(config).encrypt(secret.encode(), context=_context(identity_id))
    if cred is None:
        db.session.add(TotpCredential(identity_id=identity_id, secret_encrypted=sealed, created_at=now))
    else:
        cred.secret_encrypted, cred.created_at = sealed, now
    db.session.commit()
    return secret


def provisioning_uri(secret: str, account_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=ISSUER_NAME)


def pending_secret(identity_id, *, config) -> str | None:
    cred = totp_credential(identity_id)
    if cred is None or cred.confirmed_at is not None:
        return None
    return _box(config).decrypt(cred.secret_encrypted, context=_context(identity_id)).decode()


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step the code belongs to (current ±1), compared in constant time."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    base = totp.timecode(datetime.fromtimestamp(now))
    found = None
    for offset in (-1, 0, 1):
        if hmac.compare_digest(totp.generate_otp(base + offset), code):
            found = base + offset
    return found


def _throttle(store: Store, identity_id, config) -> None:
    key = f"throttle:totp:{identity_id}"
    if store.incr(key, config["TOTP_THROTTLE_WINDOW"]) > config["TOTP_THROTTLE_LIMIT"]:
        retry = store.ttl(key) or config["TOTP_THROTTLE_WINDOW"]
        raise Throttled(
            _l("Too many codes tried. Please wait %(minutes)d minutes.", minutes=max(1, (retry + 59) // 60)),
            retry_after=retry,
            field="code",
        )


def verify_totp(store: Store, identity_id, code: str, *, config, now: float | None = None,
                confirming: bool = False) -> bool:
    """Check a code; True once per code. Throttled per identity through the store."""
    now = time.time() if now is None else now
    cred = totp_credential(identity_id)
    if cred is None or (cred.confirmed_at is None) != confirming:
        return False
    _throttle(store, identity_id, config)
    secret = _box(config).decrypt(cred.secret_encrypted, context=_context(identity_id)).decode()
    step = _matching_step(secret, code, now)
    # A used code stays used for its window on every instance (replay guard).
    if step is None or not store.set_if_absent(f"totp-used:{identity_id}:{step}", "1", 180):
        return False
    store.delete(f"throttle:totp:{identity_id}")
    return True


def confirm_enrolment(store: Store, identity_id, code: str, *, config, now: datetime) -> bool:
    if not verify_totp(store, identity_id, code, config=config, confirming=True):
        return False
    db.session.execute(
        update(TotpCredential).where(TotpCredential.identity_id == identity_id).values(confirmed_at=now)
    )
    db.session.commit()
    return True


def remove_totp(identity_id) -> None:
    db.session.execute(delete(TotpCredential).where(TotpCredential.identity_id == identity_id))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.identity_id == identity_id))
    db.session.commit()


# --- recovery codes ------------------------------------------------------------------------

def _code_digest(identity_id, code: str) -> str:
    normalized = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(f"{identity_id}:{normalized}".encode()).hexdigest()


def new_recovery_codes(identity_id, *, now: datetime) -> list[str]:
    """Ten fresh codes, shown once; the previous set stops working."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.identity_id == identity_id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(12))
        code = "-".join(raw[i:i + 4] for i in range(0, 12, 4))
        codes.append(code)
        db.session.add(RecoveryCode(identity_id=identity_id, digest=_code_digest(identity_id, code), created_at=now))
    db.session.commit()
    return codes


def remaining_recovery_codes(identity_id) -> int:
    return len(list(db.session.scalars(
        select(RecoveryCode.id).where(RecoveryCode.identity_id == identity_id, RecoveryCode.used_at.is_(None))
    )))


def use_recovery_code(store: Store, identity_id, code: str, *, config, now: datetime) -> bool:
    _throttle(store, identity_id, config)
    digest = _code_digest(identity_id, code or "")
    # The conditional update makes each code single-use even under concurrent requests.
    used = db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.identity_id == identity_id, RecoveryCode.digest == digest, RecoveryCode.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    db.session.commit()
    return used == 1


def verify_second_factor(store: Store, identity_id, code: str, *, config, now: datetime) -> str | None:
    """A TOTP code or a recovery code; returns the amr value it proves, or None."""
    text = (code or "").strip()
    if text.replace(" ", "").isdigit():
        return "otp" if verify_totp(store, identity_id, text, config=config) else None
    return "otp" if use_recovery_code(store, identity_id, text, config=config, now=now) else None
