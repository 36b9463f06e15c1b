"""A verified (level 2) citizen sets up an authenticator app from the account console, reading
the key printed under the QR code; then a service that needs two factors (demo system C, sent
with acr_values=urn:eid:loa:substantial) makes the provider ask for the code (step-up)."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.support import create_person, expect, log_in, new_person, totp_code, vi

pytestmark = pytest.mark.slow

RP_LOGIN = "Đăng nhập bằng tài khoản định danh điện tử của tỉnh"


def test_enrol_authenticator_then_step_up_for_a_demanding_service(stack, page):
    app, c = stack.app, stack.rps["c"]
    person = new_person("Đỗ Quang Vinh", gender="male", year=1979)
    create_person(app, person, level=2)

    # A password login: the account page suggests an authenticator app.
    log_in(page, stack.provider, person)
    expect(page.locator("h1")).to_have_text(vi(app, "My account"))
    expect(page.get_by_text(vi(app, "Level 2: verified"))).to_be_visible()
    page.get_by_role("link", name=vi(app, "Set up an authenticator app")).click()

    # The enrolment page: a QR code, and the same key as text for those who cannot scan it.
    expect(page.locator("h1")).to_have_text(vi(app, "Set up an authenticator app"))
    expect(page.get_by_role("img", name=vi(app, "QR code of the key for your authenticator app"))).to_be_visible()
    secret = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{4})+", secret), secret
    enrolled_at = time.time()
    page.get_by_label(vi(app, "The 6-digit code the app shows now")).fill(totp_code(secret, at=enrolled_at))
    page.get_by_role("button", name=vi(app, "Confirm")).click()

    # Recovery codes, shown once; then the account page says the app is set up.
    expect(page.locator("h1")).to_have_text(vi(app, "Your recovery codes"))
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name=vi(app, "I have saved them, continue")).click()
    expect(page.locator("h1")).to_have_text(vi(app, "My account"))
    expect(page.get_by_text(vi(app, "Authenticator app set up"))).to_be_visible()

    # System C needs two factors: the session (password only) is stepped up with a code.
    callbacks: list[str] = []
    page.on("request", lambda r: r.url.startswith(c.url + "/callback") and callbacks.append(r.url))
    page.goto(c.url + "/")
    page.get_by_role("link", name=RP_LOGIN).click()
    expect(page).to_have_url(stack.provider + "/login/second-factor")
    expect(page.locator("h1")).to_have_text(vi(app, "Confirm it is you"))
    assert page.locator("input[type=password]").count() == 0  # no password asked again
    # The next time step's code: the enrolment's code was used, and used codes are refused.
    page.get_by_label(vi(app, "Code from your authenticator app, or a recovery code")).fill(
        totp_code(secret, at=enrolled_at + 30))
    page.get_by_role("button", name=vi(app, "Continue")).click()

    expect(page.locator("h1")).to_have_text(f"{c.name} đề nghị nhận thông tin của bạn")
    page.get_by_role("button", name="Đồng ý và tiếp tục").click()

    # The final redirect carried a code, and system C shows the level reached.
    expect(page.get_by_role("heading", name=f"Xin chào, {person.full_name}")).to_be_visible()
    assert len(callbacks) == 1, callbacks
    query = parse_qs(urlsplit(callbacks[0]).query)
    assert query["code"][0] and query["state"][0] and query["iss"] == [stack.provider]
    acr_row = page.locator("tr", has=page.locator("code", has_text="(acr)"))
    expect(acr_row.locator("td")).to_have_text("urn:eid:loa:substantial")
    amr_row = page.locator("tr", has=page.locator("code", has_text="(amr)"))
    expect(amr_row.locator("td")).to_contain_text("otp")
