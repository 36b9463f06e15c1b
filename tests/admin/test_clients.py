"""Relying parties in the console: register, edit, rotate, disable and enable; usage."""

from __future__ import annotations

import re

from idp.clients import services as client_services
from idp.extensions import db
from tests.admin.conftest import audit_actions, log_in, make_person, post
from tests.support.forms import submit
from tests.support.oidc import code_flow_tokens

FORM = {
    "name": "Cổng dịch vụ công tỉnh",
    "agency": "Văn phòng UBND tỉnh",
    "client_type": "confidential",
    "auth_method": "",
    "redirect_uris": "http://127.0.0.1:9000/cb\r\n",
    "post_logout_redirect_uris": "",
    "backchannel_logout_uri": "",
    "grant_types": ["authorization_code", "refresh_token"],
    "scopes": ["openid", "profile", "email"],
    "require_pkce": "y",
    "subject_type": "public",
    "sector_identifier": "",
    "min_acr": "",
    "id_token_signed_response_alg": "RS256",
    "jwks_uri": "",
    "jwks": "",
    "access_token_lifetime": "600",
    "id_token_lifetime": "600",
    "refresh_token_lifetime": "86400",
    "refresh_token_idle": "43200",
}


def _secret(html: str) -> str:
    return re.search(r'<code id="client-secret"[^>]*>([^<]+)</code>', html).group(1)


def _client_id(html: str) -> str:
    return re.search(r'<code id="client-id">([^<]+)</code>', html).group(1)


def test_register_edit_rotate_disable_enable(app, officer_client):
    browser, manager = officer_client("client_manager")
    bad = submit(browser, "/admin/clients/new", {**FORM, "redirect_uris": "http://example.com/cb"})
    assert bad.status_code == 400  # plain http to a non-loopback host

    created = submit(browser, "/admin/clients/new", FORM)
    assert created.status_code == 200
    html = created.get_data(as_text=True)
    client_id, secret = _client_id(html), _secret(html)
    assert created.headers["Cache-Control"] == "no-store"
    with app.app_context():
        record = client_services.get_client(client_id)
        assert client_services.check_secret(record, secret, app.config)
        assert record.scopes == ["openid", "profile", "email"]
    page = browser.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert secret not in page  # shown once only

    edited = submit(browser, f"/admin/clients/{client_id}/edit", {**FORM, "name": "Cổng mới", "scopes": ["openid"]})
    assert edited.status_code == 302, edited.get_data(as_text=True)[:2000]
    with app.app_context():
        record = client_services.get_client(client_id)
        assert (record.name, record.scopes) == ("Cổng mới", ["openid"])

    rotated = post(browser, f"/admin/clients/{client_id}/rotate")
    assert rotated.status_code == 200
    new_secret = _secret(rotated.get_data(as_text=True))
    with app.app_context():
        record = client_services.get_client(client_id)
        assert client_services.check_secret(record, new_secret, app.config)
        assert not client_services.check_secret(record, secret, app.config)

    assert post(browser, f"/admin/clients/{client_id}/disable", {"reason": ""}).status_code == 400
    assert post(browser, f"/admin/clients/{client_id}/disable", {"reason": "Hết hạn thỏa thuận"}).status_code == 302
    with app.app_context():
        assert not client_services.get_client(client_id).active
    assert post(browser, f"/admin/clients/{client_id}/enable", {}).status_code == 302
    with app.app_context():
        assert client_services.get_client(client_id).active

    actions = [(a[0], a[2]) for a in audit_actions(app, actor=str(manager))]
    for action in ("client.created", "client.updated", "client.secret_rotated", "client.disabled", "client.enabled"):
        assert (action, client_id) in actions
    updated = next(a for a in audit_actions(app, action_prefix="client.updated"))
    assert updated[3]["fields"] == ["name", "scopes"]
    assert audit_actions(app, action_prefix="client.disabled")[0][3]["reason"] == "Hết hạn thỏa thuận"


def test_recent_usage_is_shown(app, officer_client):
    browser, _ = officer_client("client_manager")
    created = submit(browser, "/admin/clients/new", FORM)
    client_id, secret = _client_id(created.get_data(as_text=True)), _secret(created.get_data(as_text=True))
    make_person(app, "001099012345")
    person = app.test_client()
    log_in(person, "001099012345")
    code_flow_tokens(person, client_id, secret)
    code_flow_tokens(person, client_id, secret)
    listing = browser.get("/admin/clients").get_data(as_text=True)
    row = listing[listing.index(client_id):]
    assert re.search(r"<td>2</td>\s*<td>2</td>", row), row[:600]
    page = browser.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert "<svg" in page
    with app.app_context():
        db.session.remove()
