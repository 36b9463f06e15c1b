"""The token validators against crafted tokens, with the keys served by a fake JWKS server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from idp.federation import tokens
from idp.federation.tokens import TokenError, validate_id_token, validate_logout_token
from idp.federation.upstream import JwksCache
from tests.federation.fakes import DictStore, JsonServer, Signer, id_claims, logout_claims, unsigned

ISS = "https://vneid.example"
CLIENT = "tinh-idp"


@pytest.fixture(scope="module")
def signer():
    return Signer()


@pytest.fixture
def server(signer):
    with JsonServer() as srv:
        srv.routes["/jwks"] = signer.jwks()
        yield srv


@pytest.fixture
def keys(server):
    return JwksCache(slug="t", jwks_uri=server.base + "/jwks", store=DictStore(), timeout=2)


def check(token, keys, **kw):
    return validate_id_token(token, issuer=ISS, client_id=CLIENT, nonce=kw.pop("nonce", "n-1"), keys=keys,
                             now=kw.pop("now", time.time()), **kw)


def reason(fn, *args, **kwargs) -> str:
    with pytest.raises(TokenError) as info:
        fn(*args, **kwargs)
    return info.value.reason


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_a_good_id_token_passes(signer, keys, alg):
    claims = check(signer.sign(id_claims(ISS, CLIENT), alg=alg), keys)
    assert claims["sub"] == "upstream-sub-1"


def test_aud_as_a_list_of_only_us_passes_and_azp_must_be_us(signer, keys):
    assert check(signer.sign(id_claims(ISS, CLIENT, aud=[CLIENT])), keys)
    assert check(signer.sign(id_claims(ISS, CLIENT, aud=[CLIENT], azp=CLIENT)), keys)
    assert reason(check, signer.sign(id_claims(ISS, CLIENT, azp="other")), keys) == "wrong_azp"


@pytest.mark.parametrize(("changes", "expected"), [
    ({"iss": "https://evil.example"}, "wrong_issuer"),
    ({"aud": "another-client"}, "wrong_audience"),
    ({"aud": [CLIENT, "another-client"]}, "wrong_audience"),
    ({"aud": None}, "wrong_audience"),
    ({"nonce": "someone-elses"}, "wrong_nonce"),
    ({"nonce": None}, "wrong_nonce"),
    # Times are fixed at collection: far enough from the edges to hold through a long run.
    ({"exp": int(time.time()) - 120}, "expired"),
    ({"exp": None}, "bad_exp"),
    ({"iat": int(time.time()) + 86400}, "issued_in_future"),
    ({"iat": int(time.time()) - 3600, "exp": int(time.time()) + 86400}, "too_old"),
    ({"iat": "yesterday"}, "bad_iat"),
    ({"nbf": int(time.time()) + 86400}, "not_yet_valid"),
    ({"sub": None}, "bad_sub"),
    ({"sub": ""}, "bad_sub"),
    ({"events": {tokens.BACKCHANNEL_EVENT: {}}}, "wrong_type"),
])
def test_bad_claims_are_refused(signer, keys, changes, expected):
    claims = {**id_claims(ISS, CLIENT), **changes}
    token = signer.sign({k: v for k, v in claims.items() if v is not None})
    assert reason(check, token, keys) == expected


def test_leeway_allows_a_little_clock_skew(signer, keys):
    now = time.time()
    token = signer.sign(id_claims(ISS, CLIENT, iat=int(now) + 30, exp=int(now) - 30 + 300))
    assert check(token, keys, now=now)
    expired = signer.sign(id_claims(ISS, CLIENT, iat=int(now) - 400, exp=int(now) - 30))
    assert check(expired, keys, now=now)  # within the 60 s leeway
    assert reason(check, expired, keys, now=now + 60) == "expired"


def test_alg_none_and_hmac_are_refused_before_any_key(signer, keys, server):
    claims = id_claims(ISS, CLIENT)
    assert reason(check, unsigned(claims), keys) == "alg_not_allowed"
    # HS256 "signed" with the upstream's public key as the secret: the classic confusion.
    # (joserfc refuses to make one, so it is made by hand.)
    public_pem = signer.rsa.as_pem(private=False)
    head_body = jwt_header_only("HS256", claims).rsplit(".", 1)[0]
    mac = hmac.new(public_pem, head_body.encode(), hashlib.sha256).digest()
    hs = head_body + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert reason(check, hs, keys) == "alg_not_allowed"
    hs2 = jwt.encode({"alg": "HS256"}, claims, OctKey.generate_key(256), algorithms=["HS256"])
    assert reason(check, hs2, keys) == "alg_not_allowed"
    for alg in ("HS512", "RS384", "EdDSA"):
        assert reason(check, jwt_header_only(alg, claims), keys) == "alg_not_allowed"
    assert server.hits.get("/jwks", 0) == 0


def jwt_header_only(alg, claims) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'kid': 'rsa-1'})}.{part(claims)}.c2ln"


def test_a_token_signed_by_another_key_is_refused(signer, keys, server):
    intruder = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})  # same kid, other key
    token = signer.sign(id_claims(ISS, CLIENT), key=intruder)
    assert reason(check, token, keys) == "bad_signature"
    other_kid = RSAKey.generate_key(2048, parameters={"kid": "rsa-evil"})
    assert reason(check, signer.sign(id_claims(ISS, CLIENT), key=other_kid), keys) == "unknown_key"


def test_malformed_tokens(keys):
    for value in (None, "", "a.b", "a.b.c.d", "x" * 20000, "e30.e30.e30"):
        assert reason(check, value, keys) in ("malformed", "alg_not_allowed")


def test_typed_access_or_logout_tokens_are_not_id_tokens(signer, keys):
    for typ in ("at+jwt", "logout+jwt"):
        token = signer.sign(id_claims(ISS, CLIENT), header={"typ": typ})
        assert reason(check, token, keys) == "wrong_type"


def test_at_hash_when_present_must_match(signer, keys):
    access = "access-token-value"
    digest = hashlib.sha256(access.encode()).digest()[:16]
    good = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert check(signer.sign(id_claims(ISS, CLIENT, at_hash=good)), keys, access_token=access)
    assert reason(check, signer.sign(id_claims(ISS, CLIENT, at_hash="AAAA")), keys,
                  access_token=access) == "wrong_at_hash"


def test_jwks_is_cached_and_refetched_once_for_an_unknown_kid(signer, keys, server):
    for _ in range(3):
        check(signer.sign(id_claims(ISS, CLIENT)), keys)
    assert server.hits["/jwks"] == 1
    # The upstream rotates: a token with the new kid makes one refetch, then passes.
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rsa-2", "use": "sig"})
    server.routes["/jwks"] = signer.jwks(signer.rsa, rotated)
    assert check(signer.sign(id_claims(ISS, CLIENT), key=rotated), keys)
    assert server.hits["/jwks"] == 2
    # A kid nobody publishes: one refetch per ID token, then refused.
    ghost = RSAKey.generate_key(2048, parameters={"kid": "ghost"})
    assert reason(check, signer.sign(id_claims(ISS, CLIENT), key=ghost), keys) == "unknown_key"
    assert server.hits["/jwks"] == 3


def test_jwks_entries_that_are_not_signing_keys_are_ignored(signer, server, keys):
    jwks = signer.jwks()
    jwks["keys"].append({"kty": "RSA", "use": "enc", "kid": "enc-1", "n": "AQAB", "e": "AQAB"})
    jwks["keys"].append({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"})
    jwks["keys"].append({"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"})
    server.routes["/jwks"] = jwks
    assert check(signer.sign(id_claims(ISS, CLIENT)), keys)


# --- logout tokens ---------------------------------------------------------------------------

def lcheck(token, keys, **kw):
    return validate_logout_token(token, issuer=ISS, client_id=CLIENT, keys=keys, now=time.time(), **kw)


def sign_logout(signer, claims, **kw):
    return signer.sign(claims, header={"typ": "logout+jwt"}, **kw)


def test_a_good_logout_token_passes(signer, keys):
    claims = lcheck(sign_logout(signer, logout_claims(ISS, CLIENT)), keys)
    assert claims["sid"] == "up-sid-1"
    assert lcheck(sign_logout(signer, logout_claims(ISS, CLIENT, sid=None, sub="s-1")), keys)["sub"] == "s-1"
    # typ JWT or absent is accepted too (not every upstream types its logout tokens).
    assert lcheck(signer.sign(logout_claims(ISS, CLIENT)), keys)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"nonce": "n"}, "nonce_present"),
    ({"events": None}, "bad_events"),
    ({"events": {"http://schemas.openid.net/event/other": {}}}, "bad_events"),
    ({"events": {tokens.BACKCHANNEL_EVENT: "yes"}}, "bad_events"),
    ({"sid": None, "sub": None}, "no_sid_or_sub"),
    ({"jti": None}, "bad_jti"),
    ({"aud": "another-client"}, "wrong_audience"),
    ({"iss": "https://evil.example"}, "wrong_issuer"),
    ({"iat": int(time.time()) - 3600, "exp": None}, "too_old"),
    ({"iat": int(time.time()) + 86400}, "issued_in_future"),
    ({"exp": int(time.time()) - 120}, "expired"),
])
def test_bad_logout_tokens_are_refused(signer, keys, changes, expected):
    claims = {**logout_claims(ISS, CLIENT), **changes}
    token = sign_logout(signer, {k: v for k, v in claims.items() if v is not None})
    assert reason(lcheck, token, keys) == expected


def test_logout_token_types_and_algs(signer, keys):
    assert reason(lcheck, signer.sign(logout_claims(ISS, CLIENT), header={"typ": "at+jwt"}), keys) == "wrong_type"
    assert reason(lcheck, unsigned(logout_claims(ISS, CLIENT)), keys) == "alg_not_allowed"


def test_logout_tokens_with_unknown_kids_refetch_at_most_once_per_interval(signer, keys, server):
    lcheck(sign_logout(signer, logout_claims(ISS, CLIENT)), keys)
    assert server.hits["/jwks"] == 1
    for n in range(5):
        ghost = RSAKey.generate_key(2048, parameters={"kid": f"ghost-{n}"})
        assert reason(lcheck, sign_logout(signer, logout_claims(ISS, CLIENT), key=ghost), keys) == "unknown_key"
    # Anyone can post logout tokens: forged kids cost the upstream one JWKS fetch, not five.
    assert server.hits["/jwks"] == 2
