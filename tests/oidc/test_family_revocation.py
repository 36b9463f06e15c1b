"""Revoking a refresh-token family also ends the access tokens issued with it (claim fid)."""

from __future__ import annotations

from idp.extensions import db
from idp.oidc import tokens as token_service
from idp.store import get_store
from idp.timeutil import utcnow
from tests.support.forms import csrf_from
from tests.support.oidc import (
    bearer,
    code_flow_tokens,
    decode_jwt,
    introspect,
    log_in,
    make_citizen,
    make_client,
    refresh,
    revoke,
)


def _works(client, access_token) -> bool:
    return client.get("/oauth2/userinfo", headers=bearer(access_token)).status_code == 200


def _flow(app, client, **client_fields):
    client_id, secret = make_client(app, **client_fields)
    make_citizen(app)
    log_in(client)
    return client_id, secret, code_flow_tokens(client, client_id, secret)


def test_access_tokens_name_their_family_and_keep_it_across_rotations(app, client):
    client_id, secret, first = _flow(app, client)
    second = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    fid = decode_jwt(client, first["access_token"]).claims["fid"]
    assert decode_jwt(client, second["access_token"]).claims["fid"] == fid
    from sqlalchemy import select

    from idp.oidc.models import RefreshToken

    with app.app_context():
        assert {row.family_id for row in db.session.scalars(select(RefreshToken))} == {fid}


def test_no_family_without_refresh_tokens(app, client):
    client_id, secret, first = _flow(app, client, grant_types=["authorization_code"])
    assert "refresh_token" not in first
    assert "fid" not in decode_jwt(client, first["access_token"]).claims
    assert _works(client, first["access_token"])


def test_reuse_of_a_rotated_token_ends_every_access_token_of_the_family(app, client):
    client_id, secret, first = _flow(app, client)
    second = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    assert _works(client, first["access_token"]) and _works(client, second["access_token"])
    assert refresh(client, client_id, secret, first["refresh_token"]).status_code == 400  # reuse
    assert not _works(client, first["access_token"])
    assert not _works(client, second["access_token"])
    assert introspect(client, client_id, secret, second["access_token"]).get_json() == {"active": False}


def test_a_client_revoking_its_refresh_token_ends_the_access_tokens_too(app, client):
    client_id, secret, first = _flow(app, client)
    assert revoke(client, client_id, secret, first["refresh_token"]).status_code == 200
    assert not _works(client, first["access_token"])


def test_withdrawing_consent_ends_the_access_tokens_at_once(app, client):
    client_id, secret, first = _flow(app, client)
    other_id, other_secret = make_client(app, name="Hệ thống khác")
    other = code_flow_tokens(client, other_id, other_secret)
    html = client.get("/account/connections").get_data(as_text=True)
    resp = client.post(f"/account/connections/{client_id}/withdraw", data={"csrf_token": csrf_from(html)})
    assert resp.status_code == 302
    assert not _works(client, first["access_token"])
    assert _works(client, other["access_token"])  # another system's grant is untouched


def test_a_revocation_rolled_back_denies_nothing(app_ctx):
    store = get_store()
    token_service.revoke_family("fam-rolled-back", now=utcnow(), reason="test")
    db.session.rollback()
    assert store.get("deny:family:fam-rolled-back") is None
    token_service.revoke_family("fam-committed", now=utcnow(), reason="test")
    assert store.get("deny:family:fam-committed") is None  # not before the commit
    db.session.commit()
    assert store.get("deny:family:fam-committed") == "1"
    assert 0 < store.ttl("deny:family:fam-committed") <= token_service.FAMILY_DENY_TTL
