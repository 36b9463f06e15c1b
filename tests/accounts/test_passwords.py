"""Password hashing and policy: pure tests with a plain dict config (no app, no database)."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from pathlib import Path

import pytest
from flask import has_app_context

from idp.accounts import passwords
from idp.errors import ValidationError

ROOT = Path(__file__).resolve().parents[2]
# Small argon2 parameters keep the suite fast; the defaults are checked once below.
FAST = {"ARGON2_MEMORY_KIB": 1024, "ARGON2_TIME_COST": 1, "ARGON2_PARALLELISM": 1}
FAST_2 = {"ARGON2_MEMORY_KIB": 2048, "ARGON2_TIME_COST": 1, "ARGON2_PARALLELISM": 1}
GOOD = "correct horse battery staple"
PERSON = ["001099012345", "+84912345678", "Nguyễn Văn An", "an.nguyen.hue@example.vn"]


def policy(password, *, mfa=False, personal=(), **config):
    return passwords.check_password_policy(
        password, config=config, has_second_factor=mfa, personal_values=personal
    )


def refusal(password, **kwargs) -> str:
    with pytest.raises(ValidationError) as info:
        policy(password, **kwargs)
    assert info.value.field == "password"
    return str(info.value.message)


TOO_SHORT = "at least"
TOO_LONG = "at most"
COMMON = "too common or too easy to guess"
PERSONAL = "personal information"


# --- hashing ---------------------------------------------------------------


def test_default_parameters_are_those_of_base_toml():
    with (ROOT / "config" / "base.toml").open("rb") as fh:
        base = tomllib.load(fh)
    config = {k: v for k, v in base.items() if k.startswith("ARGON2_")}
    assert config == {"ARGON2_MEMORY_KIB": 19456, "ARGON2_TIME_COST": 2, "ARGON2_PARALLELISM": 1}
    stored = passwords.hash_password(GOOD, config)
    assert re.fullmatch(
        r"\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+", stored
    )
    # Missing keys fall back to the same values.
    assert passwords.hash_password(GOOD, {}).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify_password(stored, GOOD, {}) == (True, None)


def test_hasher_is_cached_per_parameter_tuple():
    assert passwords.make_hasher(FAST) is passwords.make_hasher(dict(FAST))
    assert passwords.make_hasher(FAST) is not passwords.make_hasher(FAST_2)
    assert passwords.make_hasher(FAST).memory_cost == 1024
    assert passwords.make_hasher(FAST).type is passwords.Type.ID


def test_hash_is_salted_and_verifies():
    first = passwords.hash_password(GOOD, FAST)
    second = passwords.hash_password(GOOD, FAST)
    assert first != second
    assert first.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert passwords.verify_password(first, GOOD, FAST) == (True, None)
    assert passwords.verify_password(second, GOOD, FAST) == (True, None)


def test_wrong_password_is_refused():
    stored = passwords.hash_password(GOOD, FAST)
    assert passwords.verify_password(stored, GOOD + " ", FAST) == (False, None)
    assert passwords.verify_password(stored, GOOD.upper(), FAST) == (False, None)
    assert passwords.verify_password(stored, "", FAST) == (False, None)


def test_rehash_returned_when_parameters_change():
    old = passwords.hash_password(GOOD, FAST)
    ok, new_hash = passwords.verify_password(old, GOOD, FAST_2)
    assert ok
    assert new_hash is not None and new_hash.startswith("$argon2id$v=19$m=2048,t=1,p=1$")
    assert passwords.verify_password(new_hash, GOOD, FAST_2) == (True, None)


def test_no_rehash_for_wrong_password_with_old_parameters():
    old = passwords.hash_password(GOOD, FAST)
    assert passwords.verify_password(old, "not the password", FAST_2) == (False, None)


def test_argon2i_hash_is_upgraded_to_argon2id():
    legacy = passwords.PasswordHasher(
        time_cost=1, memory_cost=1024, parallelism=1, type=passwords.Type.I
    ).hash(GOOD)
    ok, new_hash = passwords.verify_password(legacy, GOOD, FAST)
    assert ok and new_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        None,
        "not-a-hash",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$argon2id$v=19$m=1024,t=1,p=1$garbage",
        "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$!!!not-base64!!!",
        "$argon2id$v=19$m=abc,t=1,p=1$c2FsdHNhbHQ$c2FsdHNhbHRzYWx0c2FsdA",
        "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$dGhpcyBpcyBub3QgYSBoYXNo",
        "$argon2id$v=19$m=1024,t=1,p=1$ĉ$ĉ",
    ],
)
def test_malformed_hash_is_refused_without_raising(stored):
    assert passwords.verify_password(stored, GOOD, FAST) == (False, None)


def test_truncated_hash_is_refused():
    stored = passwords.hash_password(GOOD, FAST)
    assert passwords.verify_password(stored[:-10], GOOD, FAST) == (False, None)


def test_burn_verify_never_succeeds_nor_raises_and_caches_its_hash():
    passwords._dummy_hash.cache_clear()
    assert passwords.burn_verify(GOOD, FAST) is None
    assert passwords.burn_verify("", FAST) is None
    info = passwords._dummy_hash.cache_info()
    assert info.misses == 1 and info.hits >= 1
    # The dummy hash uses the current parameters, so it costs what a real check costs.
    assert passwords._dummy_hash(passwords._params(FAST)).startswith(
        "$argon2id$v=19$m=1024,t=1,p=1$"
    )


# --- normalization ---------------------------------------------------------


def test_normalize_password_is_nfkc():
    assert passwords.normalize_password("１２３４") == "1234"
    assert passwords.normalize_password("ﬁle") == "file"
    decomposed = unicodedata.normalize("NFD", "Tiếng Việt")
    assert passwords.normalize_password(decomposed) == "Tiếng Việt"


@pytest.mark.parametrize(
    ("typed", "stored_as"),
    [
        ("ｐａｓｓ ｐｈｒａｓｅ １２３４５", "pass phrase 12345"),
        ("ﬁve ﬁsh swim", "five fish swim"),
        (unicodedata.normalize("NFD", "trâu vàng đi cày"), "trâu vàng đi cày"),
    ],
)
def test_nfkc_forms_hash_and_verify_equal(typed, stored_as):
    stored = passwords.hash_password(typed, FAST)
    assert passwords.verify_password(stored, stored_as, FAST) == (True, None)
    other = passwords.hash_password(stored_as, FAST)
    assert passwords.verify_password(other, typed, FAST) == (True, None)


# --- policy: length --------------------------------------------------------


def test_single_factor_minimum_is_15():
    assert policy("tree lamp river") == "tree lamp river"  # 15
    message = refusal("tree lamp rive")  # 14
    assert TOO_SHORT in message and "15" in message


def test_multi_factor_minimum_is_8():
    assert policy("blue owl", mfa=True) == "blue owl"
    message = refusal("blue ow", mfa=True)
    assert TOO_SHORT in message and "8" in message
    # Without the second factor the same password is too short.
    assert TOO_SHORT in refusal("blue owl")


def test_minimums_come_from_config():
    assert policy("tree lamp", PASSWORD_MIN_LENGTH_SINGLE_FACTOR=9) == "tree lamp"
    assert "10" in refusal("tree lamp", mfa=True, PASSWORD_MIN_LENGTH_MULTI_FACTOR=10)


def test_maximum_is_128_and_64_is_always_allowed():
    words = "river stone cloud maple "
    long_ok = (words * 6)[:128]
    assert len(long_ok) == 128 and policy(long_ok) == long_ok
    message = refusal(long_ok + "x")
    assert TOO_LONG in message and "128" in message
    sixty_four = (words * 3)[:64]
    assert policy(sixty_four) == sixty_four
    # A configured maximum below 64 is raised to 64, as SP 800-63B-4 requires.
    assert policy(sixty_four, PASSWORD_MAX_LENGTH=32) == sixty_four
    assert "64" in refusal(sixty_four + "x", PASSWORD_MAX_LENGTH=32)


def test_length_counts_code_points_after_nfkc():
    nfc = "Việt Nam đẹp lắm"  # 16 code points
    nfd = unicodedata.normalize("NFD", nfc)
    assert len(nfd) > len(nfc)
    assert policy(nfd) == nfc
    short = "Việt Nam đẹp l"  # 14 code points, 18 when decomposed
    assert len(unicodedata.normalize("NFD", short)) >= 15
    assert TOO_SHORT in refusal(unicodedata.normalize("NFD", short))
    # A ligature is two characters once normalized: 14 typed, 15 counted.
    typed = "ﬁsh tall river"
    assert len(typed) == 14 and policy(typed) == "fish tall river"


def test_no_composition_rules():
    for password in ("all lower case words", "ALL UPPER CASE WORDS", "12 cây số về quê ngoại"):
        assert policy(password) == password


def test_returns_normalized_password():
    assert policy("ｍｙ ｌｏｎｇ ｐａｓｓｐｈｒａｓｅ") == "my long passphrase"


# --- policy: common and easy passwords --------------------------------------


def test_blocklist_file_is_loaded_once_and_sane():
    passwords.load_blocklist.cache_clear()
    entries = passwords.load_blocklist()
    assert passwords.load_blocklist() is entries
    assert passwords.BLOCKLIST_PATH.stat().st_size < 1_000_000
    assert len(entries) > 10_000
    assert all(e == e.lower() and not e.startswith("#") and len(e) >= 8 for e in entries)
    for known in ("password", "iloveyou", "matkhau123456789", "anhyeuem", "1qaz2wsx3edc4rfv"):
        assert known in entries
    assert passwords.BLOCKLIST_PATH.read_text(encoding="utf-8").startswith("#")


@pytest.mark.parametrize(
    ("password", "mfa"),
    [
        ("iloveyou", True),
        ("password", True),
        ("Password", True),
        ("PASSWORD123", True),
        ("matkhau123456789", False),
        ("MatKhau123456789", False),
        ("Mật khẩu 123456789", False),
        ("anhyeuem", True),
        ("qwertyuiopasdfgh", False),
        ("1qaz2wsx3edc4rfv", False),
        ("matkhaumatkhau", True),
    ],
)
def test_blocklisted_passwords_are_refused(password, mfa):
    assert COMMON in refusal(password, mfa=mfa)


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaaaaaaa",
        "               ",
        "!!!!!!!!!!!!!!!",
        "123456789012345",
        "abcdefghijklmnop",
        "ABCDEFGHIJKLMNOP",
        "zyxwvutsrqponmlk",
        "987654321098765",
        "135791357913579",
        "abababababababab",
        "a1b2a1b2a1b2a1b2",
        "abc123abc123abc123",
        "1-2-3-4-5-6-7-8-9",
    ],
)
def test_repeats_and_sequences_are_refused(password):
    assert COMMON in refusal(password)


@pytest.mark.parametrize("password", ["12041995", "19950412", "04121995", "12/04/1995"])
def test_bare_dates_are_refused(password):
    assert COMMON in refusal(password, mfa=True)


@pytest.mark.parametrize(
    "password",
    [
        GOOD,
        "trâu vàng 2019 đi cày",
        "abcdefgh lamp 42",
        "99 bottles of beer",
        "Ngày mai trời đẹp lắm!" * 3,  # a long phrase repeated is not a short unit
    ],
)
def test_ordinary_passphrases_pass(password):
    assert policy(password) == password


# --- policy: personal information ------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "001099012345 is my id",  # personal number
        "my number 0912345678",  # phone with 0
        "call +84912345678 now",  # phone in E.164
        "84912345678 again and again",  # phone with 84 and no plus
        "number 912345678 xyz",  # phone without prefix
        "09 1234 5678 là số tôi",  # phone with spaces
        "nguyenvanan2024!!",  # name without accents or spaces
        "Nguyễn Văn An 2024 ok",  # name with accents
        "NGUYEN VAN AN 1990!!",  # name in capitals
        "anvannguyen forever",  # given name first
        "gia đình nhà nguyễn",  # a name part of 4+ characters
        "an.nguyen.hue rules",  # e-mail local part
    ],
)
def test_personal_information_is_refused(password):
    assert PERSONAL in refusal(password, personal=PERSON)


def test_password_equal_to_or_inside_a_personal_value_is_refused():
    assert PERSONAL in refusal("Nguyễn Văn An", mfa=True, personal=PERSON)
    assert PERSONAL in refusal("nguyen van an", mfa=True, personal=PERSON)
    assert PERSONAL in refusal("01099012", mfa=True, personal=PERSON)  # inside the number


def test_email_local_part_and_its_pieces_are_personal_but_not_the_domain():
    email = ["minhthu_tran.1990@gmail.com"]
    assert PERSONAL in refusal("minhthu chào buổi sáng", personal=email)
    assert PERSONAL in refusal("họ trần tên là minh", personal=["Minh Thu", "tran.minh@x.vn"])
    assert policy("tôi dùng gmail mỗi ngày", personal=email) == "tôi dùng gmail mỗi ngày"


def test_short_name_parts_do_not_refuse():
    # "an" and "van" are under 4 characters: common words must stay usable.
    assert policy("an toàn giao thông vận tải", personal=PERSON) == "an toàn giao thông vận tải"
    assert policy("lê thì là lá lan", personal=["Lê Thị Lan"]) == "lê thì là lá lan"
    # The whole short name is still checked.
    assert PERSONAL in refusal("levanan is my name", personal=["Lê Văn An"])


def test_empty_personal_values_are_ignored():
    assert policy(GOOD, personal=["", None, " ", "+84", "Vũ"]) == GOOD


def test_unrelated_person_passes():
    assert policy("gia đình nhà nguyễn", personal=["Trần Thị Bích Ngọc", "+84987654321"])


# --- messages --------------------------------------------------------------


def test_each_rule_has_its_own_message_rendered_without_app_context():
    assert not has_app_context()
    messages = {
        refusal("short"),
        refusal("x" * 200 + "yz"),
        refusal("password", mfa=True),
        refusal("nguyenvanan2024!!", personal=PERSON),
    }
    assert len(messages) == 4
    assert "Your password must have at least 15 characters." in messages
    assert "Your password can have at most 128 characters." in messages
