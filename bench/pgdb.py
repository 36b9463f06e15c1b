"""Throw-away PostgreSQL databases for the benchmarks: CREATE one, DROP only our own."""

from __future__ import annotations

import secrets

import psycopg
from sqlalchemy.engine import make_url

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def libpq(url) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(admin_url: str) -> tuple[str, str]:
    """(name, SQLAlchemy URL) of a new database idp_bench_<random> on admin_url's server."""
    url = make_url(admin_url)
    name = f"idp_bench_{secrets.token_hex(4)}"
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, url.set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    assert name.startswith("idp_bench_")  # only ever our own
    with psycopg.connect(libpq(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
