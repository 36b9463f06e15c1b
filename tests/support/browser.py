"""A requests.Session playing the browser through the provider's pages over real HTTP."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from tests.support.live import csrf_token

PASSWORD = "một buổi sáng mùa thu ở hà nội"
REDIRECTS = (301, 302, 303, 307, 308)


def form_action(page: requests.Response) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert match, "no POST form in the page"
    return urljoin(page.url, html.unescape(match.group(1)))


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorize(browser: requests.Session, url: str, *, stop_at: str, login: str = "001099012345",
              password: str = PASSWORD, login_base: str | None = None, max_steps: int = 10) -> str:
    """GET the authorization URL, log in and approve consent as asked, until a redirect to
    stop_at (the RP's redirect URI), which is returned and not followed.

    login_base: submit the login form to this server instead (another process, same store).
    """
    resp = browser.get(url, allow_redirects=False, timeout=10)
    for _ in range(max_steps):
        if resp.status_code in REDIRECTS:
            location = urljoin(resp.url, resp.headers["Location"])
            if location.startswith(stop_at):
                return location
            if urlsplit(location).path == "/login":
                if login_base:
                    parts = urlsplit(location)
                    location = login_base + parts.path + ("?" + parts.query if parts.query else "")
                page = browser.get(location, timeout=10)
                assert page.status_code == 200, page.text[:300]
                resp = browser.post(
                    form_action(page),
                    data={"login": login, "password": password, "csrf_token": csrf_token(page.text)},
                    allow_redirects=False,
                    timeout=30,
                )
                assert resp.status_code == 302, resp.text[:500]
                continue
            resp = browser.get(location, allow_redirects=False, timeout=10)
        elif resp.status_code == 200 and 'name="decision"' in resp.text:
            req = re.search(r'name="req" value="([^"]+)"', resp.text).group(1)
            resp = browser.post(
                form_action(resp),
                data={"req": req, "decision": "allow", "csrf_token": csrf_token(resp.text)},
                allow_redirects=False,
                timeout=30,
            )
        else:
            raise AssertionError(f"unexpected page {resp.status_code} at {resp.url}: {resp.text[:500]}")
    raise AssertionError("too many steps before the redirect to the RP")


def log_out(browser: requests.Session, base: str) -> requests.Response:
    """The account page's logout form (POST with its CSRF token)."""
    page = browser.get(base + "/account", timeout=10)
    assert page.status_code == 200, page.status_code
    match = re.search(r'<form method="post" action="([^"]*/logout)"', page.text)
    assert match, "no logout form on the account page"
    return browser.post(urljoin(page.url, match.group(1)), data={"csrf_token": csrf_token(page.text)},
                        allow_redirects=False, timeout=10)
