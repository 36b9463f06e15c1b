"""Legacy password hashes: every scheme accepts its password and refuses another.

The expected hashes come from code other than idp.legacy.hashes: published vectors (ASP.NET
Core's own tests, the SHA-crypt specification, the OpenBSD bcrypt vectors), the bcrypt
package, libpass's own hashing for its schemes, or hashlib computations written out here.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import unicodedata

import bcrypt as bcrypt_lib
import pytest
from passlib.hash import md5_crypt, phpass, sha512_crypt

from idp.legacy import hashes

PASSWORD = "mật khẩu cũ 2019"
WRONG = "mật khẩu cũ 2020"


def _md5(text):
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


def _aspnet_v3(password: str, salt: bytes, prf: int, iterations: int, length: int) -> str:
    algorithm = {0: "sha1", 1: "sha256", 2: "sha512"}[prf]
    subkey = hashlib.pbkdf2_hmac(algorithm, password.encode(), salt, iterations, length)
    return base64.b64encode(b"\x01" + struct.pack(">III", prf, iterations, len(salt)) + salt + subkey).decode()


def _django(password: str, salt: str, iterations: int) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def _membership(password: str, salt: bytes) -> tuple[str, str]:
    digest = hashlib.sha1(salt + password.encode("utf-16-le")).digest()  # noqa: S324
    return base64.b64encode(digest).decode(), base64.b64encode(salt).decode()


def _bcrypt(password: str, prefix: str) -> str:
    made = bcrypt_lib.hashpw(password.encode(), bcrypt_lib.gensalt(rounds=4)).decode()
    # $2a$, $2b$ and $2y$ differ only in how old implementations handled rare inputs.
    return prefix + made[4:]


SALT16 = bytes(range(16))

# (scheme, stored hash, salt, salt position, right password)
CASES = [
    ("md5_hex", "5f4dcc3b5aa765d61d8327deb882cf99", None, None, "password"),  # published
    ("md5_hex", _md5(PASSWORD), None, None, PASSWORD),
    ("md5_hex", _md5(PASSWORD).upper(), None, None, PASSWORD),
    ("sha1_hex", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8", None, None, "password"),  # published
    ("sha1_hex", hashlib.sha1(PASSWORD.encode()).hexdigest(), None, None, PASSWORD),  # noqa: S324
    (
        "salted_sha256",
        hashlib.sha256(b"s4lt:" + PASSWORD.encode()).hexdigest(),
        "s4lt:", "before", PASSWORD,
    ),
    (
        "salted_sha256",
        hashlib.sha256(PASSWORD.encode() + b"s4lt:").hexdigest(),
        "s4lt:", "after", PASSWORD,
    ),
    # OpenBSD / jBCrypt published vector.
    ("bcrypt", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", None, None, "U*U"),
    ("bcrypt", _bcrypt(PASSWORD, "$2a$"), None, None, PASSWORD),
    ("bcrypt", _bcrypt(PASSWORD, "$2b$"), None, None, PASSWORD),
    ("bcrypt", _bcrypt(PASSWORD, "$2y$"), None, None, PASSWORD),
    ("django_pbkdf2_sha256", _django(PASSWORD, "seasalt42", 1000), None, None, PASSWORD),
    # ASP.NET Core Identity's own test vectors (PasswordHasherTest.cs), password "my password".
    (
        "aspnet_identity_v2",
        "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJg==",
        None, None, "my password",
    ),
    (
        "aspnet_identity_v3",
        "AQAAAAEAACcQAAAAEAABAgMEBQYHCAkKCwwNDg+yWU7rLgUwPZb1Itsmra7cbxw2EFpwpVFIEtP+JIuUEw==",
        None, None, "my password",
    ),
    (
        "aspnet_identity_v3",
        "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHw",
        None, None, "my password",
    ),
    (
        "aspnet_identity_v3",
        "AQAAAAAAAAD6AAAAEAhftMyfTJylOlZT+eEotFXd1elee8ih5WsjXaR3PA9M",
        None, None, "my password",
    ),
    ("aspnet_identity_v3", _aspnet_v3(PASSWORD, SALT16, 1, 1000, 32), None, None, PASSWORD),
    (
        "aspnet_identity",
        "ANXrDknc7fGPpigibZXXZFMX4aoqz44JveK6jQuwY3eH/UyPhvr5xTPeGYEckLxz9A==",
        None, None, "my password",
    ),
    ("aspnet_identity", _aspnet_v3(PASSWORD, SALT16, 2, 500, 64), None, None, PASSWORD),
    ("aspnet_membership_sha1", *_membership(PASSWORD, SALT16), None, PASSWORD),
    ("phpass", phpass.using(rounds=8).hash(PASSWORD), None, None, PASSWORD),
    ("phpass", "$H$" + phpass.using(rounds=8).hash(PASSWORD)[3:], None, None, PASSWORD),
    ("md5_crypt", md5_crypt.hash(PASSWORD), None, None, PASSWORD),
    # The SHA-crypt specification's first test vector.
    (
        "sha512_crypt",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
        None, None, "Hello world!",
    ),
    ("sha512_crypt", sha512_crypt.using(rounds=5000).hash(PASSWORD), None, None, PASSWORD),
]


def test_every_scheme_has_a_case():
    assert {case[0] for case in CASES} == set(hashes.SCHEMES)


@pytest.mark.parametrize(("scheme", "stored", "salt", "position", "password"), CASES)
def test_right_password_verifies(scheme, stored, salt, position, password):
    assert hashes.looks_valid(scheme, stored, salt=salt)
    assert hashes.verify(scheme, stored, password, salt=salt, salt_position=position)


@pytest.mark.parametrize(("scheme", "stored", "salt", "position", "password"), CASES)
def test_wrong_password_is_refused(scheme, stored, salt, position, password):
    assert not hashes.verify(scheme, stored, password + "x", salt=salt, salt_position=position)
    assert not hashes.verify(scheme, stored, WRONG, salt=salt, salt_position=position)
    assert not hashes.verify(scheme, stored, "", salt=salt, salt_position=position)


def test_salted_sha256_needs_the_right_salt_and_position():
    stored = hashlib.sha256(b"abc" + PASSWORD.encode()).hexdigest()
    assert hashes.verify("salted_sha256", stored, PASSWORD, salt="abc", salt_position="before")
    assert not hashes.verify("salted_sha256", stored, PASSWORD, salt="abc", salt_position="after")
    assert not hashes.verify("salted_sha256", stored, PASSWORD, salt="abd", salt_position="before")
    assert not hashes.verify("salted_sha256", stored, PASSWORD, salt=None, salt_position="before")
    assert not hashes.verify("salted_sha256", stored, PASSWORD, salt="abc", salt_position=None)


def test_membership_needs_its_salt():
    stored, salt = _membership(PASSWORD, SALT16)
    other = base64.b64encode(bytes(16)).decode()
    assert not hashes.verify("aspnet_membership_sha1", stored, PASSWORD, salt=other)
    assert not hashes.verify("aspnet_membership_sha1", stored, PASSWORD)


@pytest.mark.parametrize(
    "stored",
    [
        # ASP.NET Core's failure cases: wrong subkey, too short, extra data.
        "AAABAgMEBQYHCAkKCwwNDg+uAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALtH1uJg==",
        "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggE=",
        "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJgAAAAAAAAAAAAA=",
        "AQAAAAAAAAD6AAAAEAhftMyfTJyAAAAAAAAAAAAAAAAAAAih5WsjXaR3PA9M",
        "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4A=",
        "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHwAAAAAAAAAAAA",
    ],
)
def test_aspnet_identity_failure_vectors(stored):
    assert not hashes.verify("aspnet_identity", stored, "my password")


def test_aspnet_versions_do_not_cross():
    v2 = "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJg=="
    assert not hashes.verify("aspnet_identity_v3", v2, "my password")
    assert not hashes.looks_valid("aspnet_identity_v3", v2)


def test_bcrypt_uses_the_first_72_bytes_like_the_systems_that_made_it():
    long = "đ" * 40  # 80 bytes in UTF-8
    stored = bcrypt_lib.hashpw(long.encode()[:72], bcrypt_lib.gensalt(rounds=4)).decode()
    assert hashes.verify("bcrypt", stored, long)


def test_a_password_typed_in_another_normal_form_still_verifies():
    nfd = unicodedata.normalize("NFD", PASSWORD)
    stored = _md5(nfd)  # the old form stored the decomposed bytes
    assert hashes.verify("md5_hex", stored, unicodedata.normalize("NFC", PASSWORD))


@pytest.mark.parametrize(
    ("scheme", "stored"),
    [
        ("md5_hex", "not-hex"),
        ("md5_hex", "ñ" * 32),
        ("bcrypt", "$2b$04$short"),
        ("bcrypt", "$2x$04$" + "a" * 53),
        ("django_pbkdf2_sha256", "pbkdf2_sha256$x$y"),
        ("aspnet_identity_v2", "%%%"),
        ("aspnet_identity_v3", base64.b64encode(b"\x01" + struct.pack(">III", 9, 1, 16) + bytes(32)).decode()),
        ("phpass", "$P$short"),
        ("md5_crypt", "$1$"),
        ("sha512_crypt", "$6$$"),
        ("no_such_scheme", "5f4dcc3b5aa765d61d8327deb882cf99"),
    ],
)
def test_malformed_hashes_are_refused_without_raising(scheme, stored):
    assert not hashes.looks_valid(scheme, stored)
    assert not hashes.verify(scheme, stored, "password")


def test_aspnet_iteration_count_is_bounded():
    huge = base64.b64encode(
        b"\x01" + struct.pack(">III", 1, 2**32 - 1, 16) + bytes(16) + bytes(32)
    ).decode()
    assert not hashes.looks_valid("aspnet_identity_v3", huge)
    assert not hashes.verify("aspnet_identity_v3", huge, "password")
