"""The Vietnamese catalogue is complete, keeps every placeholder, compiles cleanly and is used.

The messages are extracted afresh from the code (as `make messages` does), so a new string
without a Vietnamese translation fails here, not in front of a citizen. The rendering tests use
the compiled catalogue that `make test` (through `make translations`) builds first.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TRANSLATIONS = ROOT / "idp" / "translations"
VI_PO = TRANSLATIONS / "vi" / "LC_MESSAGES" / "messages.po"

# A %-conversion as Python's %-operator reads it; "%%" is a literal percent sign.
PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]")
BRACES = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
MARKUP = re.compile(r"</?[A-Za-z][^>]*>|&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);")


def _placeholders(text: str) -> set[str]:
    return {p for p in PERCENT.findall(text) if p != "%%"}


def _forms(message: Message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def _msgids(message: Message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, (list, tuple)) else (message.id,)


def _label(message: Message) -> str:
    return repr(_msgids(message)[0])


def _real(catalog: Catalog) -> Iterator[Message]:
    return (m for m in catalog if m.id)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Catalog:
    """The messages of the code today, with the options of `make messages`."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    result = subprocess.run(
        [BIN / "pybabel", "extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext",
         "-o", str(pot), "--no-location", "--sort-output", "--omit-header", "."],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with pot.open("rb") as fh:
        return read_po(fh)


@pytest.fixture(scope="module")
def vietnamese() -> Catalog:
    with VI_PO.open("rb") as fh:
        return read_po(fh, locale="vi")


def test_every_message_of_the_code_has_a_vietnamese_translation(extracted, vietnamese):
    missing, fuzzy, empty = [], [], []
    for message in _real(extracted):
        translated = vietnamese.get(message.id)
        if translated is None:
            missing.append(_label(message))
        elif translated.fuzzy:
            fuzzy.append(_label(message))
        elif not all(form.strip() for form in _forms(translated)):
            empty.append(_label(message))
    hint = "; run `make messages` and translate in idp/translations/vi/LC_MESSAGES/messages.po"
    assert not missing, f"{len(missing)} messages are not in the catalogue{hint}: {missing[:20]}"
    assert not fuzzy, f"{len(fuzzy)} translations are fuzzy{hint}: {fuzzy[:20]}"
    assert not empty, f"{len(empty)} messages have no Vietnamese translation{hint}: {empty[:20]}"


def test_plural_messages_stay_plural(extracted, vietnamese):
    wrong = []
    for message in _real(extracted):
        translated = vietnamese.get(message.id)
        if translated is not None and message.pluralizable != translated.pluralizable:
            wrong.append(_label(message))
    assert wrong == []
    assert vietnamese.num_plurals == 1  # Vietnamese has a single form: msgstr[0]


def test_catalogue_has_no_fuzzy_or_obsolete_entries(vietnamese):
    assert not vietnamese.fuzzy, "the catalogue header is marked fuzzy"
    assert [_label(m) for m in _real(vietnamese) if m.fuzzy] == []
    assert list(vietnamese.obsolete) == []
    assert "#~" not in VI_PO.read_text(encoding="utf-8")


def test_translations_keep_every_placeholder(vietnamese):
    wrong = []
    for message in _real(vietnamese):
        ids = _msgids(message)
        wanted_percent = _placeholders(ids[-1])
        wanted_braces = set(BRACES.findall(ids[-1]))
        wanted_markup = set(MARKUP.findall(ids[-1]))
        if len(ids) > 1:  # the singular may leave the count out ("One entry."); the plural may not
            assert _placeholders(ids[0]) <= wanted_percent, _label(message)
        for form in _forms(message):
            if not form:
                continue
            if (_placeholders(form) != wanted_percent or set(BRACES.findall(form)) != wanted_braces
                    or set(MARKUP.findall(form)) != wanted_markup):
                wrong.append(f"{ids[0]!r} -> {form!r}")
    assert wrong == [], "placeholders or markup differ:\n" + "\n".join(wrong)


def test_catalogue_passes_babels_checks_and_compiles(tmp_path, vietnamese):
    """What `pybabel compile` reports as errors (python-format and the like), and a clean compile."""
    problems = [f"{_label(m)}: {e}" for m, errors in vietnamese.check() for e in errors]
    assert problems == []

    target = tmp_path / "vi" / "LC_MESSAGES"
    target.mkdir(parents=True)
    shutil.copy(VI_PO, target / "messages.po")
    result = subprocess.run(
        [BIN / "pybabel", "compile", "-d", str(tmp_path), "-D", "messages", "--statistics"],
        cwd=ROOT, capture_output=True, text=True,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "error" not in output.lower(), output
    assert "(100%) translated" in output, output
    assert (target / "messages.mo").stat().st_size > 0


# The pages, in the default language, from the compiled catalogue.

MISSING_MO = "is the catalogue compiled? `make test` runs `make translations` first"


def test_login_page_is_in_vietnamese(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'lang="vi"' in html
    assert "Đăng nhập" in html, MISSING_MO
    assert "Quên mật khẩu?" in html, MISSING_MO
    assert "Forgot your password?" not in html
    assert "No account yet?" not in html


def test_public_pages_are_in_vietnamese(client):
    register = client.get("/register").get_data(as_text=True)
    assert 'lang="vi"' in register
    assert "Tạo tài khoản" in register and "Create an account" not in register, MISSING_MO

    recover = client.get("/recover").get_data(as_text=True)
    assert "Quên mật khẩu?" in recover and "Back to log in" not in recover, MISSING_MO
    assert "Quay lại đăng nhập" in recover, MISSING_MO


def test_account_page_is_in_vietnamese(app, client):
    from idp.accounts import services
    from idp.timeutil import utcnow
    from tests.support.forms import submit

    password = "một buổi sáng mùa thu ở hà nội"
    with app.app_context():
        services.register_citizen(
            personal_number="001099012345", full_name="Nguyễn Văn An", birth_date=date(1999, 5, 14),
            gender="male", phone="0912345678", email="an@example.vn", password=password,
            config=app.config, now=utcnow(),
        )
    submit(client, "/login", {"login": "001099012345", "password": password})
    html = client.get("/account").get_data(as_text=True)
    assert 'lang="vi"' in html
    assert "Tài khoản của tôi" in html, MISSING_MO
    assert "Mật khẩu và bảo mật" in html and "Password and security" not in html, MISSING_MO
    assert "Thiết bị đang đăng nhập" in html, MISSING_MO
