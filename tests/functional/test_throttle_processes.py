"""Throttling holds across worker processes: two real servers share one store."""

from __future__ import annotations

from datetime import date

import pytest
import requests

from idp.accounts import services
from idp.timeutil import utcnow
from tests.support.live import LiveServer, post_form

PASSWORD = "một buổi sáng mùa thu ở hà nội"
LIMIT = 6


@pytest.fixture
def two_servers(make_app, base_config):
    app = make_app()  # registers cleanup of the shared database and store
    with app.app_context():
        services.register_citizen(
            personal_number="001099012345",
            full_name="Nguyễn Văn An",
            birth_date=date(1999, 5, 14),
            gender="male",
            phone="0912345678",
            email=None,
            password=PASSWORD,
            config=app.config,
            now=utcnow(),
        )
    # Growing delays off here: this test is about the per-window count shared by processes.
    config = {**base_config, "LOGIN_THROTTLE_PER_ACCOUNT": LIMIT, "LOGIN_DELAY_AFTER": 1000, "SERVER_NAME": None}
    servers = [LiveServer(config), LiveServer(config)]
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.slow
def test_failed_logins_counted_across_two_processes(two_servers):
    a, b = two_servers
    assert a.process.pid != b.process.pid
    sessions = {s.url: requests.Session() for s in two_servers}
    statuses = []
    for n in range(LIMIT):
        server = two_servers[n % 2]
        resp = post_form(
            sessions[server.url], server.url + "/login", {"login": "001099012345", "password": "sai mật khẩu nhé"}
        )
        statuses.append(resp.status_code)
    assert statuses == [401] * LIMIT
    # Each process alone saw only half of the failures; the shared count refuses both.
    for server in two_servers:
        resp = post_form(sessions[server.url], server.url + "/login", {"login": "001099012345", "password": PASSWORD})
        assert resp.status_code == 429
        assert "Quá nhiều lần thử" in resp.text
