"""Helpers to submit the provider's forms through Flask's test client."""

from __future__ import annotations

import re


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def submit(client, url: str, data: dict, *, form_url: str | None = None, **kwargs):
    page = client.get(form_url or url)
    return client.post(url, data={**data, "csrf_token": csrf_from(page.get_data(as_text=True))}, **kwargs)
