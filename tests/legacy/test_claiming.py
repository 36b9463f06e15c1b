"""Old accounts proven by their old password: creating the unified identity, claiming from the
console, the officer queue on disagreement, and the legacy claim reaching only its own system."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select

from idp.accounts.models import PasswordCredential
from idp.extensions import db
from idp.identity.models import Identity
from idp.legacy import services
from idp.legacy.models import LegacyAccount, LegacySystem
from tests.support.forms import csrf_from, submit
from tests.support.oidc import exchange, get_code, log_in, make_citizen, make_client

NOW = datetime(2026, 11, 28, 9, 0, 0)
OLD_PASSWORD = "matkhaucu2015"
NEW_PASSWORD = "một buổi sáng mùa thu ở hà nội"


def _legacy(app, *, client_id=None, slug="portal", legacy_user_id="u-1001", personal_number="001099012345",
            full_name="Nguyễn Văn An", birth_date=date(1999, 5, 14)):
    with app.app_context():
        system = services.get_system(slug) or services.create_system(
            slug=slug, name="Cổng dịch vụ công cũ", agency="Văn phòng UBND tỉnh", hash_scheme="md5_hex",
            client_id=client_id, now=NOW,
        )
        account = LegacyAccount(
            system_id=system.id, legacy_user_id=legacy_user_id, username="an.nguyen", username_key="an.nguyen",
            password_hash=hashlib.md5(OLD_PASSWORD.encode()).hexdigest(),  # noqa: S324 (an old system's hash)
            hash_scheme="md5_hex", personal_number=personal_number, full_name=full_name, birth_date=birth_date,
            gender="male", raw={}, link_state="unlinked", import_run="t", source_line=1, imported_at=NOW,
            updated_at=NOW,
        )
        db.session.add(account)
        db.session.commit()
        return account.id


def _account(app, account_id):
    with app.app_context():
        row = db.session.get(LegacyAccount, account_id)
        db.session.expunge(row)
        return row


def _legacy_login(client, password=OLD_PASSWORD, username="an.nguyen"):
    return submit(client, "/legacy/login", {"system": "portal", "username": username, "password": password})


COMPLETE = {
    "personal_number": "001099012345", "full_name": "Nguyễn Văn An", "birth_date": "1999-05-14",
    "gender": "male", "phone": "0912345678", "email": "", "password": NEW_PASSWORD,
}


def test_old_account_creates_the_unified_identity(app, client):
    account_id = _legacy(app)
    resp = _legacy_login(client)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/legacy/complete")
    page = client.get("/legacy/complete").get_data(as_text=True)
    assert 'value="Nguyễn Văn An"' in page  # prefilled from the old account
    done = submit(client, "/legacy/complete", COMPLETE)
    assert done.status_code == 302, done.get_data(as_text=True)
    account = _account(app, account_id)
    assert account.link_state == "claimed" and account.linked_by == "claim"
    assert account.password_hash is None and account.salt is None  # the legacy hash is gone
    with app.app_context():
        identity = db.session.scalar(select(Identity))
        assert account.identity_id == identity.id
        assert db.session.get(PasswordCredential, identity.id).hash.startswith("$argon2id$")
    assert client.get("/account/legacy").status_code == 200  # logged in
    assert "u-1001" in client.get("/account/legacy").get_data(as_text=True)
    # The old password no longer logs in; the unified account does.
    again = app.test_client()
    assert _legacy_login(again).status_code == 401
    log_in(app.test_client(), "001099012345", NEW_PASSWORD)


def test_wrong_old_password_is_refused_and_throttled(make_app):
    app = make_app(LOGIN_THROTTLE_PER_ACCOUNT=3, LOGIN_DELAY_AFTER=1000)
    _legacy(app)
    client = app.test_client()
    for _ in range(3):
        resp = _legacy_login(client, password="không phải")
        assert resp.status_code == 401
        assert "không đúng" in resp.get_data(as_text=True)
    assert _legacy_login(client).status_code == 429  # throttled even with the right password


def test_unknown_username_answers_like_a_wrong_password(app, client):
    _legacy(app)
    a = _legacy_login(client, password="không phải")
    b = _legacy_login(client, username="nobody")
    assert a.status_code == b.status_code == 401


def test_details_must_agree_with_the_old_account(app, client):
    _legacy(app)
    _legacy_login(client)
    resp = submit(client, "/legacy/complete", {**COMPLETE, "full_name": "Trần Văn Bình"})
    assert resp.status_code == 400
    assert 'id="full_name-error"' in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Identity)) == 0


def test_existing_identity_must_log_in_first(app, client):
    identity_id = make_citizen(app)
    account_id = _legacy(app)
    _legacy_login(client)
    resp = submit(client, "/legacy/complete", COMPLETE)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    log_in(client)
    done = client.get("/legacy/complete")
    assert done.status_code == 302
    assert _account(app, account_id).identity_id == identity_id


def test_claim_from_the_console(app, client):
    identity_id = make_citizen(app)
    account_id = _legacy(app)
    log_in(client)
    wrong = submit(client, "/account/legacy", {"system": "portal", "username": "an.nguyen", "password": "sai"})
    assert wrong.status_code == 401
    ok = submit(client, "/account/legacy", {"system": "portal", "username": "an.nguyen", "password": OLD_PASSWORD})
    assert ok.status_code == 302
    account = _account(app, account_id)
    assert account.identity_id == identity_id and account.link_state == "claimed"
    assert account.password_hash is None


def test_claim_with_disagreeing_birth_date_goes_to_the_officers(app, client):
    identity_id = make_citizen(app)
    account_id = _legacy(app, birth_date=date(1998, 1, 1))
    log_in(client)
    resp = submit(client, "/account/legacy", {"system": "portal", "username": "an.nguyen", "password": OLD_PASSWORD})
    assert resp.status_code == 400
    account = _account(app, account_id)
    assert account.link_state == "conflict" and account.candidate_identity_id == identity_id
    assert account.identity_id is None and account.password_hash is not None


@pytest.mark.parametrize("own_system", [True, False])
def test_legacy_claim_reaches_only_its_own_system(app, client, own_system):
    portal_id, portal_secret = make_client(app, scopes=["openid", "profile", "legacy"])
    other_id, other_secret = make_client(app, name="Hệ thống khác", scopes=["openid", "profile", "legacy"])
    identity_id = make_citizen(app)
    account_id = _legacy(app, client_id=portal_id)
    with app.app_context():
        row = db.session.get(LegacyAccount, account_id)
        services.link(row, identity_id, by="auto", now=NOW, state="auto_linked")
        db.session.commit()
        assert db.session.scalar(select(LegacySystem.client_id)) == portal_id
    log_in(client)
    client_id, secret = (portal_id, portal_secret) if own_system else (other_id, other_secret)
    code, verifier, _ = get_code(client, client_id, scope="openid profile legacy")
    body = exchange(client, client_id, secret, code, verifier).get_json()
    jwks = KeySet.import_key_set(client.get("/oauth2/jwks").get_json())
    claims = jwt.decode(body["id_token"], jwks, algorithms=["RS256"]).claims
    info = client.get("/oauth2/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}).get_json()
    expected = [{"system": "portal", "user_id": "u-1001"}]
    if own_system:
        assert claims["legacy_accounts"] == expected and info["legacy_accounts"] == expected
    else:
        assert "legacy_accounts" not in claims and "legacy_accounts" not in info


def test_csrf_protects_the_old_account_forms(app, client):
    _legacy(app)
    resp = client.post("/legacy/login", data={"system": "portal", "username": "an.nguyen", "password": OLD_PASSWORD})
    assert resp.status_code == 400
    assert csrf_from(client.get("/legacy/login").get_data(as_text=True))
