"""A second instance of this provider as the upstream: its own database (a SQLite file, or a
PostgreSQL database created here and dropped at the end) and its own store prefix, served on
another loopback port. It is named http://localhost:<port> so that a browser (one cookie jar
for every port of a host) keeps its cookies apart from ours on 127.0.0.1."""

from __future__ import annotations

import itertools
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import date
from urllib.parse import urljoin, urlsplit

import pyotp
import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from idp import create_app
from idp.accounts import factors
from idp.accounts.models import TotpCredential
from idp.extensions import db
from idp.identity.models import Identity
from idp.oidc.keys import ensure_keys
from idp.timeutil import utcnow
from tests.conftest import PG_URL, REDIS_URL, RUN_ID
from tests.support.browser import REDIRECTS, form_action
from tests.support.live import LiveServer, csrf_token
from tests.support.oidc import PASSWORD, make_citizen

_numbers = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Upstream:
    app: object
    url: str
    server: LiveServer

    def citizen(self, *, level: int = 1, totp: bool = False, name: str = "Nguyễn Văn An",
                birth: date = date(1999, 5, 14)) -> dict:
        """A citizen of the upstream with a fresh personal number (male, born in 1999 by default)."""
        seq = next(_numbers)
        number = f"0010{birth.year % 100:02d}{seq:06d}" if birth.year < 2000 else f"0012{birth.year % 100:02d}{seq:06d}"
        identity_id = make_citizen(self.app, personal_number=number, full_name=name, birth_date=birth,
                                   phone=None, email=f"up{seq}.{RUN_ID}@example.vn")
        secret = None
        with self.app.app_context():
            db.session.get(Identity, identity_id).assurance_level = level
            db.session.commit()
            if totp:
                secret = factors.start_enrolment(identity_id, config=self.app.config, now=utcnow())
                db.session.get(TotpCredential, identity_id).confirmed_at = utcnow()
                db.session.commit()
            db.session.remove()
        return {"id": identity_id, "number": number, "name": name, "birth": birth, "totp": secret}


def _upstream_database(tmp_path) -> tuple[str, str | None]:
    if not PG_URL:
        return f"sqlite:///{tmp_path / 'upstream.sqlite3'}", None
    name = f"idp_test_{RUN_ID}_up_{secrets.token_hex(2)}"
    engine = sa.create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False), name


def _drop_database(name: str) -> None:
    engine = sa.create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="module")
def upstream(base_config, migrated, tmp_path_factory):
    from flask_migrate import upgrade

    url_db, pg_name = _upstream_database(tmp_path_factory.mktemp("upstream"))
    port = free_port()
    config = {
        **base_config,
        "DATABASE_URL": url_db,
        "STORE_PREFIX": f"idpup:{RUN_ID}:{secrets.token_hex(2)}:",
        "ISSUER": f"http://localhost:{port}",
        "SERVER_NAME": None,
        "KEY_CACHE_SECONDS": 1,
        "BACKCHANNEL_RETRY_DELAY": 1,
    }
    app = create_app({**config, "BACKCHANNEL_WORKER": False})
    with app.app_context():
        upgrade()
        ensure_keys(now=utcnow(), config=app.config)
        db.session.remove()
    server = LiveServer({**config, "BACKCHANNEL_WORKER": True}, port=port)
    try:
        yield Upstream(app=app, url=config["ISSUER"], server=server)
    finally:
        server.stop()
        with app.app_context():
            store = app.extensions["idp_store"]
            if REDIS_URL and hasattr(store, "delete_prefix"):
                store.delete_prefix()
            db.session.remove()
            db.engine.dispose()
        if pg_name:
            _drop_database(pg_name)


def upstream_login(browser: requests.Session, url: str, *, stop_at: str, citizen: dict,
                   password: str = PASSWORD, consent: str = "allow", max_steps: int = 12) -> str:
    """Drive the upstream's pages (login, second factor, consent) until a redirect to stop_at,
    which is returned, not followed."""
    resp = browser.get(url, allow_redirects=False, timeout=10)
    for _ in range(max_steps):
        if resp.status_code in REDIRECTS:
            location = urljoin(resp.url, resp.headers["Location"])
            if location.startswith(stop_at):
                return location
            path = urlsplit(location).path
            if path in ("/login", "/login/second-factor"):
                page = browser.get(location, timeout=10)
                assert page.status_code == 200, page.text[:300]
                if path == "/login":
                    data = {"login": citizen["number"], "password": password}
                else:
                    data = {"code": pyotp.TOTP(citizen["totp"]).now()}
                resp = browser.post(form_action(page), data={**data, "csrf_token": csrf_token(page.text)},
                                    allow_redirects=False, timeout=30)
                assert resp.status_code == 302, resp.text[:500]
                continue
            resp = browser.get(location, allow_redirects=False, timeout=10)
        elif resp.status_code == 200 and 'name="decision"' in resp.text:
            req = re.search(r'name="req" value="([^"]+)"', resp.text).group(1)
            resp = browser.post(form_action(resp), data={"req": req, "decision": consent,
                                                         "csrf_token": csrf_token(resp.text)},
                                allow_redirects=False, timeout=30)
        else:
            raise AssertionError(f"unexpected page {resp.status_code} at {resp.url}: {resp.text[:500]}")
    raise AssertionError("too many steps at the upstream")
