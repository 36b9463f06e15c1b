"""Synthetic legacy user exports (CSV or JSON Lines) for the import and linking benchmark.

Deterministic for a seed. `people(n, seed)` yields the same citizens in the same order every
time, so the benchmark can create the matching identities without keeping them in memory.

    python bench/legacy_gen.py --rows 100000 --out /tmp/legacy.csv [--format jsonl]
        [--seed 42] [--encoding cp1258] [--invalid-share 0.02] [--conflict-share 0.02]
        [--nfd-share 0.05] [--duplicate-share 0.001]

Rows: realistic Vietnamese names (family, middle, given; old and new tone placement), valid
personal numbers consistent with birth date and gender, some only an old 9-digit ID number,
some nothing; a share with invalid personal numbers (rejected at import) and a share whose
name or birth date disagrees with the identity (conflicts at linking); every hash scheme of
idp.legacy.hashes; some names in NFD; optional Windows-1258 output.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import os
import random
import struct
import sys
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIXES = sorted(
    json.loads((ROOT / "idp" / "data" / "personal_number_prefixes.json").read_text("utf-8"))[
        "provinces"
    ]
)

# Family names with rough frequencies (percent).
FAMILY = [
    ("Nguyễn", 38), ("Trần", 11), ("Lê", 9.5), ("Phạm", 7), ("Hoàng", 3), ("Huỳnh", 2),
    ("Phan", 4.5), ("Vũ", 2), ("Võ", 2), ("Đặng", 2.1), ("Bùi", 2), ("Đỗ", 1.4), ("Hồ", 1.3),
    ("Ngô", 1.3), ("Dương", 1), ("Lý", 0.5), ("Đinh", 0.8), ("Trương", 0.8), ("Lâm", 0.5),
    ("Mai", 0.4), ("Tạ", 0.3), ("Cao", 0.3), ("Lương", 0.3), ("Hà", 0.3), ("Quách", 0.1),
]
MIDDLE = {
    "male": ["Văn", "Hữu", "Đức", "Minh", "Quang", "Công", "Thành", "Xuân", "Gia", "Quốc",
             "Trọng", "Bá", "Đình", "Ngọc", "Anh", "Tiến", "Duy", "Mạnh", "Hoàng", "Thế"],
    "female": ["Thị", "Ngọc", "Thu", "Thanh", "Mỹ", "Kim", "Bích", "Diệu", "Phương", "Hồng",
               "Minh", "Hoài", "Khánh", "Bảo", "Quỳnh", "Tuyết", "Thuỳ", "Mai", "Lan", "Ánh"],
}
GIVEN = {
    "male": ["An", "Bình", "Cường", "Dũng", "Hùng", "Huy", "Khoa", "Long", "Minh", "Nam",
             "Phúc", "Quân", "Sơn", "Thắng", "Tuấn", "Việt", "Hoà", "Khánh", "Đạt", "Lộc",
             "Nghĩa", "Trí", "Hiếu", "Toàn", "Quý", "Bảo", "Chiến", "Danh", "Duy", "Giang",
             "Hải", "Hậu", "Hoàng", "Kiên", "Lâm", "Luân", "Mạnh", "Nhân", "Phong", "Phát",
             "Quang", "Tài", "Tâm", "Thái", "Thiện", "Thịnh", "Tiến", "Trung", "Tùng", "Vinh",
             "Vũ", "Xuyên", "Khải", "Đông", "Nguyên", "Hưng", "Thuận", "Quyết", "Sang", "Thuỵ"],
    "female": ["Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hương", "Lan", "Linh", "Mai",
               "Ngọc", "Nhung", "Phương", "Thảo", "Thuỷ", "Trang", "Yến", "Hoà", "Thúy",
               "Xuân", "Loan", "Oanh", "Uyên", "Khuê", "Nguyệt", "Ánh", "Bích", "Châu", "Diễm",
               "Duyên", "Hằng", "Hiền", "Hoa", "Huyền", "Khanh", "Lệ", "Liên", "Loan", "Ly",
               "My", "Nga", "Ngân", "Nhi", "Nhàn", "Quyên", "Quỳnh", "Tâm", "Thanh", "Thơ",
               "Thư", "Thu", "Tiên", "Trâm", "Trinh", "Tuyết", "Vân", "Vy", "Xoan", "Hoè"],
}
# Share of people with a second middle name ("Nguyễn Thị Thanh Hương").
SECOND_MIDDLE_SHARE = 0.3
# Old (hoà, thuỷ) and new (hòa, thủy) tone placement: both must find each other.
TONE_VARIANTS = {"Hoà": "Hòa", "Thuỷ": "Thủy", "Thúy": "Thuý", "Thuỵ": "Thụy", "Hoè": "Hòe"}
_FAMILY_NAMES = [f for f, _ in FAMILY]
_FAMILY_WEIGHTS = [w for _, w in FAMILY]
_FOLD = str.maketrans({"đ": "d", "Đ": "D"})

SCHEMES = (
    "md5_hex", "sha1_hex", "salted_sha256", "bcrypt", "django_pbkdf2_sha256",
    "aspnet_identity_v2", "aspnet_identity_v3", "aspnet_membership_sha1", "phpass",
    "md5_crypt", "sha512_crypt",
)


@dataclass(frozen=True)
class Person:
    index: int
    personal_number: str
    id_number: str | None  # the old CMND, for people born before 1995 (a share of them)
    full_name: str
    birth_date: date
    gender: str
    phone: str
    email: str


def ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def people(n: int, seed: int = 42, start: int = 0):
    """The same n citizens for a seed: unique personal numbers, CMND numbers, phones."""
    rng = random.Random(seed)
    first_day, span = date(1940, 1, 1), (date(2007, 12, 31) - date(1940, 1, 1)).days
    for i in range(start + n):
        gender = "male" if rng.random() < 0.5 else "female"
        family = rng.choices(_FAMILY_NAMES, _FAMILY_WEIGHTS)[0]
        middle = rng.choice(MIDDLE[gender])
        if rng.random() < SECOND_MIDDLE_SHARE:
            middle += " " + rng.choice(MIDDLE[gender])
        given = rng.choice(GIVEN[gender])
        birth = first_day + timedelta(days=rng.randrange(span))
        has_cmnd = rng.random() < 0.5
        if i < start:
            continue
        # Unique by construction: R is a bijection of i modulo 10**6, and the prefix moves
        # to another province for each further million.
        r = (i * 7919 + 12345) % 1_000_000
        prefix = PREFIXES[(r * 31 + i // 1_000_000) % len(PREFIXES)]
        g = (birth.year // 100 - 19) * 2 + (0 if gender == "male" else 1)
        number = f"{prefix}{g}{birth.year % 100:02d}{r:06d}"
        cmnd = f"{(i * 48271 + 123456789) % 10**9:09d}" if has_cmnd and birth.year < 1995 else None
        name = f"{family} {middle} {given}"
        local = ascii_fold(f"{given}.{family}").lower()
        yield Person(
            index=i,
            personal_number=number,
            id_number=cmnd,
            full_name=name,
            birth_date=birth,
            gender=gender,
            phone=f"+849{(i * 7 + 10_000_000) % 100_000_000:08d}",
            email=f"{local}.{i}@example.vn",
        )


# --- password hashes ------------------------------------------------------------------------
# A small pool per scheme, reused across rows: hashing a million bcrypt passwords would take
# the benchmark's whole budget, and the importer only checks the format.


def _aspnet_v2(password: str, salt: bytes) -> str:
    subkey = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, 1000, 32)
    return base64.b64encode(b"\x00" + salt + subkey).decode()


def _aspnet_v3(password: str, salt: bytes, iterations: int = 1000) -> str:
    subkey = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)
    header = b"\x01" + struct.pack(">III", 1, iterations, len(salt))
    return base64.b64encode(header + salt + subkey).decode()


def hash_pool(seed: int = 42, size: int = 8) -> dict[str, list[tuple[str, str, str | None]]]:
    """{scheme: [(password, hash, salt)]} with cheap cost parameters."""
    from passlib.hash import bcrypt, django_pbkdf2_sha256, md5_crypt, phpass, sha512_crypt

    rng = random.Random(seed)
    pool: dict[str, list] = {s: [] for s in SCHEMES}
    for k in range(size):
        password = f"mật khẩu {k} {rng.randrange(10**6)}" if k % 2 else f"matkhau{k}{rng.randrange(10**6)}"
        raw = password.encode()
        salt_text = f"{rng.getrandbits(64):016x}"
        salt_bytes = rng.randbytes(16)
        pool["md5_hex"].append((password, hashlib.md5(raw).hexdigest(), None))  # noqa: S324
        pool["sha1_hex"].append((password, hashlib.sha1(raw).hexdigest(), None))  # noqa: S324
        pool["salted_sha256"].append(
            (password, hashlib.sha256(salt_text.encode() + raw).hexdigest(), salt_text)
        )
        pool["bcrypt"].append((password, bcrypt.using(rounds=4).hash(password), None))
        pool["django_pbkdf2_sha256"].append(
            (password, django_pbkdf2_sha256.using(rounds=1000).hash(password), None)
        )
        pool["aspnet_identity_v2"].append((password, _aspnet_v2(password, salt_bytes), None))
        pool["aspnet_identity_v3"].append((password, _aspnet_v3(password, salt_bytes), None))
        member_salt = base64.b64encode(salt_bytes).decode()
        digest = hashlib.sha1(salt_bytes + password.encode("utf-16-le")).digest()  # noqa: S324
        pool["aspnet_membership_sha1"].append(
            (password, base64.b64encode(digest).decode(), member_salt)
        )
        pool["phpass"].append((password, phpass.using(rounds=8).hash(password), None))
        pool["md5_crypt"].append((password, md5_crypt.hash(password), None))
        pool["sha512_crypt"].append((password, sha512_crypt.using(rounds=1000).hash(password), None))
    return pool


# --- rows -----------------------------------------------------------------------------------

COLUMNS = (
    "legacy_id", "username", "password_hash", "hash_scheme", "salt", "personal_number",
    "id_number", "tax_code", "full_name", "birth_date", "gender", "phone", "email",
)


def _corrupt_number(rng: random.Random, number: str) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return number[:-1]  # 11 digits
    if kind == 1:
        return "999" + number[3:]  # not a province or country code
    if kind == 2:
        g = int(number[3])
        return number[:3] + str(g ^ 1) + number[4:]  # gender digit flipped
    return number[:4] + "99" + number[6:] if number[3] in "23" else number[:3] + "4" + number[4:]


def legacy_rows(
    n: int,
    *,
    seed: int = 42,
    invalid_share: float = 0.02,
    conflict_share: float = 0.02,
    nfd_share: float = 0.05,
    duplicate_share: float = 0.001,
    id_only_share: float = 0.05,
    no_number_share: float = 0.05,
):
    """Dicts in the documented column schema, one per person of people(n, seed)."""
    rng = random.Random(seed + 1)
    pool = hash_pool(seed)
    schemes = list(SCHEMES)
    for person in people(n, seed):
        i = person.index
        scheme = schemes[i % len(schemes)]
        _password, hashed, salt = pool[scheme][(i // len(schemes)) % len(pool[scheme])]
        name = person.full_name
        given = name.rsplit(" ", 1)[-1]
        if given in TONE_VARIANTS and rng.random() < 0.5:
            name = name[: -len(given)] + TONE_VARIANTS[given]
        birth = person.birth_date
        number: str | None = person.personal_number
        id_number = None
        roll = rng.random()
        if roll < invalid_share:
            number = _corrupt_number(rng, number)
        elif roll < invalid_share + conflict_share:
            if rng.random() < 0.5:
                birth = birth + timedelta(days=1 if birth.day < 28 else -1)
            else:
                name = rng.choice(_FAMILY_NAMES) + " " + name.split(" ", 1)[1]
                if name == person.full_name:
                    name = "Nguyễn Văn Khác"
        elif roll < invalid_share + conflict_share + id_only_share and person.id_number:
            number, id_number = None, person.id_number
        elif roll < invalid_share + conflict_share + id_only_share + no_number_share:
            number = None
        if rng.random() < nfd_share:
            name = unicodedata.normalize("NFD", name)
        legacy_id = str(100000 + i)
        if i and rng.random() < duplicate_share:
            legacy_id = str(100000 + i - 1)  # the previous row's id, again
        yield {
            "legacy_id": legacy_id,
            "username": ascii_fold(person.full_name).lower().replace(" ", "") + str(i),
            "password_hash": hashed,
            "hash_scheme": scheme,
            "salt": salt or "",
            "personal_number": number or "",
            "id_number": id_number or "",
            "tax_code": "",
            "full_name": name,
            "birth_date": birth.isoformat() if i % 3 else birth.strftime("%d/%m/%Y"),
            "gender": person.gender if i % 4 else ("nam" if person.gender == "male" else "nữ"),
            "phone": person.phone if i % 2 else "0" + person.phone[3:],
            "email": person.email,
        }


# --- encodings ------------------------------------------------------------------------------

_TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"


def to_cp1258(text: str) -> bytes:
    """Windows-1258 bytes: precomposed where the code page has the letter, else base + tone."""
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        decomposed = unicodedata.normalize("NFD", ch)
        tones = "".join(c for c in decomposed if c in _TONE_MARKS)
        base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONE_MARKS))
        out += (base + tones).encode("cp1258")
    return bytes(out)


def write(rows, out, fmt: str, encoding: str = "utf-8") -> int:
    """Write rows to a binary stream; returns the number written."""
    encode = to_cp1258 if encoding == "cp1258" else (lambda s: s.encode("utf-8"))
    count = 0
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[c] for c in COLUMNS])
            count += 1
            if count % 1000 == 0:
                out.write(encode(buffer.getvalue()))
                buffer.seek(0)
                buffer.truncate()
        out.write(encode(buffer.getvalue()))
    else:
        for row in rows:
            out.write(encode(json.dumps(row, ensure_ascii=False) + "\n"))
            count += 1
    return count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--format", choices=("csv", "jsonl"), default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--encoding", choices=("utf-8", "cp1258"), default="utf-8")
    parser.add_argument("--invalid-share", type=float, default=0.02)
    parser.add_argument("--conflict-share", type=float, default=0.02)
    parser.add_argument("--nfd-share", type=float, default=0.05)
    parser.add_argument("--duplicate-share", type=float, default=0.001)
    args = parser.parse_args(argv)
    fmt = args.format or ("jsonl" if args.out.endswith((".jsonl", ".ndjson")) else "csv")
    rows = legacy_rows(
        args.rows,
        seed=args.seed,
        invalid_share=args.invalid_share,
        conflict_share=args.conflict_share,
        nfd_share=args.nfd_share,
        duplicate_share=args.duplicate_share,
    )
    with open(args.out, "wb") as out:
        count = write(rows, out, fmt, args.encoding)
    size = os.path.getsize(args.out)
    print(f"wrote {count} rows, {size / 1e6:.1f} MB, to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
