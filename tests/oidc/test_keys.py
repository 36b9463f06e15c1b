"""Signing keys: encryption at rest, ensure/rotate, the JWKS, and the per-process key ring."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from joserfc import jwk, jwt
from joserfc.errors import BadSignatureError

from idp.clients.models import AuthMethod, Client, ClientType
from idp.crypto import DecryptionError, SecretBox
from idp.extensions import db
from idp.oidc import cli_keys
from idp.oidc import keys as keys_mod
from idp.oidc.keys import KeyRing, SigningKeyError, ensure_keys, get_keyring, retire_expired, rotate
from idp.oidc.models import KeyState, SigningKey

NOW = datetime(2026, 12, 1, 8, 0, 0)
OTHER_KEK = "another-key-encryption-key-0123456789abcdef"


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _keys(alg=None, state=None):
    query = sa.select(SigningKey)
    if alg:
        query = query.where(SigningKey.alg == alg)
    if state:
        query = query.where(SigningKey.state == state)
    return db.session.scalars(query).all()


def _kids(jwks):
    return {k["kid"] for k in jwks["keys"]}


def _add_client(client_id, *, id_token_lifetime=600, access_token_lifetime=600):
    db.session.add(
        Client(
            client_id=client_id,
            name=client_id,
            agency="Sở Thông tin",
            client_type=ClientType.CONFIDENTIAL,
            auth_method=AuthMethod.SECRET_BASIC,
            redirect_uris=["https://rp.example.vn/cb"],
            post_logout_redirect_uris=[],
            grant_types=["authorization_code"],
            scopes=["openid"],
            id_token_lifetime=id_token_lifetime,
            access_token_lifetime=access_token_lifetime,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    db.session.commit()


def _sign(ring, alg, claims=None):
    kid, key = ring.signing_key(alg)
    return jwt.encode({"alg": alg, "kid": kid}, claims or {"sub": "x"}, key)


# --- Keys at rest ------------------------------------------------------------------------


def test_private_keys_are_encrypted_and_bound_to_their_kid(app_ctx):
    ensure_keys(now=NOW, config=app_ctx.config)
    rows = db.session.execute(sa.text("SELECT kid, private_encrypted FROM signing_keys")).all()
    assert len(rows) == 4
    box = SecretBox(app_ctx.config["KEY_ENCRYPTION_KEY"])
    for kid, stored in rows:
        assert "PRIVATE KEY" not in stored and "-----" not in stored
        assert stored.startswith("v1.")
        pem = box.decrypt(stored, context=f"signing-key:{kid}")
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8
        # The context binds the ciphertext to its row.
        other_kid = next(k for k, _ in rows if k != kid)
        with pytest.raises(DecryptionError, match="another context"):
            box.decrypt(stored, context=f"signing-key:{other_kid}")
        # Another key-encryption key cannot open it.
        with pytest.raises(DecryptionError, match="no configured key-encryption key"):
            SecretBox(OTHER_KEK).decrypt(stored, context=f"signing-key:{kid}")


def test_public_jwk_has_thumbprint_kid_and_no_private_members(app_ctx):
    ensure_keys(now=NOW, config=app_ctx.config)
    for row in _keys():
        public = row.public_jwk
        assert public["kid"] == row.kid == jwk.import_key(public).thumbprint()
        assert public["alg"] == row.alg and public["use"] == "sig"
        assert public["kty"] == {"RS256": "RSA", "ES256": "EC"}[row.alg]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & public.keys()
        if row.alg == "ES256":
            assert public["crv"] == "P-256"
        else:
            assert jwk.import_key(public).public_key.key_size == keys_mod.RSA_KEY_BITS


def test_wrong_key_encryption_key_gives_a_clear_error(make_app):
    app = make_app()
    with app.app_context():
        ensure_keys(now=NOW, config=app.config)
    other = make_app(KEY_ENCRYPTION_KEY=OTHER_KEK)
    with other.app_context():
        ring = KeyRing(other.config)
        assert len(ring.jwks(now=NOW)["keys"]) == 4  # public keys need no decryption
        with pytest.raises(
            SigningKeyError, match="cannot decrypt signing key .*KEY_ENCRYPTION_KEY"
        ):
            ring.signing_key("RS256")


def test_key_encryption_key_rotation_still_decrypts(make_app):
    app = make_app()
    with app.app_context():
        ensure_keys(now=NOW, config=app.config)
    rotated = make_app(KEY_ENCRYPTION_KEY=f"{OTHER_KEK},{app.config['KEY_ENCRYPTION_KEY']}")
    with rotated.app_context():
        kid, _ = KeyRing(rotated.config).signing_key("ES256")
        assert kid


# --- ensure_keys ---------------------------------------------------------------------------


def test_ensure_keys_is_idempotent(app_ctx):
    created = ensure_keys(now=NOW, config=app_ctx.config)
    assert sorted((k.alg, k.state.value) for k in created) == [
        ("ES256", "active"),
        ("ES256", "next"),
        ("RS256", "active"),
        ("RS256", "next"),
    ]
    assert ensure_keys(now=NOW, config=app_ctx.config) == []
    assert len(_keys()) == 4
    for alg in ("RS256", "ES256"):
        assert len(_keys(alg, KeyState.ACTIVE)) == 1
        assert len(_keys(alg, KeyState.NEXT)) == 1
        assert _keys(alg, KeyState.ACTIVE)[0].activated_at == NOW


def test_ensure_keys_fills_only_what_is_missing(app_ctx):
    ensure_keys(now=NOW, config=app_ctx.config)
    db.session.delete(_keys("ES256", KeyState.NEXT)[0])
    db.session.commit()
    created = ensure_keys(now=NOW, config=app_ctx.config)
    assert [(k.alg, k.state) for k in created] == [("ES256", KeyState.NEXT)]


def test_ensure_keys_from_two_processes_at_once_makes_one_set(make_app, monkeypatch):
    apps = [make_app(), make_app()]
    # Both callers pass the "anything missing?" check and generate keys before either locks.
    barrier = threading.Barrier(2, timeout=20)
    real_lock = keys_mod._lock_signing_keys

    def lock_after_both_generated():
        barrier.wait()
        real_lock()

    monkeypatch.setattr(keys_mod, "_lock_signing_keys", lock_after_both_generated)
    results, errors = [], []

    def run(app):
        try:
            with app.app_context():
                results.append(len(ensure_keys(now=NOW, config=app.config)))
                db.session.remove()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(results) == [0, 4]
    with apps[0].app_context():
        assert len(_keys()) == 4


# --- Rotation and the JWKS ---------------------------------------------------------------


def test_rotation_promotes_a_key_that_was_already_published(app_ctx):
    ensure_keys(now=NOW, config=app_ctx.config)
    ring = get_keyring()
    old_kid, _ = ring.signing_key("RS256")
    jwks_before = ring.jwks(now=NOW)
    es_before = _keys("ES256")

    later = NOW + timedelta(days=30)
    active, nxt = rotate("RS256", now=later, config=app_ctx.config)

    assert active.kid in _kids(jwks_before)  # no RP ever sees an unknown kid
    assert active.state == KeyState.ACTIVE and active.activated_at == later
    assert nxt.state == KeyState.NEXT and nxt.kid not in _kids(jwks_before)
    old = db.session.get(SigningKey, old_kid)
    assert old.state == KeyState.RETIRED and old.retired_at == later
    grace = app_ctx.config["KEY_RETIREMENT_GRACE"]
    assert old.publish_until == later + timedelta(seconds=3600 + grace)  # no clients: 3600

    # This process sees its own rotation at once.
    assert ring.signing_key("RS256")[0] == active.kid
    after = ring.jwks(now=later)
    assert _kids(after) == _kids(jwks_before) | {nxt.kid}
    assert after["keys"][0]["kid"] in {active.kid, ring.signing_key("ES256")[0]}
    # The other algorithm is untouched.
    assert {(k.kid, k.state) for k in _keys("ES256")} == {(k.kid, k.state) for k in es_before}
    assert len(_keys("RS256", KeyState.ACTIVE)) == 1 and len(_keys("RS256", KeyState.NEXT)) == 1


def test_retired_key_is_published_until_the_longest_token_expires(app_ctx):
    _add_client("short", id_token_lifetime=300, access_token_lifetime=600)
    _add_client("long", id_token_lifetime=900, access_token_lifetime=7200)
    ensure_keys(now=NOW, config=app_ctx.config)
    old_kid = _keys("ES256", KeyState.ACTIVE)[0].kid
    rotate("ES256", now=NOW, config=app_ctx.config)
    grace = app_ctx.config["KEY_RETIREMENT_GRACE"]
    until = NOW + timedelta(seconds=7200 + grace)
    assert db.session.get(SigningKey, old_kid).publish_until == until

    ring = get_keyring()
    assert old_kid in _kids(ring.jwks(now=until - timedelta(seconds=1)))
    assert ring.public_key(old_kid, now=until - timedelta(seconds=1)) is not None
    assert retire_expired(until - timedelta(seconds=1)) == []

    gone = until + timedelta(seconds=1)
    assert old_kid not in _kids(ring.jwks(now=gone))
    assert ring.public_key(old_kid, now=gone) is None
    assert old_kid not in {k.kid for k in ring.key_set(now=gone)}
    assert [k.kid for k in retire_expired(gone)] == [old_kid]
    assert old_kid not in {k.kid for k in keys_mod.published_keys(gone)}
    # Nothing is deleted.
    assert db.session.get(SigningKey, old_kid) is not None
    assert len(ring.jwks(now=gone)["keys"]) == 4


def test_rotate_without_next_key_is_refused(app_ctx):
    with pytest.raises(SigningKeyError, match="no NEXT RS256 key"):
        rotate("RS256", now=NOW, config=app_ctx.config)
    assert _keys() == []


def test_unknown_algorithm_is_refused(app_ctx):
    with pytest.raises(ValueError, match="unsupported signing algorithm"):
        keys_mod.generate_key("HS256", state=KeyState.NEXT, now=NOW, config=app_ctx.config)
    with pytest.raises(ValueError, match="unsupported signing algorithm"):
        get_keyring().signing_key("none")


# --- The key ring ------------------------------------------------------------------------


def test_no_active_key_is_a_clear_error(app_ctx):
    with pytest.raises(
        SigningKeyError, match="no active RS256 signing key; run `flask keys ensure`"
    ):
        get_keyring().signing_key("RS256")


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_token_signed_with_the_ring_verifies_with_the_jwks(app_ctx, alg):
    ensure_keys(now=NOW, config=app_ctx.config)
    ring = get_keyring()
    kid, _ = ring.signing_key(alg)
    token = _sign(ring, alg, {"iss": "http://localhost", "sub": "abc"})

    # As a relying party would: from the published JSON only.
    rp_keys = jwk.KeySet.import_key_set(ring.jwks())
    decoded = jwt.decode(token, rp_keys, algorithms=[alg])
    assert decoded.header["kid"] == kid and decoded.header["alg"] == alg
    assert decoded.claims["sub"] == "abc"
    # And inside the IdP (id_token_hint).
    assert jwt.decode(token, ring.key_set(), algorithms=[alg]).claims["sub"] == "abc"
    assert jwt.decode(token, ring.public_key(kid), algorithms=[alg]).claims["sub"] == "abc"
    # Another published key of the same type does not verify it.
    nxt = _keys(alg, KeyState.NEXT)[0]
    with pytest.raises(BadSignatureError):
        jwt.decode(token, jwk.import_key(nxt.public_jwk), algorithms=[alg])


def test_the_ring_imports_each_private_key_once(app_ctx, monkeypatch):
    ensure_keys(now=NOW, config=app_ctx.config)
    imported = []
    real_import = keys_mod._import_private

    def spy(entry, box):
        imported.append(entry.kid)
        return real_import(entry, box)

    monkeypatch.setattr(keys_mod, "_import_private", spy)
    clock = FakeClock()
    ring = KeyRing(app_ctx.config, clock=clock)
    for i in range(100):
        _sign(ring, "RS256")
        _sign(ring, "ES256")
        if i % 10 == 0:
            clock.t += 31  # reloads from the database keep the imported objects
    ring.invalidate()
    _sign(ring, "RS256")
    assert sorted(imported) == sorted({ring.signing_key("RS256")[0], ring.signing_key("ES256")[0]})

    # After a rotation only the newly active key is imported.
    active, _ = rotate("RS256", now=NOW, config=app_ctx.config)
    ring.invalidate()
    for _ in range(10):
        _sign(ring, "RS256")
    assert len(imported) == 3 and imported[-1] == active.kid


def test_another_app_sees_a_rotation_after_its_cache_expires(make_app):
    first, second = make_app(), make_app(KEY_CACHE_SECONDS=30)
    clock = FakeClock()
    with first.app_context():
        ensure_keys(now=NOW, config=first.config)
    with second.app_context():
        ring = KeyRing(second.config, clock=clock)
        second.extensions[keys_mod.EXTENSION] = ring
        old_kid, _ = get_keyring().signing_key("RS256")
        jwks_before = ring.jwks(now=NOW)

    with first.app_context():
        active, nxt = rotate("RS256", now=NOW, config=first.config)
        assert get_keyring().signing_key("RS256")[0] == active.kid

    with second.app_context():
        clock.t += 29  # still cached: keeps signing with the old key, which stays published
        assert get_keyring().signing_key("RS256")[0] == old_kid
        assert ring.jwks(now=NOW) == jwks_before
        clock.t += 2
        assert get_keyring().signing_key("RS256")[0] == active.kid
        assert nxt.kid in _kids(ring.jwks(now=NOW))
        assert old_kid in _kids(ring.jwks(now=NOW))


def test_get_keyring_is_one_per_app(make_app):
    first, second = make_app(), make_app()
    with first.app_context():
        ring = get_keyring()
        assert get_keyring() is ring
    with second.app_context():
        assert get_keyring() is not ring


# --- CLI ---------------------------------------------------------------------------------


def test_cli_ensure_list_rotate(app):
    runner = app.test_cli_runner()
    result = runner.invoke(cli_keys.keys, ["list"])
    assert result.exit_code == 0 and "No signing keys" in result.output

    result = runner.invoke(cli_keys.keys, ["ensure"])
    assert result.exit_code == 0, result.output
    assert result.output.count("Created") == 4
    assert "nothing to do" in runner.invoke(cli_keys.keys, ["ensure"]).output

    with app.app_context():
        before = {k.alg: k.kid for k in _keys(state=KeyState.ACTIVE)}
        nxt = {k.alg: k.kid for k in _keys(state=KeyState.NEXT)}
    result = runner.invoke(cli_keys.keys, ["rotate", "--alg", "RS256"])
    assert result.exit_code == 0, result.output
    assert f"RS256: active {nxt['RS256']}" in result.output
    assert f"RS256: retired {before['RS256']}, published until" in result.output
    assert "ES256" not in result.output

    result = runner.invoke(cli_keys.keys, ["list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["kid", "alg", "state", "created"]
    assert len(lines) == 1 + 5
    assert any(before["RS256"] in line and "retired" in line for line in lines)

    result = runner.invoke(cli_keys.keys, ["rotate"])
    assert result.exit_code == 0, result.output
    assert "RS256: active" in result.output and "ES256: active" in result.output
    assert runner.invoke(cli_keys.keys, ["rotate", "--alg", "HS256"]).exit_code != 0


def test_cli_rotate_on_an_empty_database_creates_then_rotates(app):
    result = app.test_cli_runner().invoke(cli_keys.keys, ["rotate", "--alg", "ES256"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert len(_keys("ES256")) == 3 and len(_keys("RS256")) == 2
