"""Signing keys: generation, encryption at rest, rotation, and the per-process key ring.

Each algorithm has one ACTIVE key (signs), one NEXT key (already published, so a rotation never
shows relying parties a kid they have not seen) and RETIRED keys, which stay published until
every token they signed has expired. Rows are never deleted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from flask import current_app, has_app_context
from joserfc import jwk
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from idp.clients.models import Client
from idp.crypto import DecryptionError, SecretBox
from idp.extensions import db
from idp.oidc.models import KeyState, SigningKey
from idp.timeutil import utcnow

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
# 2048 bits for speed: ~35-60 ms to generate, ~0.25 ms per signature; 3072 costs ~2x and ~3x.
RSA_KEY_BITS = 2048
# Used for publish_until when no client is registered yet.
DEFAULT_MAX_TOKEN_LIFETIME = 3600
EXTENSION = "idp_keyring"
# Order of keys in the JWKS: the signing key first.
_STATE_ORDER = {KeyState.ACTIVE: 0, KeyState.NEXT: 1, KeyState.RETIRED: 2}


class SigningKeyError(RuntimeError):
    """A signing key is missing or cannot be used; the message says what to do."""


def _context(kid: str) -> str:
    # Binds each ciphertext to its row: a private key copied onto another kid will not decrypt.
    return f"signing-key:{kid}"


def _box(config) -> SecretBox:
    return SecretBox(config["KEY_ENCRYPTION_KEY"])


def _check_alg(alg: str) -> None:
    if alg not in ALGORITHMS:
        raise ValueError(
            f"unsupported signing algorithm {alg!r} (expected one of {', '.join(ALGORITHMS)})"
        )


def generate_key(alg: str, *, state: KeyState, now: datetime, config) -> SigningKey:
    """Build a new key pair as an unsaved row (the caller adds and commits it)."""
    _check_alg(alg)
    if alg == "RS256":
        key = jwk.RSAKey.generate_key(RSA_KEY_BITS)
    else:
        key = jwk.ECKey.generate_key("P-256")
    kid = key.thumbprint()  # RFC 7638, base64url SHA-256: stable and 43 characters
    public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKey(
        kid=kid,
        alg=alg,
        state=state,
        public_jwk=public,
        private_encrypted=_box(config).encrypt(pem, context=_context(kid)),
        created_at=now,
        activated_at=now if state == KeyState.ACTIVE else None,
    )


def decrypt_private_pem(kid: str, private_encrypted: str, box: SecretBox) -> bytes:
    """The PKCS8 PEM of a stored key; SigningKeyError if the configured KEK cannot open it."""
    try:
        return box.decrypt(private_encrypted, context=_context(kid))
    except DecryptionError as exc:
        raise SigningKeyError(
            f"cannot decrypt signing key {kid}: {exc}; is KEY_ENCRYPTION_KEY the key (or one of "
            "the keys) it was encrypted with?"
        ) from exc


def _lock_signing_keys() -> None:
    """Serialize writers of signing_keys until commit; readers are not blocked.

    No unique constraint can say "one ACTIVE key per algorithm" (kids are random), so two
    processes creating keys at once would not collide on insert: they take turns instead.
    """
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        # Conflicts with itself and with INSERT/UPDATE, not with SELECT.
        db.session.execute(text("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE"))
    elif dialect == "sqlite":
        # A write statement takes SQLite's single write lock (waiting busy_timeout for it),
        # and the reads that follow in this transaction see the latest commit.
        db.session.execute(text("UPDATE signing_keys SET kid = kid WHERE 0 = 1"))


def _missing_slots() -> list[tuple[str, KeyState]]:
    present = {
        tuple(row)
        for row in db.session.execute(
            select(SigningKey.alg, SigningKey.state).where(
                SigningKey.state.in_([KeyState.ACTIVE, KeyState.NEXT])
            )
        )
    }
    return [
        (alg, state)
        for alg in ALGORITHMS
        for state in (KeyState.ACTIVE, KeyState.NEXT)
        if (alg, state) not in present
    ]


def _invalidate_local_ring() -> None:
    # This process sees its own changes at once; others within KEY_CACHE_SECONDS.
    if has_app_context():
        ring = current_app.extensions.get(EXTENSION)
        if ring is not None:
            ring.invalidate()


def ensure_keys(*, now: datetime, config) -> list[SigningKey]:
    """Make sure each algorithm has an ACTIVE and a NEXT key; returns the keys created. Commits.

    Idempotent, and safe when several processes start together: keys are generated outside
    the lock (RSA takes tens of ms), then only the still-missing ones are inserted under it.
    """
    missing = _missing_slots()
    if not missing:
        return []
    prepared = {
        slot: generate_key(slot[0], state=slot[1], now=now, config=config) for slot in missing
    }
    for attempt in range(2):
        try:
            _lock_signing_keys()
            created = []
            for alg, state in _missing_slots():
                row = prepared.pop((alg, state), None) or generate_key(
                    alg, state=state, now=now, config=config
                )
                db.session.add(row)
                created.append(row)
            db.session.commit()
            break
        except IntegrityError:
            # Not expected (kids are random), but if a backend without the lock raced us,
            # start over from what is now committed.
            db.session.rollback()
            prepared = {}
            if attempt:
                raise
        except BaseException:
            db.session.rollback()
            raise
    if created:
        log.info(
            "signing keys created: %s",
            ", ".join(f"{k.alg}/{k.state.value}/{k.kid}" for k in created),
        )
        _invalidate_local_ring()
    return created


def max_token_lifetime() -> int:
    """The longest id_token or access token lifetime of any client (disabled ones too)."""
    longest_id, longest_access = db.session.execute(
        select(func.max(Client.id_token_lifetime), func.max(Client.access_token_lifetime))
    ).one()
    values = [v for v in (longest_id, longest_access) if v is not None]
    return max(values) if values else DEFAULT_MAX_TOKEN_LIFETIME


def _oldest_next(alg: str) -> SigningKey | None:
    # Normally the only one; otherwise the one published longest.
    return db.session.scalars(
        select(SigningKey)
        .where(SigningKey.alg == alg, SigningKey.state == KeyState.NEXT)
        .order_by(SigningKey.created_at, SigningKey.kid)
        .limit(1)
    ).first()


def rotate(alg: str, *, now: datetime, config) -> tuple[SigningKey, SigningKey]:
    """Promote the NEXT key of alg, retire the ACTIVE one, add a fresh NEXT; returns (active, next).

    The retired key stays published until every token it may have signed has expired: the
    longest token lifetime plus KEY_RETIREMENT_GRACE (which must exceed KEY_CACHE_SECONDS,
    since other processes keep signing with it until their key ring reloads). Commits.
    """
    _check_alg(alg)
    fresh = generate_key(alg, state=KeyState.NEXT, now=now, config=config)
    publish_until = now + timedelta(
        seconds=max_token_lifetime() + int(config["KEY_RETIREMENT_GRACE"])
    )
    try:
        _lock_signing_keys()
        promoted = _oldest_next(alg)
        if promoted is None:
            raise SigningKeyError(f"no NEXT {alg} key to promote; run `flask keys ensure` first")
        active = db.session.scalars(
            select(SigningKey).where(SigningKey.alg == alg, SigningKey.state == KeyState.ACTIVE)
        ).all()
        for old in active:
            old.state = KeyState.RETIRED
            old.retired_at = now
            old.publish_until = publish_until
        promoted.state = KeyState.ACTIVE
        promoted.activated_at = now
        db.session.add(fresh)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    log.info(
        "signing key rotated: %s active %s, next %s, retired %s",
        alg,
        promoted.kid,
        fresh.kid,
        ", ".join(k.kid for k in active) or "-",
    )
    _invalidate_local_ring()
    return promoted, fresh


def is_published(state: KeyState, publish_until: datetime | None, now: datetime) -> bool:
    if state != KeyState.RETIRED:
        return True
    return publish_until is not None and publish_until > now


def published_keys(now: datetime) -> list[SigningKey]:
    """Rows whose public key belongs in the JWKS at `now`."""
    rows = db.session.scalars(select(SigningKey)).all()
    return [k for k in rows if is_published(k.state, k.publish_until, now)]


def retire_expired(now: datetime) -> list[SigningKey]:
    """Retired keys whose publication ended by `now`. Nothing is deleted or changed: the
    JWKS filters on publish_until, so these keys have already dropped out of it."""
    return list(
        db.session.scalars(
            select(SigningKey)
            .where(SigningKey.state == KeyState.RETIRED, SigningKey.publish_until <= now)
            .order_by(SigningKey.publish_until)
        ).all()
    )


# --- The per-process key ring ------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    kid: str
    alg: str
    state: KeyState
    public_jwk: dict
    private_encrypted: str
    created_at: datetime
    activated_at: datetime | None
    publish_until: datetime | None


def _import_private(entry: _Entry, box: SecretBox) -> jwk.Key:
    """Decrypt and import one private key (~36 ms for RSA-2048: the ring calls this once per kid)."""
    pem = decrypt_private_pem(entry.kid, entry.private_encrypted, box)
    return jwk.import_key(
        pem, _KEY_TYPES[entry.alg], {"kid": entry.kid, "alg": entry.alg, "use": "sig"}
    )


def _import_public(entry: _Entry) -> jwk.Key:
    return jwk.import_key(dict(entry.public_jwk))


class KeyRing:
    """Signing and published keys of one application, cached for KEY_CACHE_SECONDS.

    Thread-safe. A reload reads the table again (so rotations by other processes show up)
    but keeps the key objects it already imported, by kid.
    """

    def __init__(self, config, *, clock: Callable[[], float] = time.monotonic):
        self._ttl = float(config.get("KEY_CACHE_SECONDS", 30))
        self._box = _box(config)
        self._clock = clock
        self._lock = threading.RLock()
        # (entries by kid, clock value at load); swapped as a whole so readers need no lock.
        self._snapshot: tuple[dict[str, _Entry], float] | None = None
        self._private: dict[str, jwk.Key] = {}
        self._public: dict[str, jwk.Key] = {}

    def invalidate(self) -> None:
        """Reload from the database on next use."""
        self._snapshot = None

    def _fresh(self) -> dict[str, _Entry] | None:
        snap = self._snapshot
        if snap is not None and self._clock() - snap[1] < self._ttl:
            return snap[0]
        return None

    def _entries(self) -> dict[str, _Entry]:
        entries = self._fresh()
        if entries is not None:
            return entries
        with self._lock:
            entries = self._fresh()
            if entries is None:
                entries = self._reload()
            return entries

    def _reload(self) -> dict[str, _Entry]:
        started = self._clock()
        try:
            # Own connection: never flushes or joins the caller's transaction.
            with db.engine.connect() as conn:
                rows = conn.execute(select(SigningKey.__table__)).mappings().all()
        except Exception:
            if self._snapshot is None:
                raise
            # Keep signing with what we have; try again after another period.
            log.exception("signing keys: reload failed, keeping the cached keys")
            self._snapshot = (self._snapshot[0], started)
            return self._snapshot[0]
        entries = {
            r["kid"]: _Entry(
                kid=r["kid"],
                alg=r["alg"],
                state=KeyState(r["state"]),
                public_jwk=r["public_jwk"],
                private_encrypted=r["private_encrypted"],
                created_at=r["created_at"],
                activated_at=r["activated_at"],
                publish_until=r["publish_until"],
            )
            for r in rows
        }
        # Rows are never deleted, so this only drops keys of a database that was reset.
        for cache in (self._private, self._public):
            for kid in [k for k in cache if k not in entries]:
                del cache[kid]
        self._snapshot = (entries, started)
        return entries

    def _published(self, now: datetime | None) -> list[_Entry]:
        now = now or utcnow()
        entries = [
            e for e in self._entries().values() if is_published(e.state, e.publish_until, now)
        ]
        return sorted(entries, key=lambda e: (_STATE_ORDER[e.state], e.alg, e.created_at, e.kid))

    def signing_key(self, alg: str) -> tuple[str, jwk.Key]:
        """(kid, private key object) of the ACTIVE key of alg."""
        _check_alg(alg)
        active = [
            e for e in self._entries().values() if e.alg == alg and e.state == KeyState.ACTIVE
        ]
        if not active:
            raise SigningKeyError(f"no active {alg} signing key; run `flask keys ensure`")
        # Only one normally; during a botched manual edit prefer the latest activation.
        entry = max(active, key=lambda e: (e.activated_at or e.created_at, e.kid))
        key = self._private.get(entry.kid)
        if key is None:
            with self._lock:
                key = self._private.get(entry.kid)
                if key is None:
                    key = _import_private(entry, self._box)
                    self._private[entry.kid] = key
        return entry.kid, key

    def _public_key(self, entry: _Entry) -> jwk.Key:
        key = self._public.get(entry.kid)
        if key is None:
            with self._lock:
                key = self._public.get(entry.kid)
                if key is None:
                    key = _import_public(entry)
                    self._public[entry.kid] = key
        return key

    def jwks(self, now: datetime | None = None) -> dict:
        """The public JWK Set: ACTIVE, NEXT, and RETIRED keys still within publish_until."""
        return {"keys": [dict(e.public_jwk) for e in self._published(now)]}

    def public_key(self, kid: str, now: datetime | None = None) -> jwk.Key | None:
        """The public key of a published kid, for verifying our own tokens; None if unknown."""
        for entry in self._published(now):
            if entry.kid == kid:
                return self._public_key(entry)
        return None

    def key_set(self, now: datetime | None = None) -> jwk.KeySet:
        """A joserfc KeySet of every published public key."""
        return jwk.KeySet([self._public_key(e) for e in self._published(now)])


def get_keyring() -> KeyRing:
    """The key ring of the current application, created on first use."""
    app = current_app._get_current_object()
    ring = app.extensions.get(EXTENSION)
    if ring is None:
        ring = app.extensions.setdefault(EXTENSION, KeyRing(app.config))
    return ring
