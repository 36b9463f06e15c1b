"""Failing closed when the store is unreachable; durability and purge of the embedded store."""

from __future__ import annotations

import socket
import time

import pytest
import sqlalchemy as sa

from idp import create_app
from idp.extensions import db
from idp.store import StoreUnavailable, sql_store
from idp.store.redis_store import RedisStore
from idp.store.sql_store import SqlStore

TIMEOUT = 0.5


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dead_redis_url():
    return f"redis://127.0.0.1:{_closed_port()}/0"


def test_redis_unreachable_raises_store_unavailable(dead_redis_url):
    store = RedisStore.from_url(dead_redis_url, prefix="idptest:dead:", timeout=TIMEOUT)
    calls = {
        "ping": lambda: store.ping(),
        "get": lambda: store.get("k"),
        "set": lambda: store.set("k", "v", 60),
        "set_if_absent": lambda: store.set_if_absent("k", "v", 60),
        "take": lambda: store.take("k"),
        "incr": lambda: store.incr("k", 60),
        "ttl": lambda: store.ttl("k"),
        "delete": lambda: store.delete("k"),
        "set_add": lambda: store.set_add("s", "m", 60),
        "set_remove": lambda: store.set_remove("s", "m"),
        "set_members": lambda: store.set_members("s"),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            call()
        # Refused connections fail at once; never more than a few timeouts (client retries).
        assert time.monotonic() - started < 4 * TIMEOUT, name


def _dead_store_app(base_config, **overrides):
    return create_app({**base_config, "REDIS_TIMEOUT": TIMEOUT, **overrides})


def test_unreachable_redis_gives_503_not_500(base_config, dead_redis_url):
    app = _dead_store_app(base_config, REDIS_URL=dead_redis_url)
    client = app.test_client()
    # Without a session cookie GET /login need not touch the store; with one it must.
    client.set_cookie("idp_sid", "anything")
    started = time.monotonic()
    resp = client.get("/login")
    assert time.monotonic() - started < 4 * TIMEOUT
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "30"
    # The store-unavailable page, in English when asked, not the generic error page.
    resp = client.get("/login?ui_locales=en")
    assert resp.status_code == 503
    assert b"temporarily unavailable" in resp.data

    resp = client.get("/login", headers={"Accept": "application/json"})
    assert resp.status_code == 503
    assert resp.get_json()["error"] == "temporarily_unavailable"


def test_unreachable_embedded_store_gives_503(base_config, tmp_path):
    # A database file in a directory that does not exist cannot be opened.
    url = f"sqlite:///{tmp_path / 'missing' / 'idp.sqlite3'}"
    app = _dead_store_app(base_config, REDIS_URL="", DATABASE_URL=url)
    store = app.extensions["idp_store"]
    assert isinstance(store, SqlStore)
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.get("k")
    client = app.test_client()
    client.set_cookie("idp_sid", "anything")
    assert client.get("/login").status_code == 503
    with app.app_context():
        db.engine.dispose()


def test_embedded_store_survives_restart(make_app):
    first = make_app(REDIS_URL="")
    store = first.extensions["idp_store"]
    assert isinstance(store, SqlStore)
    store.set("v", "kept", 600)
    store.incr("c", 600)
    store.incr("c", 600)
    store.set_add("s", "a", 600)
    store.set_if_absent("once", "x", 600)
    with first.app_context():
        db.engine.dispose()

    # A new app (as after a restart) has its own engine on the same database.
    second = make_app(REDIS_URL="")
    again = second.extensions["idp_store"]
    assert again is not store and again.engine is not store.engine
    assert again.get("v") == "kept"
    assert again.incr("c", 600) == 3
    assert again.set_members("s") == {"a"}
    assert again.set_if_absent("once", "y", 600) is False
    assert again.take("v") == "kept"
    assert store.get("v") is None


def _rows(app, table, prefix):
    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.key.startswith(prefix))
        ).scalar_one()


def test_purge_deletes_expired_rows(make_app, base_config):
    app = make_app(REDIS_URL="")
    prefix = base_config["STORE_PREFIX"] + "purge:"
    clock = [time.time()]
    store = SqlStore(app, prefix=prefix, clock=lambda: clock[0])
    entries, members = sql_store._entries, sql_store._members

    for i in range(5):
        store.set(f"short{i}", "v", 10)
    store.incr("counter", 10)
    store.set("long", "v", 3600)
    store.set_add("short-set", "a", 10)
    store.set_add("short-set", "b", 10)
    store.set_add("long-set", "a", 3600)
    assert _rows(app, entries, prefix) == 7
    assert _rows(app, members, prefix) == 3

    # Expired rows stay in the table (invisible) until purged.
    clock[0] += 60
    assert store.get("short0") is None
    assert _rows(app, entries, prefix) == 7
    store.purge()
    assert _rows(app, entries, prefix) == 1
    assert _rows(app, members, prefix) == 1
    assert store.get("long") == "v"
    assert store.set_members("long-set") == {"a"}


def test_writes_purge_now_and_then(make_app, base_config, monkeypatch):
    app = make_app(REDIS_URL="")
    prefix = base_config["STORE_PREFIX"] + "purge:"
    clock = [time.time()]
    store = SqlStore(app, prefix=prefix, clock=lambda: clock[0])
    store.set("old", "v", 10)
    store.set_add("old-set", "a", 10)
    clock[0] += 60
    # With a purge on every write, the next write clears the expired rows.
    monkeypatch.setattr(sql_store, "PURGE_ONE_IN", 1)
    store.set("new", "v", 10)
    assert _rows(app, sql_store._entries, prefix) == 1
    assert _rows(app, sql_store._members, prefix) == 0
