"""The consent page says, in Vietnamese, what is shared and with which agency; the account
console lists the consent and withdraws it."""

from __future__ import annotations

import pytest

from tests.e2e.support import create_person, expect, new_person, reload_until, vi

pytestmark = pytest.mark.slow

RP_LOGIN = "Đăng nhập bằng tài khoản định danh điện tử của tỉnh"
# The demo systems ask for "openid profile email phone".
SHARED = [
    "Một mã số nhận diện bạn với hệ thống này",
    "Họ tên, ngày sinh, giới tính và mức định danh của bạn",
    "Địa chỉ thư điện tử của bạn",
    "Số điện thoại của bạn",
]


def test_consent_page_then_withdrawal_from_the_console(stack, page):
    app, a = stack.app, stack.rps["a"]
    person = new_person("Vũ Thị Thu Trang", gender="female", year=2001)
    create_person(app, person)

    page.goto(a.url + "/")
    page.get_by_role("link", name=RP_LOGIN).click()
    page.get_by_label(vi(app, "Personal number, phone number or e-mail")).fill(person.phone)
    page.get_by_label(vi(app, "Password"), exact=True).fill(person.password)
    page.get_by_role("button", name="Đăng nhập").click()

    # The consent page: who asks, which agency runs it, what it receives, how to withdraw.
    expect(page.locator("h1")).to_have_text(f"{a.name} đề nghị nhận thông tin của bạn")
    expect(page.locator(".agency")).to_have_text(f"Cơ quan quản lý: {a.agency}")
    expect(page.get_by_text(f"Nếu bạn đồng ý, {a.name} sẽ nhận:")).to_be_visible()
    expect(page.locator("ul.scopes li")).to_have_text(SHARED)
    expect(page.get_by_text(vi(app, "You can withdraw this consent at any time from your account page, "
                                    "under “Connected systems”."))).to_be_visible()
    expect(page.get_by_text(vi(app, "Logged in as %(name)s.", name=person.full_name))).to_be_visible()
    expect(page.get_by_role("button", name=vi(app, "Decline"))).to_be_visible()
    page.get_by_role("button", name="Đồng ý và tiếp tục").click()
    expect(page.get_by_role("heading", name=f"Xin chào, {person.full_name}")).to_be_visible()

    # The account console lists the system with the same words.
    page.goto(stack.provider + "/account")
    page.get_by_role("link", name="Hệ thống đã kết nối").click()
    expect(page.locator("h1")).to_have_text("Hệ thống đã kết nối")
    card = page.locator("section.card", has=page.get_by_role("heading", name=a.name))
    expect(card).to_have_count(1)
    expect(card.get_by_text(f"Cơ quan quản lý: {a.agency}")).to_be_visible()
    expect(card.locator("li")).to_have_count(len(SHARED))
    assert sorted(card.locator("li").all_inner_texts()) == sorted(SHARED)  # listed in stored order

    # Withdrawing: said so, and the system is gone from the list.
    card.get_by_role("button", name="Rút lại sự đồng ý").click()
    expect(page.locator(".notice")).to_have_text(f"{a.name} không còn nhận thông tin của bạn.")
    expect(page.locator("section.card")).to_have_count(0)
    expect(page.get_by_text("Hiện không có hệ thống nào nhận thông tin của bạn.")).to_be_visible()

    # System A was logged out (back-channel), and asks for consent again at the next login.
    reload_until(page, a.url + "/", "Bạn chưa đăng nhập")
    page.get_by_role("link", name=RP_LOGIN).click()
    expect(page.locator("h1")).to_have_text(f"{a.name} đề nghị nhận thông tin của bạn")
