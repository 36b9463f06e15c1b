"""The per-process client cache: a change made by any process is seen on the next request."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from idp.clients import cache, services
from idp.extensions import db
from idp.timeutil import utcnow
from tests.support.oidc import make_client, token_post


def _grant(client, client_id, secret):
    return token_post(client, {"grant_type": "client_credentials", "scope": "profile"},
                      client_id=client_id, secret=secret)


@pytest.fixture
def two(make_app):
    """Two provider instances on the same database and store, as two workers would be."""
    return make_app(), make_app()


def test_disabling_in_one_process_is_refused_by_the_other_at_once(two):
    a, b = two
    client_id, secret = make_client(a, grant_types=["client_credentials"], redirect_uris=[], scopes=["profile"])
    at_a = a.test_client()
    assert _grant(at_a, client_id, secret).status_code == 200  # cached in a
    with b.app_context():
        services.disable_client(services.get_client(client_id), now=utcnow())
    resp = _grant(at_a, client_id, secret)
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"
    with b.app_context():
        services.enable_client(services.get_client(client_id), now=utcnow())
    assert _grant(at_a, client_id, secret).status_code == 200


def test_a_rotated_secret_is_refused_by_the_other_process_at_once(two):
    a, b = two
    client_id, old = make_client(a, grant_types=["client_credentials"], redirect_uris=[], scopes=["profile"])
    at_a = a.test_client()
    assert _grant(at_a, client_id, old).status_code == 200
    with b.app_context():
        new = services.rotate_secret(services.get_client(client_id), config=b.config, now=utcnow())
    assert _grant(at_a, client_id, old).status_code == 401
    assert _grant(at_a, client_id, new).status_code == 200


def test_an_unknown_id_becomes_known_once_registered_elsewhere(two):
    a, b = two
    at_a = a.test_client()
    assert _grant(at_a, "later-client", "x").status_code == 401  # the miss is cached too
    client_id, secret = make_client(b, client_id="later-client", grant_types=["client_credentials"],
                                    redirect_uris=[], scopes=["profile"])
    assert _grant(at_a, client_id, secret).status_code == 200


def test_repeated_requests_read_the_client_row_once(app):
    client_id, secret = make_client(app, grant_types=["client_credentials"], redirect_uris=[], scopes=["profile"])
    http = app.test_client()
    assert _grant(http, client_id, secret).status_code == 200
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        for _ in range(3):
            assert _grant(http, client_id, secret).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert not [s for s in statements if "FROM clients" in s]


def test_an_emptied_store_never_revives_an_old_snapshot(app):
    client_id, secret = make_client(app, grant_types=["client_credentials"], redirect_uris=[], scopes=["profile"])
    http = app.test_client()
    assert _grant(http, client_id, secret).status_code == 200
    with app.app_context():
        from idp.store import get_store

        get_store().delete(cache.VERSION_KEY)  # as after a Redis restart
        services.get_client(client_id).secret_digest = None  # a change the version never heard of
        db.session.commit()
    # A new random version token: the cached snapshot no longer matches, the row is read again.
    assert _grant(http, client_id, secret).status_code == 401


def test_snapshots_are_read_only(app_ctx):
    client_id, _ = make_client(app_ctx)
    snapshot = cache.lookup(client_id)
    assert snapshot.client_id == client_id and snapshot.active
    with pytest.raises(AttributeError):
        snapshot.status = "disabled"
    with pytest.raises(AttributeError):
        snapshot.redirect_uris.append("https://evil.example/cb")
