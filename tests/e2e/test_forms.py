"""Errors are shown in Vietnamese next to their field and announced; the login works with the
keyboard alone."""

from __future__ import annotations

import pytest

from tests.e2e.support import create_person, expect, focus_indicator_contrast, new_person, vi

pytestmark = pytest.mark.slow


def assert_error_next_to(page, field_id: str, message: str) -> None:
    """The message is in the field's error element, which the field names in aria-describedby,
    placed between the label and the field; the summary at the top is an alert linking to it."""
    field = page.locator(f"#{field_id}")
    error = page.locator(f"#{field_id}-error")
    expect(error).to_have_text(message)
    expect(error).to_be_visible()
    expect(field).to_have_attribute("aria-invalid", "true")
    described = (field.get_attribute("aria-describedby") or "").split()
    assert f"{field_id}-error" in described, described
    # The accessible description a screen reader reads with the field contains the message.
    description = page.evaluate(
        "ids => ids.map(id => document.getElementById(id).textContent.trim()).join(' ')", described)
    assert message in description
    label_box = page.locator(f"label[for={field_id}]").bounding_box()
    error_box, field_box = error.bounding_box(), field.bounding_box()
    assert label_box["y"] < error_box["y"] < field_box["y"], (label_box, error_box, field_box)
    assert field_box["y"] - (error_box["y"] + error_box["height"]) < 40  # right above the field
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text(message)
    expect(summary.get_by_role("link", name=message)).to_have_attribute("href", f"#{field_id}")


def test_invalid_personal_number_is_explained_next_to_the_field(stack, page):
    app = stack.app
    person = new_person("Hoàng Văn Nam", gender="male", year=1990)
    page.goto(stack.provider + "/register")
    page.get_by_label(vi(app, "Personal identification number (12 digits, on your citizen ID card)")).fill("0010901234")
    page.get_by_label(vi(app, "Full name, as on your citizen ID card")).fill(person.full_name)
    page.get_by_label(vi(app, "Date of birth")).fill(person.birth_date.isoformat())
    page.get_by_label(vi(app, "Male"), exact=True).check()
    page.get_by_label(vi(app, "Phone number"), exact=True).fill(person.phone)
    page.get_by_label(vi(app, "Password (at least 15 characters)")).fill(person.password)
    page.get_by_role("button", name="Tạo tài khoản").click()

    expect(page.locator("h1")).to_have_text("Tạo tài khoản")
    assert_error_next_to(page, "personal_number", "Số định danh cá nhân phải có đúng 12 chữ số.")
    expect(page.get_by_role("alert").locator("h2")).to_have_text("Vui lòng kiểm tra lại:")
    # What was typed is kept (except the password); the person corrects only the number.
    expect(page.locator("#full_name")).to_have_value(person.full_name)
    expect(page.locator("#personal_number")).to_have_value("0010901234")
    expect(page.locator("#password")).to_have_value("")


def test_wrong_password_is_explained_next_to_the_field(stack, page):
    app = stack.app
    person = new_person("Bùi Thị Mai", gender="female", year=1983)
    create_person(app, person)
    page.goto(stack.provider + "/login")
    page.get_by_label(vi(app, "Personal number, phone number or e-mail")).fill(person.personal_number)
    page.get_by_label(vi(app, "Password"), exact=True).fill("không phải mật khẩu của tôi đâu")
    page.get_by_role("button", name="Đăng nhập").click()

    expect(page.locator("h1")).to_have_text("Đăng nhập")
    assert_error_next_to(page, "password", "Thông tin đăng nhập không đúng.")
    expect(page.locator("#login")).to_have_value(person.personal_number)
    expect(page.locator("#password")).to_have_value("")


def test_keyboard_only_login(stack, page):
    app = stack.app
    person = new_person("Ngô Thanh Hải", gender="male", year=1995)
    create_person(app, person)
    page.goto(stack.provider + "/login")

    # The first Tab reaches the skip link, which appears on screen and leads to the content.
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box["x"] >= 0 and box["y"] >= 0 and box["width"] > 0
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"

    # Tab on to the login field, type, Tab to the password, type, Enter.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "login":
            break
    expect(page.locator("#login")).to_be_focused()
    assert focus_indicator_contrast(page) >= 3, "the focus indicator is too faint on white"
    page.keyboard.type(person.personal_number)
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(person.password)
    page.keyboard.press("Enter")

    expect(page.locator("h1")).to_have_text(vi(app, "My account"))
    expect(page.get_by_text(person.full_name)).to_be_visible()
