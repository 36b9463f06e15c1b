"""Logging in to a government system through the national e-ID (federation upstream).

The upstream is a second instance of this provider with its own database and store (the
`upstream` fixture of tests/federation), served on 127.0.0.1 and named http://localhost:<port>
so that the browser keeps its cookies apart from ours. It is configured at our provider as
`vneid` the way an operator does (its discovery document fetched, a client registered there),
with its level of assurance mapped onto ours.

In the browser: demo system A → our login page → the national e-ID button → the upstream's own
login page, its second factor and consent → back at our provider, our consent → system A, which
shows the person's name and the level reached (urn:eid:loa:substantial, fed + mfa).
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from tests.e2e.support import AxeAudit, expect, totp_code, vi
from tests.federation import conftest as federation
from tests.support.oidc import PASSWORD as UPSTREAM_PASSWORD  # the upstream citizens' password

pytestmark = pytest.mark.slow

# The live upstream of the federation tests (module scope: one upstream server for this file),
# registered here under this attribute's name: pytest names an imported fixture after the name
# it is bound to.
national_eid = federation.upstream

SLUG = "vneid"
RP_LOGIN = "Đăng nhập bằng tài khoản định danh điện tử của tỉnh"
BUTTON = "Đăng nhập bằng tài khoản định danh điện tử quốc gia"
DISPLAY_NAME = "Tài khoản định danh điện tử quốc gia"
UPSTREAM_CLIENT_NAME = "Định danh điện tử tỉnh"
CLAIM_MAP = {"personal_number": "national_id", "full_name": "name", "birth_date": "birthdate", "gender": "gender"}
ACRS = {
    "urn:eid:loa:substantial": {"identity_level": 2, "amr": ["fed", "mfa"], "session_acr": "urn:eid:loa:substantial"},
    "urn:eid:loa:low": {"identity_level": 1, "amr": ["fed"]},
}


@pytest.fixture
def upstream_at_provider(stack, national_eid):
    """The national e-ID configured at our provider (and our provider as its client); removed
    afterwards, so that the other browser tests see the login page without its button."""
    from idp.federation import services
    from idp.federation.tokens import ALLOWED_ALGS
    from idp.federation.upstream import fetch_metadata
    from idp.timeutil import utcnow
    from tests.support.oidc import make_client

    client_id, secret = make_client(
        national_eid.app, name=UPSTREAM_CLIENT_NAME, redirect_uris=[f"{stack.provider}/federation/{SLUG}/callback"],
        backchannel_logout_uri=f"{stack.provider}/federation/{SLUG}/backchannel-logout",
        scopes=["openid", "profile", "national_id"])
    app = stack.app
    with app.app_context():
        metadata = fetch_metadata(national_eid.url, timeout=5, allowed_algs=ALLOWED_ALGS)
        services.add_provider(slug=SLUG, issuer=national_eid.url, metadata=metadata, client_id=client_id,
                              client_secret=secret, scopes="openid profile national_id", claim_mapping=CLAIM_MAP,
                              acr_mapping=ACRS, display_name=DISPLAY_NAME, button_label=BUTTON,
                              config=app.config, now=utcnow())
    yield national_eid
    with app.app_context():
        provider = services.get_provider(SLUG)
        if provider is not None:
            services.remove_provider(provider)


def identity_and_link(app, number: str):
    from idp.extensions import db
    from idp.federation import services
    from idp.identity import services as identity_services
    from idp.identity.models import IdentifierType

    with app.app_context():
        identity = identity_services.identity_by_identifier(IdentifierType.PERSONAL_NUMBER, number)
        assert identity is not None, f"no identity with {number}"
        links = [(link.issuer, link.verified_acr) for link in services.links_of(identity.id)]
        found = (identity.full_name, identity.birth_date, identity.assurance_level, links)
        db.session.remove()
    return found


def test_relying_party_login_through_the_national_e_id(stack, new_context, axe, upstream_at_provider):
    app, base, upstream = stack.app, stack.provider, upstream_at_provider
    a = stack.rps["a"]
    check = AxeAudit(axe, base)
    citizen = upstream.citizen(level=2, totp=True, name="Phan Văn Thành", birth=date(1987, 9, 2))
    page = new_context(upstreams=[upstream.url]).new_page()

    # System A sends the person to our login page, which offers the national e-ID.
    page.goto(a.url + "/")
    page.get_by_role("link", name=RP_LOGIN).click()
    expect(page.locator("h1")).to_have_text(vi(app, "Log in"))
    assert page.url.startswith(base + "/login?next=")
    button = page.get_by_role("link", name=BUTTON)
    expect(button).to_be_visible()
    expect(page.get_by_text(vi(app, "or log in with your provincial account:"))).to_be_visible()
    check(page, "login page with the national e-ID button")
    button.click()

    # The upstream's own pages, on its own origin: password, authenticator code, consent.
    expect(page).to_have_url(re.compile(re.escape(upstream.url + "/login?next=")))
    expect(page.locator("h1")).to_have_text(vi(app, "Log in"))
    page.get_by_label(vi(app, "Personal number, phone number or e-mail")).fill(citizen["number"])
    page.get_by_label(vi(app, "Password"), exact=True).fill(UPSTREAM_PASSWORD)
    page.get_by_role("button", name=vi(app, "Log in")).click()
    expect(page).to_have_url(upstream.url + "/login/second-factor")
    page.get_by_label(vi(app, "Code from your authenticator app, or a recovery code")).fill(totp_code(citizen["totp"]))
    page.get_by_role("button", name=vi(app, "Continue")).click()
    expect(page.locator("h1")).to_have_text(vi(app, "%(client)s asks for your information", client=UPSTREAM_CLIENT_NAME))
    assert page.url.startswith(upstream.url + "/")
    page.get_by_role("button", name="Đồng ý và tiếp tục").click()

    # Back at our provider: a new identity from the upstream's verified data; our consent for A.
    expect(page.locator("h1")).to_have_text(vi(app, "%(client)s asks for your information", client=a.name))
    assert page.url.startswith(base + "/")
    check(page, "consent after the national e-ID")
    page.get_by_role("button", name="Đồng ý và tiếp tục").click()

    # System A: the person's name, and the level of assurance the national e-ID gave.
    expect(page).to_have_url(a.url + "/")
    expect(page.get_by_role("heading", name=f"Xin chào, {citizen['name']}")).to_be_visible()
    claims = {key: page.locator("tr", has=page.locator("code", has_text=f"({key})")).locator("td")
              for key in ("name", "birthdate", "acr", "amr")}
    expect(claims["name"]).to_have_text(citizen["name"])
    expect(claims["acr"]).to_have_text("urn:eid:loa:substantial")
    expect(claims["amr"]).to_have_text("fed, mfa")

    # Our provider: logged in (single sign-on from now on), the identity verified at level 2.
    page.goto(base + "/account")
    expect(page.locator("h1")).to_have_text(vi(app, "My account"))
    expect(page.get_by_text(vi(app, "Level 2: verified"))).to_be_visible()
    check(page, "account after the national e-ID")
    full_name, birth_date, level, links = identity_and_link(app, citizen["number"])
    assert (full_name, birth_date, level) == (citizen["name"], citizen["birth"], 2)
    assert links == [(upstream.url, "urn:eid:loa:substantial")]
    check.assert_clean()
