"""Every page a citizen sees, checked with axe-core (WCAG 2.1 A and AA) at a desktop size and
for a 360×740 phone screen, and checked to be the one base layout.

The pages are reached as a citizen reaches them (forms submitted, a relying party's request,
a second factor asked); `walk_*` go through them and call `check(page, label)` at each.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from tests.e2e.support import (
    PHONE,
    AxeAudit,
    assert_fits_phone,
    create_person,
    expect,
    log_in,
    new_person,
    reset_link,
    totp_code,
    vi,
)

pytestmark = pytest.mark.slow

RP_LOGIN = "Đăng nhập bằng tài khoản định danh điện tử của tỉnh"


def submit(page) -> None:
    page.locator("main form[method=post] button[type=submit]").last.click()


def walk_public(stack, page, check) -> None:
    """Pages seen without logging in, with and without errors."""
    app, base = stack.app, stack.provider
    person = new_person("Trịnh Văn Lâm", gender="male", year=1970)
    identity_id = create_person(app, person)

    page.goto(base + "/")
    check(page, "home")
    page.goto(base + "/login")
    check(page, "login")
    submit(page)
    expect(page.get_by_role("alert")).to_be_visible()
    check(page, "login, empty fields")
    page.locator("#login").fill(person.personal_number)
    page.locator("#password").fill("một mật khẩu sai hoàn toàn")
    submit(page)
    expect(page.locator("#password-error")).to_be_visible()
    check(page, "login, wrong password")

    page.goto(base + "/register")
    check(page, "register")
    submit(page)
    expect(page.get_by_role("alert")).to_be_visible()
    check(page, "register, empty fields")
    page.locator("#personal_number").fill("999099012345")
    page.locator("#full_name").fill("Lý Thị Hạnh")
    page.locator("#birth_date").fill("1990-02-03")
    page.locator("#gender-1").check()
    page.locator("#phone").fill("123")
    page.locator("#password").fill("ngắn")
    submit(page)
    expect(page.locator("#personal_number-error")).to_be_visible()
    check(page, "register, invalid values")

    page.goto(base + "/recover")
    check(page, "recover")
    submit(page)
    check(page, "recover, empty field")
    page.locator("#login").fill(person.personal_number)
    submit(page)
    expect(page).to_have_url(base + "/recover/code")
    check(page, "recover, code")
    page.locator("#code").fill("000000")
    submit(page)
    expect(page.locator("#code-error")).to_be_visible()
    check(page, "recover, wrong code")
    page.goto(base + "/recover/reset?token=khong-hop-le")
    check(page, "recover, invalid link")
    page.goto(base + reset_link(app, identity_id))
    check(page, "reset password")
    page.locator("#password").fill("ngắn quá")
    submit(page)
    expect(page.locator("#password-error")).to_be_visible()
    check(page, "reset password, too short")

    page.goto(base + "/khong-co-trang-nay")
    expect(page.get_by_role("alert")).to_have_text(vi(app, "This page does not exist."))
    check(page, "error 404")
    page.goto(base + "/oauth2/authorize?" + urlencode({"client_id": "khong-ton-tai", "response_type": "code"}))
    check(page, "authorization error")
    page.goto(base + "/lang/en?next=/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    check(page, "login in English")


def walk_signed_in(stack, page, check) -> None:
    """The account console, a second factor set up, consent, step-up, logout."""
    app, base = stack.app, stack.provider
    a, c = stack.rps["a"], stack.rps["c"]
    person = new_person("Đặng Thị Kim Oanh", gender="female", year=1986)
    create_person(app, person, level=2)

    log_in(page, base, person)
    expect(page.locator("h1")).to_have_text(vi(app, "My account"))
    check(page, "account")
    for path, label in [
        ("/account/profile", "my information"),
        ("/account/security", "password and security"),
        ("/account/sessions", "devices"),
        ("/account/activity", "activity"),
        ("/account/contact", "contact details"),
        ("/account/connections", "connected systems, none"),
    ]:
        page.goto(base + path)
        check(page, label)

    page.goto(base + "/account/security")
    submit(page)  # the password change form, empty
    check(page, "change password, empty fields")

    page.goto(base + "/account/security/totp")
    check(page, "authenticator setup")
    page.locator("#code").fill("123")
    submit(page)
    expect(page.locator("#code-error")).to_be_visible()
    check(page, "authenticator setup, wrong code")
    secret = page.locator("#totp-secret").inner_text()
    enrolled_at = time.time()
    page.locator("#code").fill(totp_code(secret, at=enrolled_at))
    submit(page)
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    check(page, "recovery codes")
    page.goto(base + "/account/security")
    check(page, "password and security, app set up")

    # A relying party: consent, then the connected systems page lists it.
    page.goto(a.url + "/")
    page.get_by_role("link", name=RP_LOGIN).click()
    expect(page.locator("h1")).to_have_text(f"{a.name} đề nghị nhận thông tin của bạn")
    check(page, "consent")
    page.get_by_role("button", name="Đồng ý và tiếp tục").click()
    expect(page.get_by_role("heading", name=f"Xin chào, {person.full_name}")).to_be_visible()
    page.goto(base + "/account/connections")
    expect(page.locator("section.card")).to_have_count(1)
    check(page, "connected systems, one")

    # A service that needs two factors: the second-factor page, with an error, then right.
    page.goto(c.url + "/")
    page.get_by_role("link", name=RP_LOGIN).click()
    expect(page).to_have_url(base + "/login/second-factor")
    check(page, "second factor")
    page.locator("#code").fill("000000")
    submit(page)
    expect(page.locator("#code-error")).to_be_visible()
    check(page, "second factor, wrong code")
    page.locator("#code").fill(totp_code(secret, at=enrolled_at + 30))
    submit(page)
    expect(page.locator("h1")).to_have_text(f"{c.name} đề nghị nhận thông tin của bạn")

    # Logout asked for without an ID token: the confirmation, then the logged-out page.
    page.goto(base + "/oauth2/logout")
    expect(page.locator("h1")).to_have_text(vi(app, "Log out of every service?"))
    check(page, "logout confirmation")
    submit(page)
    expect(page.locator("h1")).to_have_text(vi(app, "You have been logged out"))
    check(page, "logged out")


def walk_unverified(stack, page, check) -> None:
    """A level-1 identity at a service that needs level 2."""
    person = new_person("Mai Văn Sơn", gender="male", year=1999)
    create_person(stack.app, person)
    log_in(page, stack.provider, person)
    page.goto(stack.rps["c"].url + "/")
    page.get_by_role("link", name=RP_LOGIN).click()
    expect(page.locator("h1")).to_have_text(
        vi(stack.app, "%(client)s needs a verified identity", client=stack.rps["c"].name))
    check(page, "verified identity needed")


WALKS = [walk_public, walk_signed_in, walk_unverified]


@pytest.mark.parametrize("walk", WALKS, ids=lambda w: w.__name__.removeprefix("walk_"))
def test_pages_pass_axe(stack, page, axe, walk):
    audit = AxeAudit(axe, stack.provider)
    walk(stack, page, audit)
    audit.assert_clean()


@pytest.mark.parametrize("walk", WALKS, ids=lambda w: w.__name__.removeprefix("walk_"))
def test_pages_fit_a_phone(stack, new_context, walk):
    context = new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    checked = []

    def check(page, label):
        assert_fits_phone(page, label)
        checked.append(label)

    walk(stack, page, check)
    assert checked
