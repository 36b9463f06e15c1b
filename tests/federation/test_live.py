"""Both providers live: ours on 127.0.0.1 (its database and store), the upstream on localhost
(its own). A relying party of ours asks for a login; the browser goes through our login page,
the upstream button, the upstream's login (password and TOTP) and consent, back to our
callback, our consent, and the RP. Then logout, both ways."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urljoin

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.accounts.factors import ACR_SUBSTANTIAL
from idp.federation import services
from idp.federation.tokens import ALLOWED_ALGS
from idp.federation.upstream import fetch_metadata
from idp.identity.services import get_identity
from idp.oidc.keys import ensure_keys
from idp.timeutil import utcnow
from tests.federation.conftest import upstream_login
from tests.support import browser as b
from tests.support.live import LiveServer, csrf_token
from tests.support.oidc import make_client
from tests.support.receiver import Receiver, validate_logout_token

pytestmark = pytest.mark.slow

CLAIM_MAP = {"personal_number": "national_id", "full_name": "name", "birth_date": "birthdate", "gender": "gender"}
ACRS = {
    "urn:eid:loa:substantial": {"identity_level": 2, "amr": ["fed", "mfa"], "session_acr": ACR_SUBSTANTIAL},
    "urn:eid:loa:low": {"identity_level": 1, "amr": ["fed"]},
}
BUTTON = "Đăng nhập bằng tài khoản định danh điện tử quốc gia"


@pytest.fixture
def receiver():
    with Receiver() as rec:
        yield rec


@pytest.fixture
def world(make_app, upstream, receiver, base_config):
    """Our live server, its RP, and the upstream configured at ours (and ours at the upstream)."""
    seed = make_app()
    rp_id, rp_secret = make_client(seed, redirect_uris=[receiver.url("/cb")],
                                   backchannel_logout_uri=receiver.url("/bc"), scopes=["openid", "profile"])
    with seed.app_context():
        ensure_keys(now=utcnow(), config=seed.config)
    config = {**base_config, "SERVER_NAME": None, "KEY_CACHE_SECONDS": 1, "BACKCHANNEL_WORKER": True,
              "BACKCHANNEL_RETRY_DELAY": 1}
    with LiveServer(config, issuer_is_url=True) as ours:
        up_id, up_secret = make_client(
            upstream.app, name="Định danh điện tử tỉnh", redirect_uris=[ours.url + "/federation/vneid/callback"],
            backchannel_logout_uri=ours.url + "/federation/vneid/backchannel-logout",
            scopes=["openid", "profile", "national_id"])
        with seed.app_context():
            meta = fetch_metadata(upstream.url, timeout=5, allowed_algs=ALLOWED_ALGS)
            services.add_provider(slug="vneid", issuer=upstream.url, metadata=meta, client_id=up_id,
                                  client_secret=up_secret, scopes="openid profile national_id",
                                  claim_mapping=CLAIM_MAP, acr_mapping=ACRS,
                                  display_name="Tài khoản định danh điện tử quốc gia", button_label=BUTTON,
                                  config=seed.config, now=utcnow())
        yield type("World", (), {"seed": seed, "ours": ours, "rp_id": rp_id, "rp_secret": rp_secret,
                                 "up_id": up_id})


def jwks(base: str) -> KeySet:
    return KeySet.import_key_set(requests.get(base + "/oauth2/jwks", timeout=10).json())


def click_upstream_button(browser: requests.Session, login_page: requests.Response) -> str:
    assert BUTTON in login_page.text and 'name="password"' in login_page.text
    href = re.search(r'<a [^>]*href="([^"]+)"[^>]*data-upstream="vneid"', login_page.text)
    assert href, "no upstream button"
    resp = browser.get(urljoin(login_page.url, href.group(1).replace("&amp;", "&")), allow_redirects=False,
                       timeout=10)
    assert resp.status_code == 302, resp.text[:300]
    return resp.headers["Location"]


def ours_until(browser, resp, stop_at: str) -> str:
    """Follow our own redirects and approve our consent until a redirect to stop_at."""
    for _ in range(6):
        if resp.status_code in b.REDIRECTS:
            location = urljoin(resp.url, resp.headers["Location"])
            if location.startswith(stop_at):
                return location
            resp = browser.get(location, allow_redirects=False, timeout=10)
        elif resp.status_code == 200 and 'name="decision"' in resp.text:
            req = re.search(r'name="req" value="([^"]+)"', resp.text).group(1)
            resp = browser.post(b.form_action(resp), data={"req": req, "decision": "allow",
                                                           "csrf_token": csrf_token(resp.text)},
                                allow_redirects=False, timeout=30)
        else:
            raise AssertionError(f"unexpected page {resp.status_code} at {resp.url}: {resp.text[:500]}")
    raise AssertionError("too many steps at our provider")


def test_relying_party_login_through_the_national_e_id_and_logout_from_upstream(world, upstream, receiver):
    ours = world.ours
    citizen = upstream.citizen(level=2, totp=True)
    browser = requests.Session()
    rp = OAuth2Session(world.rp_id, world.rp_secret, scope="openid profile", redirect_uri=receiver.url("/cb"),
                       code_challenge_method="S256")
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = rp.create_authorization_url(ours.url + "/oauth2/authorize", code_verifier=verifier, nonce=nonce)

    # Our authorize → our login page (the pending request rides in next=) → the upstream button.
    first = browser.get(url, allow_redirects=False, timeout=10)
    assert first.status_code == 302 and "/login?next=/oauth2/authorize/resume" in first.headers["Location"]
    login_page = browser.get(urljoin(ours.url, first.headers["Location"]), timeout=10)
    to_upstream = click_upstream_button(browser, login_page)
    assert to_upstream.startswith(upstream.url + "/oauth2/authorize?")
    # The upstream's own login form, second factor and consent; back to our callback.
    callback = upstream_login(browser, to_upstream, stop_at=ours.url + "/federation/vneid/callback",
                              citizen=citizen)
    back = browser.get(callback, allow_redirects=False, timeout=10)
    assert back.status_code == 302 and "/oauth2/authorize/resume?req=" in back.headers["Location"], back.text[:500]
    assert browser.cookies.get("idp_sid", domain="127.0.0.1")
    to_rp = ours_until(browser, back, receiver.url("/cb"))
    assert b.query_of(to_rp)["state"] == state and b.query_of(to_rp)["iss"] == ours.url

    token = rp.fetch_token(ours.url + "/oauth2/token", authorization_response=to_rp, state=state,
                           code_verifier=verifier)
    id_token = jwt.decode(token["id_token"], jwks(ours.url), algorithms=["RS256"]).claims
    assert id_token["nonce"] == nonce
    assert id_token["acr"] == ACR_SUBSTANTIAL and id_token["amr"] == ["fed", "mfa"]
    with world.seed.app_context():
        identity = get_identity(uuid.UUID(id_token["sub"]))
        assert identity.assurance_level == 2 and identity.primary_identifier.value == citizen["number"]
        [link] = services.links_of(identity.id)
        assert link.verified_acr == ACR_SUBSTANTIAL
    assert browser.get(ours.url + "/account", allow_redirects=False, timeout=10).status_code == 200

    # The person logs out at the upstream: its back-channel logout reaches us, we end our
    # session, and our RP gets our own back-channel logout for the same sid.
    out = b.log_out(browser, upstream.url)
    assert out.status_code == 302
    posts = receiver.wait_for_posts("/bc", 1, timeout=20)
    assert len(posts) == 1, "our RP got no back-channel logout"
    logout = validate_logout_token(posts[0].form["logout_token"], jwks(ours.url), issuer=ours.url,
                                   client_id=world.rp_id, algorithms=("RS256",))
    assert logout["sid"] == id_token["sid"] and logout["sub"] == id_token["sub"]
    assert browser.get(ours.url + "/account", allow_redirects=False, timeout=10).status_code == 302
    refreshed = requests.post(ours.url + "/oauth2/token", auth=(world.rp_id, world.rp_secret), timeout=10,
                              data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


def test_local_logout_offers_the_upstream_logout(world, upstream):
    ours = world.ours
    citizen = upstream.citizen(level=2, totp=True)
    browser = requests.Session()
    login_page = browser.get(ours.url + "/login", timeout=10)
    callback = upstream_login(browser, click_upstream_button(browser, login_page),
                              stop_at=ours.url + "/federation/vneid/callback", citizen=citizen)
    assert browser.get(callback, allow_redirects=False, timeout=10).status_code == 302
    assert browser.get(upstream.url + "/account", allow_redirects=False, timeout=10).status_code == 200

    out = b.log_out(browser, ours.url)
    assert out.status_code == 302 and out.headers["Location"].endswith("/federation/logged-out")
    page = browser.get(urljoin(ours.url, out.headers["Location"]), timeout=10)
    assert page.status_code == 200 and "Tài khoản định danh điện tử quốc gia" in page.text
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S)
    assert form and form.group(1) == upstream.url + "/oauth2/logout"
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]+)"', form.group(2)))
    assert fields["client_id"] == world.up_id and fields["id_token_hint"].count(".") == 2
    # Our session is already gone; the button ends the upstream's too.
    assert browser.get(ours.url + "/account", allow_redirects=False, timeout=10).status_code == 302
    bye = browser.post(form.group(1), data=fields, allow_redirects=False, timeout=10)
    assert bye.status_code == 200, bye.text[:300]
    assert browser.get(upstream.url + "/account", allow_redirects=False, timeout=10).status_code == 302


def upstream_logout_token(upstream, client_id: str, *, sub=None, sid=None) -> str:
    """A logout token signed with the upstream's own key, as its logout would send it."""
    from idp.clients.services import get_client
    from idp.oidc.logout import build_logout_token

    with upstream.app.app_context():
        return build_logout_token(get_client(client_id), sub=sub, sid=sid)


def test_back_channel_logout_endpoint_refuses_bad_and_replayed_tokens(world, upstream):
    url = world.ours.url + "/federation/vneid/backchannel-logout"
    for data in ({}, {"logout_token": "x.y.z"}, {"logout_token": "e30.e30."}):
        resp = requests.post(url, data=data, timeout=10)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    assert requests.post(world.ours.url + "/federation/nope/backchannel-logout", timeout=10).status_code == 404
    token = upstream_logout_token(upstream, world.up_id, sub="someone", sid="no-such-session")
    ok = requests.post(url, data={"logout_token": token}, timeout=10)
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "no-store"
    replay = requests.post(url, data={"logout_token": token}, timeout=10)
    assert replay.status_code == 400 and replay.json()["error_description"] == "replayed"
    # Signed by the upstream, but for another of its clients.
    other_id, _ = make_client(upstream.app, backchannel_logout_uri="https://rp.example/bc")
    other = upstream_logout_token(upstream, other_id, sub="someone")
    assert requests.post(url, data={"logout_token": other}, timeout=10).status_code == 400
