"""A citizen registers, logs in at demo system A, opens B without a password, logs out at B,
and A shows the session ended (back-channel logout)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.e2e.support import expect, new_person, reload_until, vi

pytestmark = pytest.mark.slow

RP_LOGIN = "Đăng nhập bằng tài khoản định danh điện tử của tỉnh"
RP_LOGGED_OUT = "Bạn chưa đăng nhập"
RP_ENDED = "Phiên đăng nhập của bạn tại hệ thống này đã kết thúc"


def register(page, stack, person) -> None:
    app = stack.app
    page.goto(stack.provider + "/register")
    expect(page.locator("h1")).to_have_text("Tạo tài khoản")
    page.get_by_label(vi(app, "Personal identification number (12 digits, on your citizen ID card)")).fill(person.personal_number)
    page.get_by_label(vi(app, "Full name, as on your citizen ID card")).fill(person.full_name)
    page.get_by_label(vi(app, "Date of birth")).fill(person.birth_date.isoformat())
    page.get_by_label(vi(app, "Male") if person.gender == "male" else vi(app, "Female"), exact=True).check()
    page.get_by_label(vi(app, "Phone number"), exact=True).fill(person.phone)
    page.get_by_label(vi(app, "E-mail"), exact=True).fill(person.email)
    page.get_by_label(vi(app, "Password (at least 15 characters)")).fill(person.password)
    page.get_by_role("button", name="Tạo tài khoản").click()


def agree(page, rp) -> None:
    """The consent page of this system: say yes."""
    expect(page.locator("h1")).to_have_text(f"{rp.name} đề nghị nhận thông tin của bạn")
    page.get_by_role("button", name="Đồng ý và tiếp tục").click()


def test_register_single_sign_on_and_single_logout(stack, context):
    person = new_person("Phạm Minh Tuấn", gender="male", year=1988)
    a, b = stack.rps["a"], stack.rps["b"]
    page_a = context.new_page()

    # Registration through the form; the login page then says the account exists.
    register(page_a, stack, person)
    expect(page_a).to_have_url(stack.provider + "/login")
    expect(page_a.locator(".notice")).to_have_text("Tài khoản của bạn đã được tạo. Bây giờ bạn có thể đăng nhập.")

    # System A: not logged in; its button leads to the provider's login page.
    page_a.goto(a.url + "/")
    expect(page_a.get_by_text(RP_LOGGED_OUT)).to_be_visible()
    page_a.get_by_role("link", name=RP_LOGIN).click()
    expect(page_a.locator("h1")).to_have_text("Đăng nhập")
    assert page_a.url.startswith(stack.provider + "/login?")
    page_a.get_by_label(vi(stack.app, "Personal number, phone number or e-mail")).fill(person.personal_number)
    page_a.get_by_label(vi(stack.app, "Password"), exact=True).fill(person.password)
    page_a.get_by_role("button", name="Đăng nhập").click()
    agree(page_a, a)
    expect(page_a).to_have_url(a.url + "/")
    expect(page_a.get_by_role("heading", name=f"Xin chào, {person.full_name}")).to_be_visible()

    # System B in another tab: single sign-on, no login page, no password typed.
    page_b = context.new_page()
    provider_paths: list[str] = []

    def navigation(request) -> None:
        if request.is_navigation_request() and request.url.startswith(stack.provider):
            provider_paths.append(urlsplit(request.url).path)

    page_b.on("request", navigation)
    page_b.goto(b.url + "/")
    expect(page_b.get_by_text(RP_LOGGED_OUT)).to_be_visible()
    page_b.get_by_role("link", name=RP_LOGIN).click()
    agree(page_b, b)
    expect(page_b.get_by_role("heading", name=f"Xin chào, {person.full_name}")).to_be_visible()
    assert "/oauth2/authorize" in provider_paths and "/login" not in provider_paths, provider_paths
    assert page_b.locator("input[type=password]").count() == 0

    # Log out at B: B says so, and the provider's session is gone.
    page_b.get_by_role("button", name="Đăng xuất").click()
    expect(page_b).to_have_url(re.compile(re.escape(b.url + "/?state=")))
    expect(page_b.locator("[role=status]")).to_have_text(
        "Bạn đã đăng xuất khỏi hệ thống này và khỏi tài khoản định danh điện tử của tỉnh.")
    expect(page_b.get_by_text(RP_LOGGED_OUT)).to_be_visible()

    # A learnt it through the back-channel: reloading shows the ended session, not the person.
    reload_until(page_a, a.url + "/", RP_LOGGED_OUT)
    expect(page_a.get_by_role("heading", name=f"Xin chào, {person.full_name}")).to_have_count(0)
    expect(page_a.get_by_text(RP_ENDED)).to_be_visible()
    expect(page_a.get_by_role("link", name=RP_LOGIN)).to_be_visible()

    # And the provider itself asks for a password again.
    page_a.goto(stack.provider + "/account")
    expect(page_a.locator("h1")).to_have_text("Đăng nhập")
