"""The citizen's connected systems: consents listed, withdrawal revokes and notifies."""

from __future__ import annotations

from sqlalchemy import select

from idp.extensions import db
from idp.oidc.models import Consent, LogoutDelivery
from tests.support.forms import csrf_from
from tests.support.oidc import basic, exchange, get_code, log_in, make_citizen, make_client


def test_consent_listed_and_withdrawn(app, client):
    client_id, secret = make_client(app, backchannel_logout_uri="http://127.0.0.1:9000/bcl")
    make_citizen(app)
    log_in(client)
    code, verifier, _ = get_code(client, client_id, scope="openid profile email")
    tokens = exchange(client, client_id, secret, code, verifier).get_json()

    page = client.get("/account/connections")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Cổng dịch vụ công" in html and "Văn phòng UBND tỉnh" in html
    assert "thư điện tử" in html  # the e-mail scope, described in Vietnamese

    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert consent.scopes == ["email", "openid", "profile"]
        assert consent.notice_version == app.config["CONSENT_NOTICE_VERSION"]
        assert "email" in consent.claims

    resp = client.post(f"/account/connections/{client_id}/withdraw", data={"csrf_token": csrf_from(html)})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Consent)).withdrawn_at is not None
        delivery = db.session.scalar(select(LogoutDelivery))
        assert delivery.client_id == client_id and delivery.uri.endswith("/bcl")
    refreshed = client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic(client_id, secret),
    )
    assert refreshed.get_json()["error"] == "invalid_grant"
    after = client.get("/account/connections").get_data(as_text=True)
    assert "không còn nhận thông tin" in after  # the confirmation
    assert f"/account/connections/{client_id}/withdraw" not in after
    # The next authorization asks again.
    from tests.support.oidc import authorize_url, pkce_pair

    again = client.get(authorize_url(client_id, challenge=pkce_pair()[1], scope="openid profile email"))
    assert again.status_code == 200 and 'name="decision"' in again.get_data(as_text=True)


def test_withdraw_requires_login_and_csrf(app, client):
    client_id, _ = make_client(app)
    token = csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post(f"/account/connections/{client_id}/withdraw", data={"csrf_token": token})
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    make_citizen(app)
    log_in(client)
    assert client.post(f"/account/connections/{client_id}/withdraw").status_code == 400
