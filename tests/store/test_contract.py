"""The store contract, run against both backends (embedded SQL table and Redis)."""

from __future__ import annotations

import time

import pytest

from idp.store.redis_store import RedisStore
from idp.store.sql_store import SqlStore

BACKENDS = {"sql": SqlStore, "redis": RedisStore}


@pytest.fixture(params=["sql", "redis"])
def make_store_app(request, make_app):
    """Build apps on the backend of this parameter; extra config overrides allowed."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    def factory(**overrides):
        app = make_app(REDIS_URL=url, **overrides)
        assert isinstance(app.extensions["idp_store"], BACKENDS[request.param])
        return app

    return factory


@pytest.fixture
def store(make_store_app):
    app = make_store_app()
    with app.app_context():
        yield app.extensions["idp_store"]


def test_ping(store):
    store.ping()


def test_set_get_and_overwrite(store):
    assert store.get("k") is None
    store.set("k", "one", 60)
    assert store.get("k") == "one"
    store.set("k", "two", 60)
    assert store.get("k") == "two"
    # Values come back byte for byte, non-ASCII included.
    value = '{"name":"Nguyễn Văn A","n":1}'
    store.set("json", value, 60)
    assert store.get("json") == value


def test_overwrite_replaces_ttl(store):
    store.set("k", "long", 100)
    store.set("k", "short", 10)
    assert 0 < store.ttl("k") <= 10


def test_ttl_values(store):
    assert store.ttl("missing") is None
    store.set("k", "v", 100)
    assert 98 <= store.ttl("k") <= 100
    # A key just set for one second reports one second, not zero.
    store.set("short", "v", 1)
    assert store.ttl("short") == 1
    store.incr("counter", 50)
    assert 48 <= store.ttl("counter") <= 50
    store.set_add("set", "m", 70)
    assert 68 <= store.ttl("set") <= 70


def test_set_if_absent(store):
    assert store.set_if_absent("k", "first", 60) is True
    assert store.get("k") == "first"
    # A live value is left alone, its expiry too.
    assert store.set_if_absent("k", "second", 600) is False
    assert store.get("k") == "first"
    assert store.ttl("k") <= 60


def test_take_returns_value_once(store):
    assert store.take("missing") is None
    store.set("k", "v", 60)
    assert store.take("k") == "v"
    assert store.take("k") is None
    assert store.get("k") is None
    assert store.ttl("k") is None


def test_incr_counts_in_a_fixed_window(store):
    assert store.incr("c", 100) == 1
    assert store.incr("c", 100) == 2
    # A later increment with a longer ttl does not move the window.
    assert store.incr("c", 1000) == 3
    assert store.ttl("c") <= 100
    assert store.get("c") == "3"
    # Counters are independent.
    assert store.incr("other", 100) == 1


def test_delete(store):
    store.set("v", "x", 60)
    store.incr("c", 60)
    store.set_add("s", "a", 60)
    store.set_add("s", "b", 60)
    for key in ("v", "c", "s"):
        store.delete(key)
    assert store.get("v") is None
    assert store.get("c") is None
    assert store.set_members("s") == set()
    assert all(store.ttl(k) is None for k in ("v", "c", "s"))
    # Deleting nothing is not an error; a deleted counter restarts.
    store.delete("missing")
    assert store.incr("c", 60) == 1


def test_set_members_add_remove(store):
    assert store.set_members("s") == set()
    store.set_add("s", "a", 60)
    store.set_add("s", "b", 60)
    store.set_add("s", "a", 60)
    assert store.set_members("s") == {"a", "b"}
    assert store.set_members("other") == set()
    store.set_remove("s", "a")
    store.set_remove("s", "missing")
    store.set_remove("nothing", "a")
    assert store.set_members("s") == {"b"}
    store.set_remove("s", "b")
    assert store.set_members("s") == set()
    assert store.ttl("s") is None


def test_set_add_extends_but_never_shortens(store):
    store.set_add("grow", "a", 10)
    store.set_add("grow", "b", 100)
    assert 98 <= store.ttl("grow") <= 100
    store.set_add("keep", "a", 100)
    store.set_add("keep", "b", 10)
    assert 98 <= store.ttl("keep") <= 100


def test_prefix_isolation(make_store_app, base_config):
    app = make_store_app()
    other_app = make_store_app(STORE_PREFIX=base_config["STORE_PREFIX"] + "iso:")
    with app.app_context():
        one = app.extensions["idp_store"]
    with other_app.app_context():
        two = other_app.extensions["idp_store"]

    one.set("k", "one", 60)
    assert two.get("k") is None
    assert two.ttl("k") is None
    assert two.take("k") is None
    assert two.set_if_absent("k", "two", 60) is True
    assert one.get("k") == "one"
    assert two.get("k") == "two"

    one.incr("c", 60)
    assert two.incr("c", 60) == 1
    one.set_add("s", "a", 60)
    assert two.set_members("s") == set()
    two.set_add("s", "b", 60)
    assert one.set_members("s") == {"a"}

    two.delete("k")
    two.delete("s")
    assert one.get("k") == "one"
    assert one.set_members("s") == {"a"}


def test_expiry(store):
    """Everything that depends on expiry, with a single short sleep."""
    store.set("value", "x", 1)
    store.set("absent", "old", 1)
    store.set("take", "x", 1)
    store.incr("counter", 1)
    store.incr("counter", 1)
    store.incr("window", 2)
    store.set_add("set", "a", 1)
    store.set_add("grown", "a", 1)
    store.set_add("grown", "b", 5)
    store.set_add("kept", "a", 5)
    store.set_add("kept", "b", 1)
    time.sleep(1.2)

    assert store.get("value") is None
    assert store.ttl("value") is None
    # An expired key counts as absent.
    assert store.set_if_absent("absent", "new", 60) is True
    assert store.get("absent") == "new"
    assert store.take("take") is None
    # A counter past its window restarts at one with a new window.
    assert store.incr("counter", 60) == 1
    assert store.ttl("counter") > 1
    # A counter inside its window keeps counting; its end has not moved.
    assert store.incr("window", 2) == 2
    assert store.ttl("window") <= 1
    assert store.set_members("set") == set()
    assert store.ttl("set") is None
    assert store.set_members("grown") == {"a", "b"}
    assert store.set_members("kept") == {"a", "b"}
