"""Real HTTP servers on loopback, each in its own OS process, for multi-process tests."""

from __future__ import annotations

import multiprocessing
import re

import requests

_ctx = multiprocessing.get_context("spawn")


def _serve(config: dict, queue) -> None:
    from werkzeug.serving import make_server

    from idp import create_app

    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    queue.put(server.server_port)
    server.serve_forever()


class LiveServer:
    """The provider served by werkzeug in a child process; stop() ends it."""

    def __init__(self, config: dict):
        queue = _ctx.Queue()
        self.process = _ctx.Process(target=_serve, args=(config, queue), daemon=True)
        self.process.start()
        try:
            port = queue.get(timeout=60)
        except Exception:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()




def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    if not match:
        raise AssertionError("no CSRF token in the page")
    return match.group(1)


def post_form(session: requests.Session, url: str, data: dict, *, form_url: str | None = None):
    """GET the form for its CSRF token, then POST it (no redirects followed)."""
    page = session.get(form_url or url, timeout=10)
    return session.post(url, data={**data, "csrf_token": csrf_token(page.text)}, allow_redirects=False, timeout=30)
