"""Helpers of the browser tests: people, the catalogue's Vietnamese, logging in, axe-core."""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyotp

try:
    from playwright.sync_api import expect
except ImportError:  # conftest skips these tests, or fails them in CI, naming what is missing
    expect = None

PASSWORD = "một buổi sáng mùa thu ở hà nội"
NODE_DIR = Path(__file__).resolve().parent / "node"
AXE_JS = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = ("serious", "critical")
PHONE = {"width": 360, "height": 740}


@dataclass
class Person:
    personal_number: str
    full_name: str
    birth_date: date
    gender: str
    phone: str
    email: str
    password: str = PASSWORD


def new_person(full_name: str = "Lê Thị Hồng Nhung", *, gender: str = "female", year: int = 1992) -> Person:
    """A person nobody registered yet: a valid personal number (Hà Nội, 001), phone and e-mail."""
    century_digit = (0 if year < 2000 else 2) + (1 if gender == "female" else 0)
    serial = f"{secrets.randbelow(10**6):06d}"
    personal_number = f"001{century_digit}{year % 100:02d}{serial}"
    phone = f"0912{secrets.randbelow(10**6):06d}"
    return Person(personal_number, full_name, date(year, 4, 18), gender, phone,
                  f"e2e.{serial}.{secrets.token_hex(2)}@example.vn")


def create_person(app, person: Person, *, level: int = 1):
    """Register the person directly in the database (for scenarios that do not test registration)."""
    from idp.accounts import services as account_services
    from idp.extensions import db
    from idp.timeutil import utcnow

    with app.app_context():
        identity = account_services.register_citizen(
            personal_number=person.personal_number, full_name=person.full_name,
            birth_date=person.birth_date, gender=person.gender, phone=person.phone,
            email=person.email, password=person.password, config=app.config, now=utcnow(),
        )
        if level != identity.assurance_level:
            identity.assurance_level = level  # as an officer's in-person verification leaves it
            db.session.commit()
        identity_id = identity.id
        db.session.remove()
    return identity_id


def create_officer(app, person: Person, roles=("superadmin",)) -> tuple[object, str, float]:
    """An officer: the person registered, holding roles, with a confirmed authenticator app
    (enrolled through the service with a code of now's time step). Returns (identity id, the
    TOTP key, the time of the enrolment): log in with a code of a later step."""
    from idp.accounts import factors
    from idp.accounts import services as account_services
    from idp.accounts.models import Role
    from idp.extensions import db
    from idp.identity import services as identity_services
    from idp.store import get_store
    from idp.timeutil import utcnow

    identity_id = create_person(app, person, level=2)
    with app.app_context():
        identity = identity_services.get_identity(identity_id)
        for role in roles:
            account_services.grant_role(identity, Role(role), granted_by="e2e", now=utcnow())
        secret = factors.start_enrolment(identity_id, config=app.config, now=utcnow())
        enrolled_at = time.time()
        assert factors.confirm_enrolment(get_store(), identity_id, totp_code(secret, at=enrolled_at),
                                         config=app.config, now=utcnow())
        db.session.remove()
    return identity_id, secret, enrolled_at


def flask_cli(app, *args: str) -> str:
    """Run a `flask ...` command of the provider (as an operator would) and return what it
    printed on stdout; a failing command fails the test."""
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, f"flask {' '.join(args)}: exit {result.exit_code}\n{result.output}" + (
        f"\n{result.exception!r}" if result.exception else "")
    return result.stdout


LEGACY_COLUMNS = ("legacy_id", "username", "password_hash", "hash_scheme", "salt", "personal_number",
                  "full_name", "birth_date", "gender", "phone", "email")


def write_legacy_export(path: Path, rows: list[dict]) -> Path:
    """An old system's user export as docs/legacy.md describes it (CSV, a header row)."""
    import csv

    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LEGACY_COLUMNS, extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in LEGACY_COLUMNS})
    return path


def legacy_row(app, slug: str, legacy_id: str):
    """The legacy account of that system and id, detached from the session."""
    from sqlalchemy import select

    from idp.extensions import db
    from idp.legacy.models import LegacyAccount, LegacySystem

    with app.app_context():
        row = db.session.scalar(select(LegacyAccount).join(LegacySystem, LegacySystem.id == LegacyAccount.system_id)
                                .where(LegacySystem.slug == slug, LegacyAccount.legacy_user_id == legacy_id))
        db.session.expunge(row)
        db.session.remove()
    return row


def reset_link(app, identity_id) -> str:
    """A password reset link as the e-mail would carry it (the e-mail address made verified)."""
    from idp.accounts import recovery
    from idp.extensions import db
    from idp.identity import services as identity_services
    from idp.store import get_store
    from idp.timeutil import utcnow

    with app.app_context():
        identity = identity_services.get_identity(identity_id)
        identity.email_verified_at = utcnow()
        db.session.commit()
        token = recovery._issue_reset_token(get_store(), identity, via="email", contact=identity.email,
                                            config=app.config, now=utcnow())
        db.session.remove()
    return "/recover/reset?token=" + token


def vi(app, message: str, **variables) -> str:
    """What the provider shows for this message in Vietnamese (the default language)."""
    from flask_babel import force_locale, gettext

    with app.test_request_context("/"), force_locale("vi"):
        return gettext(message, **variables)


def vi_n(app, singular: str, plural: str, num: int, **variables) -> str:
    """What the provider shows for this plural message and number, in Vietnamese."""
    from flask_babel import force_locale, ngettext

    with app.test_request_context("/"), force_locale("vi"):
        return ngettext(singular, plural, num, **variables)


def totp_code(secret_text: str, *, at: float | None = None) -> str:
    """The code an authenticator app shows, from the key printed under the QR code."""
    return pyotp.TOTP(secret_text.replace(" ", "")).at(time.time() if at is None else at)


def log_in(page, provider_url: str, person: Person, *, path: str = "/login") -> None:
    page.goto(provider_url + path)
    page.locator("#login").fill(person.personal_number)
    page.locator("#password").fill(person.password)
    page.locator("form[method=post] button[type=submit]").click()


def reload_until(page, url: str, text: str, *, timeout: float = 15.0) -> None:
    """Open url again until it shows text (what another process changes arrives later)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if page.get_by_text(text).first.is_visible() or time.monotonic() > deadline:
            break
        page.wait_for_timeout(200)
    assert page.get_by_text(text).first.is_visible(), f"{url} never showed {text!r}"


# --- accessibility -------------------------------------------------------------------------

_RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').replace(/\\s+/g, ' ')),
  }));
}"""


class Axe:
    """axe-core injected into the page through the DevTools protocol (not a <script>, which the
    provider's CSP would refuse), run against WCAG 2.1 A and AA."""

    def __init__(self, source: str):
        self.source = source

    def violations(self, page) -> list[dict]:
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(self.source)
        return page.evaluate(_RUN_AXE, AXE_TAGS)


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """The WCAG contrast ratio of two colours."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def focus_indicator_contrast(page) -> float:
    """The best contrast, against white, of the colours that mark the focused element (its
    outline and box-shadow): WCAG 2.1 1.4.11 asks 3:1 of a focus indicator."""
    style = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return {outline: s.outlineStyle === 'none' ? '' : s.outlineColor, shadow: s.boxShadow}; }""")
    colours = [tuple(int(x) for x in m) for m in
               re.findall(r"rgba?\((\d+),\s*(\d+),\s*(\d+)", style["outline"] + " " + style["shadow"])]
    return max((contrast(c, (255, 255, 255)) for c in colours), default=1.0)


# --- the one layout ------------------------------------------------------------------------

_LAYOUT = """() => ({
  header: document.querySelectorAll('body > header.site-header').length,
  main: document.querySelectorAll('main#main').length,
  footer: document.querySelectorAll('body > footer.site-footer').length,
  skip: document.querySelectorAll('body > a.skip-link[href="#main"]').length,
  h1: document.querySelectorAll('h1').length,
  styles: [...document.querySelectorAll('link[rel=stylesheet]')].map(l => l.getAttribute('href')),
  scripts: [...document.querySelectorAll('script')].map(s => s.getAttribute('src') || 'inline'),
  inlineStyles: document.querySelectorAll('[style], style').length,
  lang: document.documentElement.lang,
  title: document.title,
})"""


def assert_base_layout(page, label: str) -> None:
    """Every provider page is base.html: one header, main, footer, skip link and h1, the one
    stylesheet, no script, no inline style, a language and a title."""
    found = page.evaluate(_LAYOUT)
    expected = {"header": 1, "main": 1, "footer": 1, "skip": 1, "h1": 1, "styles": ["/static/style.css"],
                "scripts": [], "inlineStyles": 0}
    assert {k: found[k] for k in expected} == expected, f"{label}: {found}"
    assert found["lang"] in ("vi", "en") and found["title"].strip(), f"{label}: {found}"


class AxeAudit:
    """Runs axe on each provider page of a walk (`audit(page, label)`), checking the base
    layout too; `assert_clean()` lists every blocking violation at the end."""

    def __init__(self, axe, provider: str):
        self.axe, self.provider = axe, provider
        self.blocking: dict[str, list] = {}
        self.lesser: dict[str, list] = {}
        self.checked: list[str] = []

    def __call__(self, page, label: str) -> None:
        assert page.url.startswith(self.provider), f"{label}: not a provider page: {page.url}"
        assert_base_layout(page, label)
        found = self.axe.violations(page)
        self.checked.append(label)
        for v in found:
            target = self.blocking if v["impact"] in BLOCKING_IMPACTS else self.lesser
            target.setdefault(label, []).append(v)

    def assert_clean(self) -> None:
        if self.lesser:
            print("moderate or minor axe findings:", json.dumps(self.lesser, ensure_ascii=False, indent=1))
        assert self.checked
        assert not self.blocking, "serious or critical axe violations:\n" + json.dumps(
            self.blocking, ensure_ascii=False, indent=1)


# --- phone-sized screens -------------------------------------------------------------------

def assert_fits_phone(page, label: str) -> None:
    """Nothing overflows 360 px horizontally; every button and button-like link can be reached."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{label}: the page is {width}px wide on a 360px screen"
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
        .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''))""")
    assert not wide, f"{label}: elements stick out on the right: {wide[:10]}"
    buttons = page.locator("main button, main a.button, main input[type=submit]")
    for i in range(buttons.count()):
        button = buttons.nth(i)
        if not button.is_visible():
            continue
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, \
            f"{label}: button {button.inner_text()!r} is outside the screen: {box}"
        button.click(trial=True, timeout=3000)  # visible, stable, enabled, not covered
