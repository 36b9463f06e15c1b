"""The brokered login through a live upstream (a second instance of this provider, its own
database), with our provider driven through Flask's test client and the upstream's pages through
a requests.Session. No app context is pushed while a test client is in use."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from idp.accounts import sessions as sso
from idp.extensions import db
from idp.federation import services
from idp.federation.models import FederationConflict, UpstreamLink
from idp.federation.tokens import ALLOWED_ALGS, TokenError, validate_id_token
from idp.federation.upstream import JwksCache, fetch_metadata
from idp.identity.models import Identity
from idp.identity.services import get_identity
from idp.timeutil import utcnow
from tests.federation.conftest import upstream_login
from tests.federation.fakes import DictStore
from tests.support.forms import csrf_from, submit
from tests.support.i18n import shows
from tests.support.oidc import REDIRECT, log_in, make_citizen, make_client, pkce_pair
from tests.support.receiver import Receiver, Step, closed_port_url

pytestmark = pytest.mark.slow

OURS = "http://127.0.0.1"
CALLBACK = OURS + "/federation/up/callback"
CLAIM_MAP = {"personal_number": "national_id", "full_name": "name", "birth_date": "birthdate", "gender": "gender",
             "email": "email"}
# The upstream's "low" is a verified identity with one factor; "substantial" adds a second.
ACR_VERIFIED = {
    "urn:eid:loa:low": {"identity_level": 2, "amr": ["fed"]},
    "urn:eid:loa:substantial": {"identity_level": 2, "amr": ["fed", "mfa"]},
}
ACR_UNVERIFIED = {"*": {"identity_level": 1, "amr": ["fed"]}}
NAME = "Định danh quốc gia (thử nghiệm)"


def configure(app, upstream, *, acr_mapping=ACR_VERIFIED, slug="up"):
    client_id, secret = make_client(upstream.app, name="Định danh điện tử tỉnh",
                                    redirect_uris=[f"{OURS}/federation/{slug}/callback"],
                                    scopes=["openid", "profile", "email", "national_id"])
    with app.app_context():
        meta = fetch_metadata(upstream.url, timeout=5, allowed_algs=ALLOWED_ALGS)
        services.add_provider(slug=slug, issuer=upstream.url, metadata=meta, client_id=client_id,
                              client_secret=secret, scopes="openid profile email national_id",
                              claim_mapping=CLAIM_MAP, acr_mapping=acr_mapping, display_name=NAME,
                              config=app.config, now=utcnow())
    return client_id


@pytest.fixture
def ours(make_app):
    return make_app(ISSUER=OURS)


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def start(client, *, next_url=None, slug="up"):
    resp = client.get(f"/federation/{slug}/start" + (f"?next={quote(next_url, safe='')}" if next_url else ""))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return resp.headers["Location"]


def through_upstream(client, upstream, citizen, *, next_url=None, browser=None, **kw) -> str:
    """Start at ours, log in at the upstream; the callback URL (not yet visited)."""
    return upstream_login(browser or requests.Session(), start(client, next_url=next_url),
                          stop_at=CALLBACK, citizen=citizen, **kw)


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def logged_in(client) -> bool:
    return client.get("/account").status_code == 200


def session_of(app, client) -> dict:
    cookie = client.get_cookie("idp_sid")  # http issuer: no __Host- prefix
    with app.app_context():
        store = app.extensions["idp_store"]
        sess = sso.load_session(store, cookie.value, now=int(time.time()), idle=10**6, absolute=10**6)
        return {"amr": sess.amr, "acr": sess.acr, "identity_id": sess.identity_id, "public_id": sess.public_id}


# --- the login page and the happy paths ------------------------------------------------------

def test_login_page_has_one_button_per_enabled_upstream(ours, upstream):
    configure(ours, upstream)
    client = ours.test_client()
    html = client.get("/login?next=/oauth2/authorize/resume%3Freq%3Dabc").get_data(as_text=True)
    assert NAME in html
    assert "/federation/up/start?next=/oauth2/authorize/resume?req%3Dabc" in html
    assert 'name="password"' in html  # the local form stays
    with ours.app_context():
        services.set_enabled(services.get_provider("up"), False, now=utcnow())
    assert "/federation/up/start" not in client.get("/login").get_data(as_text=True)
    assert client.get("/federation/up/start").status_code == 404


def test_authorization_request_uses_pkce_s256_state_nonce(ours, upstream):
    configure(ours, upstream)
    location = start(ours.test_client())
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert location.startswith(upstream.url + "/oauth2/authorize?")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["response_type"] == "code" and query["redirect_uri"] == CALLBACK
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    assert "national_id" in query["scope"].split()


def test_first_login_creates_the_identity_at_the_upstream_level(ours, upstream):
    configure(ours, upstream)
    citizen = upstream.citizen(level=2)
    client = ours.test_client()
    resp = client.get(local(through_upstream(client, upstream, citizen, next_url="/account/sessions")))
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/sessions")
    assert logged_in(client)
    sess = session_of(ours, client)
    assert sess["amr"] == ["fed"] and sess["acr"] == "urn:eid:loa:low"  # one factor upstream
    with ours.app_context():
        identity = get_identity(uuid.UUID(sess["identity_id"]))
        assert identity.primary_identifier.value == citizen["number"]  # from userinfo's national_id
        assert identity.full_name == citizen["name"] and identity.assurance_level == 2
        assert not services.has_password(identity.id)
        [link] = services.links_of(identity.id)
        assert link.verified_level == 2 and link.verified_acr == "urn:eid:loa:low"
    # Next time: the same identity, by the link.
    client2 = ours.test_client()
    client2.get(local(through_upstream(client2, upstream, citizen)))
    assert session_of(ours, client2)["identity_id"] == sess["identity_id"]
    assert count(ours, Identity) == 1


def test_two_factor_upstream_login_gives_a_substantial_session(ours, upstream):
    configure(ours, upstream)
    citizen = upstream.citizen(level=2, totp=True)
    client = ours.test_client()
    client.get(local(through_upstream(client, upstream, citizen)))
    sess = session_of(ours, client)
    assert sess["amr"] == ["fed", "mfa"] and sess["acr"] == "urn:eid:loa:substantial"


def test_a_level_1_upstream_never_raises_the_identity(ours, upstream):
    configure(ours, upstream, acr_mapping=ACR_UNVERIFIED)
    citizen = upstream.citizen(level=2, totp=True)
    client = ours.test_client()
    client.get(local(through_upstream(client, upstream, citizen)))
    sess = session_of(ours, client)
    assert sess["acr"] == "urn:eid:loa:low"
    with ours.app_context():
        assert get_identity(uuid.UUID(sess["identity_id"])).assurance_level == 1


def test_verified_number_and_birth_date_link_the_existing_account(ours, upstream):
    configure(ours, upstream)
    citizen = upstream.citizen(level=2)
    mine = make_citizen(ours, personal_number=citizen["number"], full_name="Nguyen Van An")
    client = ours.test_client()
    client.get(local(through_upstream(client, upstream, citizen)))
    assert session_of(ours, client)["identity_id"] == str(mine)
    with ours.app_context():
        assert get_identity(mine).assurance_level == 2
    assert count(ours, Identity) == 1


def test_a_number_with_another_name_goes_to_the_officers_and_the_person_is_told(ours, upstream):
    configure(ours, upstream)
    citizen = upstream.citizen(level=2, name="Nguyễn Văn Bình")
    make_citizen(ours, personal_number=citizen["number"])  # registered here as Nguyễn Văn An
    client = ours.test_client()
    resp = client.get(local(through_upstream(client, upstream, citizen)))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert shows(html, "An officer will check it") and "/login" in html
    assert not logged_in(client)
    with ours.app_context():
        [conflict] = services.open_conflicts()
        assert conflict.reason == "name_differs" and conflict.claims["full_name"] == "Nguyễn Văn Bình"
    assert count(ours, UpstreamLink) == 0


def test_an_unverified_number_of_an_existing_account_needs_the_local_login(ours, upstream):
    configure(ours, upstream, acr_mapping=ACR_UNVERIFIED)
    citizen = upstream.citizen(level=1)
    make_citizen(ours, personal_number=citizen["number"])
    client = ours.test_client()
    resp = client.get(local(through_upstream(client, upstream, citizen)))
    assert resp.status_code == 409 and shows(resp.get_data(as_text=True), "Log in to it with your password")
    assert not logged_in(client) and count(ours, UpstreamLink) == 0 and count(ours, FederationConflict) == 0


# --- forged and replayed answers --------------------------------------------------------------

def test_state_is_bound_to_the_browser_session_and_single_use(ours, upstream):
    configure(ours, upstream)
    citizen = upstream.citizen(level=2)
    alice = ours.test_client()
    callback = local(through_upstream(alice, upstream, citizen))
    mallory = ours.test_client()
    refused = mallory.get(callback)
    assert refused.status_code == 400 and shows(refused.get_data(as_text=True), "started in another browser")
    assert not logged_in(mallory)
    assert alice.get(callback).status_code == 302 and logged_in(alice)
    replay = ours.test_client()
    replay_start = start(replay)  # a live attempt of its own does not make another state valid
    assert replay_start
    assert replay.get(callback).status_code == 400
    assert alice.get(callback).status_code == 400  # used once
    # A made-up state, or none.
    assert alice.get("/federation/up/callback?code=x&state=made-up").status_code == 400
    assert alice.get("/federation/up/callback?code=x").status_code == 400


def with_param(url: str, name: str, value: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if value is None:
        query.pop(name, None)
    else:
        query[name] = value
    return parts.path + "?" + urlencode(query)


@pytest.mark.parametrize("iss", ["http://127.0.0.1:1", None])
def test_the_iss_response_parameter_must_name_the_upstream(ours, upstream, iss):
    configure(ours, upstream)
    citizen = upstream.citizen(level=2)
    client = ours.test_client()
    callback = through_upstream(client, upstream, citizen)
    assert parse_qs(urlsplit(callback).query)["iss"] == [upstream.url]
    resp = client.get(with_param(callback, "iss", iss))
    assert resp.status_code == 400 and shows(resp.get_data(as_text=True), "could not be verified")
    assert not logged_in(client) and count(ours, Identity) == 0


def test_a_code_for_another_attempt_is_refused(ours, upstream):
    """A code obtained in one attempt, pasted into another attempt of the same browser: the
    PKCE verifier and nonce of the second attempt do not fit it."""
    configure(ours, upstream)
    citizen = upstream.citizen(level=2)
    client = ours.test_client()
    browser = requests.Session()
    first = through_upstream(client, upstream, citizen, browser=browser)
    second = through_upstream(client, upstream, citizen, browser=browser)
    code = parse_qs(urlsplit(first).query)["code"][0]
    resp = client.get(with_param(second, "code", code))
    assert resp.status_code == 400 and not logged_in(client)


def test_the_upstream_refusing_shows_a_clear_page(ours, upstream):
    configure(ours, upstream)
    citizen = upstream.citizen(level=2)
    client = ours.test_client()
    callback = upstream_login(requests.Session(), start(client, next_url="/oauth2/authorize/resume?req=r1"),
                              stop_at=CALLBACK, citizen=citizen, consent="deny")
    assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]
    resp = client.get(local(callback))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and shows(html, "did not allow it to share your information")
    # The way back to the local login keeps the pending request.
    assert "/login?next=/oauth2/authorize/resume?req%3Dr1" in html


def test_an_id_token_for_another_client_is_refused(ours, upstream):
    our_client_id = configure(ours, upstream)
    other_id, other_secret = make_client(upstream.app, redirect_uris=[REDIRECT])
    citizen = upstream.citizen(level=2)
    verifier, challenge = pkce_pair()
    url = upstream.url + "/oauth2/authorize?" + urlencode({
        "response_type": "code", "client_id": other_id, "redirect_uri": REDIRECT, "scope": "openid",
        "state": "s", "nonce": "n-1", "code_challenge": challenge, "code_challenge_method": "S256"})
    location = upstream_login(requests.Session(), url, stop_at=REDIRECT, citizen=citizen)
    token = requests.post(upstream.url + "/oauth2/token", auth=(other_id, other_secret), timeout=10, data={
        "grant_type": "authorization_code", "code": parse_qs(urlsplit(location).query)["code"][0],
        "redirect_uri": REDIRECT, "code_verifier": verifier}).json()
    keys = JwksCache(slug="up", jwks_uri=upstream.url + "/oauth2/jwks", store=DictStore(), timeout=5)
    # Signed by the upstream, fresh, right nonce: but for another client.
    with pytest.raises(TokenError) as info:
        validate_id_token(token["id_token"], issuer=upstream.url, client_id=our_client_id, nonce="n-1",
                          keys=keys, now=time.time())
    assert info.value.reason == "wrong_audience"
    assert validate_id_token(token["id_token"], issuer=upstream.url, client_id=other_id, nonce="n-1",
                             keys=keys, now=time.time())["sub"]


# --- resilience ---------------------------------------------------------------------------------

def static_provider(app, base: str, *, stale: bool = False, slug="up"):
    meta = {"issuer": base, "authorization_endpoint": base + "/auth", "token_endpoint": base + "/token",
            "jwks_uri": base + "/jwks", "userinfo_endpoint": base + "/userinfo"}
    with app.app_context():
        provider = services.add_provider(slug=slug, issuer=base, metadata=meta, client_id="tinh", client_secret="s",
                                         scopes="openid profile", claim_mapping=CLAIM_MAP,
                                         acr_mapping=ACR_VERIFIED, display_name=NAME, config=app.config,
                                         now=utcnow())
        if stale:
            provider.metadata_fetched_at = utcnow() - services.timedelta(days=2)
            db.session.commit()


def test_an_unreachable_upstream_gets_a_clear_page_and_the_local_login_stays(ours):
    static_provider(ours, closed_port_url("").rstrip("/"), stale=True)
    make_citizen(ours)
    client = ours.test_client()
    resp = client.get("/federation/up/start?next=/oauth2/authorize/resume%3Freq%3Dr2")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 503 and shows(html, "cannot be reached at the moment")
    assert "/login?next=/oauth2/authorize/resume?req%3Dr2" in html
    assert client.get("/login").status_code == 200
    log_in(client)
    assert logged_in(client)
    assert count(ours, UpstreamLink) == 0 and count(ours, Identity) == 1


def callback_for(client, location: str, code="a-code") -> str:
    state = parse_qs(urlsplit(location).query)["state"][0]
    return "/federation/up/callback?" + urlencode({"state": state, "code": code})


def test_an_upstream_going_down_mid_login_creates_nothing(ours):
    static_provider(ours, closed_port_url("").rstrip("/"))  # fresh metadata: no refetch at start
    client = ours.test_client()
    location = start(client)
    resp = client.get(callback_for(client, location))
    assert resp.status_code == 503 and shows(resp.get_data(as_text=True), "cannot be reached")
    assert not logged_in(client)
    assert count(ours, Identity) == 0 and count(ours, UpstreamLink) == 0


@pytest.mark.parametrize("step", [Step(status=200, delay=10), Step(status=200, drip=0.2, drip_for=10)])
def test_a_slow_upstream_is_cut_off_by_the_timeout(make_app, step):
    app = make_app(ISSUER=OURS, FEDERATION_TIMEOUT=1.0)
    with Receiver() as slow:
        slow.script("/token", step)
        static_provider(app, slow.base)
        client = app.test_client()
        location = start(client)
        began = time.monotonic()
        resp = client.get(callback_for(client, location))
        took = time.monotonic() - began
    assert resp.status_code == 503, resp.get_data(as_text=True)[:300]
    assert took < 4, took
    assert count(app, Identity) == 0


# --- the account console ------------------------------------------------------------------------

def test_link_from_the_console_then_unlink(ours, upstream):
    configure(ours, upstream)
    citizen = upstream.citizen(level=2)
    mine = make_citizen(ours, personal_number=citizen["number"], phone="0912000001", email="me@example.vn")
    client = ours.test_client()
    log_in(client, login=citizen["number"])
    page = client.get("/account/federation")
    assert page.status_code == 200 and NAME in page.get_data(as_text=True)
    resp = client.post("/account/federation/up/link", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 302 and resp.headers["Location"].startswith(upstream.url)
    callback = upstream_login(requests.Session(), resp.headers["Location"], stop_at=CALLBACK, citizen=citizen)
    done = client.get(local(callback))
    assert done.status_code == 302 and done.headers["Location"].endswith("/account/federation")
    with ours.app_context():
        [link] = services.links_of(mine)
        link_id = link.id
        assert get_identity(mine).assurance_level == 2
    html = client.get("/account/federation").get_data(as_text=True)
    assert shows(html, "is now linked") and shows(html, "Remove this link")
    # A password remains: the link can go.
    gone = submit(client, f"/account/federation/links/{link_id}/unlink", {}, form_url="/account/federation")
    assert gone.status_code == 302
    assert count(ours, UpstreamLink) == 0


def test_the_only_way_to_log_in_cannot_be_unlinked(ours, upstream):
    configure(ours, upstream)
    citizen = upstream.citizen(level=2)
    client = ours.test_client()
    client.get(local(through_upstream(client, upstream, citizen)))
    html = client.get("/account/federation").get_data(as_text=True)
    assert shows(html, "cannot be removed") and not shows(html, "Remove this link")
    with ours.app_context():
        link_id = db.session.scalar(select(UpstreamLink.id))
    resp = submit(client, f"/account/federation/links/{link_id}/unlink", {}, form_url="/account")
    assert resp.status_code == 302
    assert shows(client.get("/account/federation").get_data(as_text=True), "only way to log in")
    assert count(ours, UpstreamLink) == 1
