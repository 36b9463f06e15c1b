"""Old accounts claimed in the browser.

A legacy system is registered and its user export imported with the operator's commands
(`flask legacy add-system / import / link`), the export holding password hashes made by other
code than the provider's (the `bcrypt` package, hashlib). Then:

- someone with no unified identity logs in at /legacy/login with the old username and password,
  completes the identity at /legacy/complete (what the old system holds must agree) and ends
  logged in, the old account claimed, its hash deleted, an argon2id password in its place;
- someone with a unified identity claims an old account from the console (/account/legacy).

Every page on the way is checked with axe-core too.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata

import bcrypt
import pytest

from tests.e2e.support import (
    AxeAudit,
    create_person,
    expect,
    flask_cli,
    legacy_row,
    log_in,
    new_person,
    vi,
    write_legacy_export,
)
from tests.support.i18n import shows

pytestmark = pytest.mark.slow


def register_system(app, tmp_path, *, name: str, scheme: str, rows: list[dict], salt_position: str | None = None) -> str:
    """A legacy system and its export, through the CLI; returns its slug."""
    slug = f"cu-{secrets.token_hex(3)}"
    options = ["--salt-position", salt_position] if salt_position else []
    out = flask_cli(app, "legacy", "add-system", slug, "--name", name, "--agency", "Văn phòng UBND tỉnh",
                    "--hash-scheme", scheme, *options)
    assert f"Registered legacy system {slug}." in out, out
    export = write_legacy_export(tmp_path / f"{slug}.csv", rows)
    out = flask_cli(app, "legacy", "import", slug, str(export), "--rejects", str(tmp_path / f"{slug}.rejects.csv"))
    assert out.splitlines()[:3] == [f"read: {len(rows)}", f"imported: {len(rows)}", "rejected: 0"], out
    return slug


def password_hash_of(app, identity_id) -> str:
    from idp.accounts.models import PasswordCredential
    from idp.extensions import db

    with app.app_context():
        value = db.session.get(PasswordCredential, identity_id).hash
        db.session.remove()
    return value


def identity_by_number(app, number: str):
    from idp.identity import services as identity_services
    from idp.identity.models import IdentifierType

    with app.app_context():
        identity = identity_services.identity_by_identifier(IdentifierType.PERSONAL_NUMBER, number)
        found = (identity.id, identity.full_name, identity.birth_date, identity.assurance_level) if identity else None
    return found


def claims_in_audit(app, identity_id) -> list[dict]:
    from idp import audit

    with app.app_context():
        entries, _ = audit.search(action_prefix="legacy.linked", target_id=str(identity_id), per_page=50)
        return [e.content for e in entries]


def test_old_account_creates_the_unified_identity(stack, page, axe, tmp_path):
    app, base = stack.app, stack.provider
    check = AxeAudit(axe, base)
    person = new_person("Lê Thị Hồng Nhung", gender="female", year=1992)
    # The old portal stored the name in capitals without accents, and hashed the password as
    # its form received it: decomposed (NFD), as some Vietnamese input methods type it.
    old_password = "Mật khẩu cũ của tôi 2016"
    old_hash = bcrypt.hashpw(unicodedata.normalize("NFD", old_password).encode(), bcrypt.gensalt(rounds=5)).decode()
    username, legacy_id = f"nhung.{secrets.token_hex(2)}", f"u-{secrets.randbelow(10**6)}"
    system_name = "Cổng dịch vụ công tỉnh (phiên bản 2016)"
    slug = register_system(app, tmp_path, name=system_name, scheme="bcrypt", rows=[{
        "legacy_id": legacy_id, "username": username, "password_hash": old_hash,
        "personal_number": person.personal_number, "full_name": "LE THI HONG NHUNG",
        "birth_date": person.birth_date.strftime("%d/%m/%Y"), "gender": "nữ", "phone": person.phone,
        "email": person.email.upper(),
    }])
    # Nobody has this number yet: automatic linking leaves the account for its owner to claim.
    assert flask_cli(app, "legacy", "link", slug).splitlines()[0] == f"{slug}: auto_linked 0, conflict 0"
    assert legacy_row(app, slug, legacy_id).link_state == "unlinked"

    # From the usual login page to the old-account login.
    page.goto(base + "/login")
    page.get_by_role("link", name=vi(app, "Had an account in an older provincial system? Log in with it")).click()
    expect(page).to_have_url(base + "/legacy/login")
    expect(page.locator("h1")).to_have_text(vi(app, "Log in with an old account"))
    check(page, "old-account login")

    # A wrong old password is refused next to the field, in Vietnamese.
    page.get_by_label(vi(app, "Old system"), exact=True).select_option(label=system_name)
    page.get_by_label(vi(app, "Username in the old system")).fill(username)
    page.get_by_label(vi(app, "Password in the old system")).fill("không phải mật khẩu cũ")
    page.get_by_role("button", name=vi(app, "Continue")).click()
    expect(page.locator("#password-error")).to_have_text(vi(app, "The old account's username or password is incorrect."))
    check(page, "old-account login, wrong password")

    # The right one (typed composed, NFC): the old account is proven.
    page.get_by_label(vi(app, "Old system"), exact=True).select_option(label=system_name)
    page.get_by_label(vi(app, "Username in the old system")).fill(username.upper())  # old usernames ignore case
    page.get_by_label(vi(app, "Password in the old system")).fill(unicodedata.normalize("NFC", old_password))
    page.get_by_role("button", name=vi(app, "Continue")).click()
    expect(page).to_have_url(base + "/legacy/complete")
    expect(page.locator("h1")).to_have_text(vi(app, "Create your unified account"))
    expect(page.locator("main p").first).to_contain_text(system_name)
    assert shows(page.content(), "Your old account in %(system)s is confirmed.")
    # What the old system holds is filled in.
    expect(page.locator("#personal_number")).to_have_value(person.personal_number)
    expect(page.locator("#full_name")).to_have_value("LE THI HONG NHUNG")
    expect(page.locator("#birth_date")).to_have_value(person.birth_date.isoformat())
    expect(page.get_by_label(vi(app, "Female"), exact=True)).to_be_checked()
    expect(page.locator("#email")).to_have_value(person.email)
    check(page, "complete the identity")

    # The name as on the card (accents agree with the old capitals); a birth date the old
    # system contradicts is refused next to its field.
    page.get_by_label(vi(app, "Full name, as on your citizen ID card")).fill(person.full_name)
    page.get_by_label(vi(app, "Date of birth")).fill(person.birth_date.replace(day=19).isoformat())
    page.get_by_label(vi(app, "Password for your unified account (at least 15 characters)")).fill(person.password)
    page.get_by_role("button", name=vi(app, "Create my account")).click()
    expect(page.locator("#birth_date-error")).to_have_text(vi(app, "The old account holds a different date of birth."))
    expect(page.get_by_role("alert")).to_contain_text(vi(app, "The old account holds a different date of birth."))
    assert identity_by_number(app, person.personal_number) is None
    check(page, "complete the identity, birth date differs")

    page.get_by_label(vi(app, "Date of birth")).fill(person.birth_date.isoformat())
    page.get_by_label(vi(app, "Password for your unified account (at least 15 characters)")).fill(person.password)
    page.get_by_role("button", name=vi(app, "Create my account")).click()

    # Logged in, on the old-accounts page of the console, which lists the claimed account.
    expect(page).to_have_url(base + "/account/legacy")
    expect(page.locator("h1")).to_have_text(vi(app, "Old accounts"))
    expect(page.get_by_role("status")).to_have_text(
        vi(app, "Your unified account is ready and your old account is linked to it."))
    expect(page.get_by_role("heading", name=vi(app, "Linked to you"))).to_be_visible()
    expect(page.locator("main ul li").first).to_have_text(f"{slug} — {vi(app, 'user number %(id)s', id=legacy_id)}")
    check(page, "old accounts, one linked")
    page.goto(base + "/account")
    expect(page.locator("h1")).to_have_text(vi(app, "My account"))
    expect(page.get_by_text(person.full_name).first).to_be_visible()

    # The store of record: the identity as typed, the old account claimed and linked to it,
    # its old hash and salt gone, an argon2id password in their place, the claim audited.
    found = identity_by_number(app, person.personal_number)
    assert found is not None
    identity_id, full_name, birth_date, level = found
    assert (full_name, birth_date, level) == (person.full_name, person.birth_date, 1)
    row = legacy_row(app, slug, legacy_id)
    assert (row.link_state, row.identity_id, row.linked_by) == ("claimed", identity_id, "claim")
    assert row.linked_at is not None and row.candidate_identity_id is None
    assert row.password_hash is None and row.salt is None
    assert password_hash_of(app, identity_id).startswith("$argon2id$")
    assert {"system": slug, "legacy_id": legacy_id, "by": "claim"}.items() <= claims_in_audit(app, identity_id)[0].items()

    # The old password is no use any more; the unified one logs in.
    page.goto(base + "/legacy/login")
    page.get_by_label(vi(app, "Old system"), exact=True).select_option(label=system_name)
    page.get_by_label(vi(app, "Username in the old system")).fill(username)
    page.get_by_label(vi(app, "Password in the old system")).fill(old_password)
    page.get_by_role("button", name=vi(app, "Continue")).click()
    expect(page.locator("#password-error")).to_have_text(vi(app, "The old account's username or password is incorrect."))
    page.context.clear_cookies()
    log_in(page, base, person)
    expect(page.locator("h1")).to_have_text(vi(app, "My account"))
    check.assert_clean()


def test_unified_account_claims_an_old_account_from_the_console(stack, page, axe, tmp_path):
    app, base = stack.app, stack.provider
    check = AxeAudit(axe, base)
    person = new_person("Trương Văn Hoà", gender="male", year=1975)
    identity_id = create_person(app, person)
    # A one-stop-shop system of 2012: salted SHA-256, the salt before the password.
    salt, old_password = secrets.token_hex(8), "motcua@2012"
    username, legacy_id = f"hoa{secrets.token_hex(2)}", f"{secrets.randbelow(10**5)}"
    system_name = "Một cửa điện tử huyện (2012)"
    slug = register_system(app, tmp_path, name=system_name, scheme="salted_sha256", salt_position="before", rows=[{
        "legacy_id": legacy_id, "username": username, "salt": salt,
        "password_hash": hashlib.sha256((salt + old_password).encode()).hexdigest(),
        # The new tone placement (Hòa) against the registered Hoà: the same name.
        "full_name": "Trương Văn Hòa", "birth_date": person.birth_date.isoformat(), "gender": "male",
    }])

    log_in(page, base, person)
    expect(page.locator("h1")).to_have_text(vi(app, "My account"))
    page.get_by_role("link", name=vi(app, "Old accounts")).click()
    expect(page).to_have_url(base + "/account/legacy")
    expect(page.get_by_text(vi(app, "No old account is linked to you yet."))).to_be_visible()
    check(page, "old accounts, none")

    page.get_by_label(vi(app, "Old system"), exact=True).select_option(label=system_name)
    page.get_by_label(vi(app, "Username in the old system")).fill(username)
    page.get_by_label(vi(app, "Password in the old system")).fill("motcua@2013")
    page.get_by_role("button", name=vi(app, "Link")).click()
    expect(page.locator("#password-error")).to_have_text(vi(app, "The old account's username or password is incorrect."))
    check(page, "old accounts, wrong password")
    assert legacy_row(app, slug, legacy_id).link_state == "unlinked"

    page.get_by_label(vi(app, "Old system"), exact=True).select_option(label=system_name)
    page.get_by_label(vi(app, "Username in the old system")).fill(username)
    page.get_by_label(vi(app, "Password in the old system")).fill(old_password)
    page.get_by_role("button", name=vi(app, "Link")).click()
    expect(page).to_have_url(base + "/account/legacy")
    expect(page.get_by_role("status")).to_have_text(vi(app, "The old account is now linked to your unified account."))
    expect(page.locator("main ul li").first).to_have_text(f"{slug} — {vi(app, 'user number %(id)s', id=legacy_id)}")
    expect(page.get_by_text(vi(app, "No old account is linked to you yet."))).to_have_count(0)
    check(page, "old accounts, claimed")

    row = legacy_row(app, slug, legacy_id)
    assert (row.link_state, row.identity_id, row.linked_by) == ("claimed", identity_id, "claim")
    assert row.password_hash is None and row.salt is None
    assert password_hash_of(app, identity_id).startswith("$argon2id$")
    assert claims_in_audit(app, identity_id)[0]["legacy_id"] == legacy_id
    check.assert_clean()
