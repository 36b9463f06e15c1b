"""Levels of assurance (issue #4): acr_values and a client's minimum, step-up with the second
factor, the refusal for an unverified identity, and acr/amr true to what happened."""

from __future__ import annotations

import html as html_lib
import re
from urllib.parse import urlsplit

import pytest

from idp.extensions import db
from idp.identity.models import Identity
from tests.accounts.test_factors import enrol_totp_service, enrol_totp_ui, log_in_two_factors
from tests.support.forms import submit
from tests.support.oidc import (
    REDIRECT,
    approve_consent,
    authorize_url,
    decode_jwt,
    exchange,
    log_in,
    make_citizen,
    make_client,
    pkce_pair,
    query_of,
)

LOW = "urn:eid:loa:low"
SUBSTANTIAL = "urn:eid:loa:substantial"
HIGH = "urn:eid:loa:high"


def set_level(app, identity_id, level: int) -> None:
    with app.app_context():
        db.session.get(Identity, identity_id).assurance_level = level
        db.session.commit()


def run_flow(client, resp, *, code=None, visited=None):
    """Follow the provider's redirects (second factor and consent as asked) up to the RP."""
    for _ in range(12):
        if resp.status_code == 302:
            location = resp.headers["Location"]
            if location.startswith(REDIRECT):
                return location
            path = urlsplit(location).path
            if visited is not None:
                visited.append(path)
            if path == "/login/second-factor":
                assert code is not None, "a second factor was asked for"
                resp = submit(client, "/login/second-factor", {"code": code()})
                continue
            resp = client.get(location)
        elif resp.status_code == 200 and 'name="decision"' in resp.get_data(as_text=True):
            resp = approve_consent(client, resp)
        else:
            raise AssertionError(f"unexpected {resp.status_code}: {resp.get_data(as_text=True)[:400]}")
    raise AssertionError("too many steps")


def id_token_after(client, client_id, secret, *, code=None, visited=None, **extra):
    verifier, challenge = pkce_pair()
    resp = client.get(authorize_url(client_id, challenge=challenge, **extra))
    location = run_flow(client, resp, code=code, visited=visited)
    query = query_of(location)
    assert "code" in query, query
    tokens = exchange(client, client_id, secret, query["code"], verifier)
    assert tokens.status_code == 200, tokens.get_json()
    return decode_jwt(client, tokens.get_json()["id_token"]).claims


@pytest.fixture
def verified(app):
    identity_id = make_citizen(app)
    set_level(app, identity_id, 2)
    return identity_id


# --- step-up -------------------------------------------------------------------------------

def test_step_up_with_acr_values(app, client, verified):
    client_id, secret = make_client(app)
    log_in(client)
    # The app is set up after the login: this session has the password only.
    codes, _ = enrol_totp_ui(client)
    low = id_token_after(client, client_id, secret)
    assert low["acr"] == LOW and low["amr"] == ["pwd"]

    visited = []
    claims = id_token_after(client, client_id, secret, code=codes.fresh, visited=visited,
                            acr_values=SUBSTANTIAL, state="st-2")
    assert "/login/step-up" in visited and "/login/second-factor" in visited
    assert claims["acr"] == SUBSTANTIAL
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
    # The same SSO session, stepped up: the systems sharing it keep their sid.
    assert claims["sid"] == low["sid"] and claims["auth_time"] >= low["auth_time"]
    # Now the session is strong enough: no second factor asked again.
    again = id_token_after(client, client_id, secret, acr_values=SUBSTANTIAL)
    assert again["acr"] == SUBSTANTIAL


def test_step_up_for_a_client_registered_with_a_minimum(app, client, verified):
    client_id, secret = make_client(app, min_acr=SUBSTANTIAL)
    log_in(client)
    codes, _ = enrol_totp_ui(client)
    visited = []
    # Even when the request asks for less, the registration's minimum holds.
    claims = id_token_after(client, client_id, secret, code=codes.fresh, visited=visited, acr_values=LOW)
    assert "/login/second-factor" in visited
    assert claims["acr"] == SUBSTANTIAL and {"pwd", "otp", "mfa"} <= set(claims["amr"])


def test_step_up_without_an_app_sends_to_set_one_up(app, client, verified):
    client_id, _ = make_client(app)
    log_in(client)
    resp = client.get(authorize_url(client_id, challenge=pkce_pair()[1], acr_values=SUBSTANTIAL))
    assert urlsplit(resp.headers["Location"]).path == "/login/step-up"
    resp = client.get(resp.headers["Location"])
    assert urlsplit(resp.headers["Location"]).path == "/account/security/totp"


def test_full_two_factor_login_of_a_verified_identity_is_substantial(app, verified):
    codes = enrol_totp_service(app, verified)
    client_id, secret = make_client(app)
    client = app.test_client()
    assert log_in_two_factors(client, codes.fresh()).status_code == 302
    claims = id_token_after(client, client_id, secret)
    assert claims["acr"] == SUBSTANTIAL and set(claims["amr"]) == {"pwd", "otp", "mfa"}


# --- refusals ------------------------------------------------------------------------------

def test_unverified_identity_gets_the_refusal_page(app, client):
    make_citizen(app)  # level 1
    client_id, _ = make_client(app)
    log_in(client)
    resp = client.get(authorize_url(client_id, challenge=pkce_pair()[1], acr_values=SUBSTANTIAL, state="xyz"))
    assert resp.status_code == 403
    page = resp.get_data(as_text=True)
    assert 'lang="vi"' in page and "một cửa" in page
    link = html_lib.unescape(re.search(r'<a class="button[^"]*" href="([^"]+)"', page).group(1))
    assert link.startswith(REDIRECT)
    query = query_of(link)
    assert query == {"error": "unmet_authentication_requirements", "state": "xyz", "iss": app.config["ISSUER"]}
    # The same for a client whose registration asks for it.
    strict_id, _ = make_client(app, min_acr=SUBSTANTIAL)
    assert client.get(authorize_url(strict_id, challenge=pkce_pair()[1])).status_code == 403


def test_unverified_identity_with_two_factors_is_still_low(app):
    identity_id = make_citizen(app)  # level 1
    codes = enrol_totp_service(app, identity_id)
    client_id, secret = make_client(app)
    client = app.test_client()
    assert log_in_two_factors(client, codes.fresh()).status_code == 302
    claims = id_token_after(client, client_id, secret)
    assert claims["acr"] == LOW
    assert "mfa" in claims["amr"] and "otp" in claims["amr"]
    # Asked for substantial, it is refused rather than reported as reached.
    resp = client.get(authorize_url(client_id, challenge=pkce_pair()[1], acr_values=SUBSTANTIAL))
    assert resp.status_code == 403


def test_high_is_never_reported(app, verified):
    codes = enrol_totp_service(app, verified)
    client_id, secret = make_client(app)
    client = app.test_client()
    log_in_two_factors(client, codes.fresh())
    resp = client.get(authorize_url(client_id, challenge=pkce_pair()[1], acr_values=HIGH, state="h"))
    assert resp.status_code == 302
    query = query_of(resp.headers["Location"])
    assert resp.headers["Location"].startswith(REDIRECT)
    assert query["error"] == "unmet_authentication_requirements" and query["state"] == "h"
    assert query["iss"] == app.config["ISSUER"] and "code" not in query
    # A list of acceptable values is satisfied by the weakest one the session reaches.
    claims = id_token_after(client, client_id, secret, acr_values=f"{HIGH} {SUBSTANTIAL}")
    assert claims["acr"] == SUBSTANTIAL


def test_prompt_none_needing_step_up_is_interaction_required(app, client, verified):
    client_id, _ = make_client(app)
    log_in(client)
    enrol_totp_ui(client)
    resp = client.get(authorize_url(client_id, challenge=pkce_pair()[1], acr_values=SUBSTANTIAL,
                                    prompt="none", state="pn"))
    assert resp.status_code == 302 and resp.headers["Location"].startswith(REDIRECT)
    query = query_of(resp.headers["Location"])
    assert query["error"] == "interaction_required" and query["state"] == "pn" and "code" not in query


def test_unknown_acr_values_are_ignored(app, client, verified):
    client_id, secret = make_client(app)
    log_in(client)
    claims = id_token_after(client, client_id, secret, acr_values="urn:example:gold")
    assert claims["acr"] == LOW and claims["amr"] == ["pwd"]


# --- discovery and truthful claims ---------------------------------------------------------

def test_discovery_lists_only_reachable_levels(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["acr_values_supported"] == [LOW, SUBSTANTIAL]
    assert {"acr", "amr", "auth_time"} <= set(meta["claims_supported"])


def test_password_only_login_is_low_with_pwd(app, client, verified):
    client_id, secret = make_client(app)
    log_in(client)
    claims = id_token_after(client, client_id, secret)
    assert claims["acr"] == LOW and claims["amr"] == ["pwd"] and "auth_time" in claims
