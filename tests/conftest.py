"""Fixtures: one fresh database per test run, cleaned between tests; real Redis when named.

IDP_TEST_DATABASE_URL names a PostgreSQL server: the run creates its own database there and
drops it at the end. IDP_TEST_REDIS_URL names a Redis server: the run uses its own key prefix
and deletes only those keys. Without them the run uses a SQLite file and the embedded store.
"""

from __future__ import annotations

import os
import secrets

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from idp import create_app
from idp.extensions import db

RUN_ID = secrets.token_hex(4)
PG_URL = os.environ.get("IDP_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")


def _create_pg_database(admin_url: str) -> str:
    url = make_url(admin_url)
    name = f"idp_test_{RUN_ID}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(admin_url: str, url: str) -> None:
    engine = sa.create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if PG_URL:
        url = _create_pg_database(PG_URL)
        yield url
        _drop_pg_database(PG_URL, url)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'idp.sqlite3'}"


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("instance")
    os.environ["IDP_INSTANCE_PATH"] = str(path)
    return path


@pytest.fixture(scope="session")
def base_config(database_url, instance_dir):
    """Overrides that every app of this run shares."""
    return {
        "PROFILE": "testing",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "STORE_PREFIX": f"idptest:{RUN_ID}:",
        "SECRET_KEY": "test-secret-" + RUN_ID * 8,
        "ISSUER": "http://localhost",
        "SERVER_NAME": "localhost",
    }


@pytest.fixture(scope="session")
def migrated(base_config):
    """The schema comes from the migrations, never from create_all()."""
    from flask_migrate import upgrade

    app = create_app(base_config)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return True


def _clean(app) -> None:
    with app.app_context():
        db.session.remove()
        tables = [t for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in tables)
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for t in tables:
                    conn.execute(t.delete())
            # The audit head row comes from the migration; put it back as a fresh database has it.
            from idp.audit.chain import GENESIS

            conn.execute(sa.text("INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, :h)"), {"h": GENESIS})
        store = app.extensions["idp_store"]
        if hasattr(store, "delete_prefix"):
            store.delete_prefix()
        db.engine.dispose()


@pytest.fixture
def make_app(migrated, base_config):
    """Build apps with extra overrides; state is cleaned after the test."""
    apps = []

    def factory(**overrides):
        app = create_app({**base_config, **overrides})
        apps.append(app)
        return app

    yield factory
    if apps:
        _clean(apps[0])
        for extra in apps[1:]:
            with extra.app_context():
                db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis_url():
    """The Redis server named by IDP_TEST_REDIS_URL; unreachable means failure, not a skip."""
    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL is not set: Redis tests run in the PostgreSQL + Redis configuration")
    import redis

    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    return REDIS_URL
