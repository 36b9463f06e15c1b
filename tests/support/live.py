"""Real HTTP servers on loopback, each in its own OS process, for multi-process tests."""

from __future__ import annotations

import multiprocessing
import re

import requests

_ctx = multiprocessing.get_context("spawn")


def _placeholder_app(environ, start_response):  # answers only until the provider is built
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def _serve(config: dict, queue, port: int = 0, issuer_is_url: bool = False) -> None:
    from werkzeug.serving import make_server

    from idp import create_app

    try:
        # Bind first, so the provider can be configured with its own URL (ISSUER).
        server = make_server("127.0.0.1", port, _placeholder_app, threaded=True)
        if issuer_is_url:
            config = {**config, "ISSUER": f"http://127.0.0.1:{server.server_port}"}
        server.app = create_app(config)
    except BaseException as exc:
        queue.put(f"error: {exc.__class__.__name__}: {exc}")
        raise
    queue.put(server.server_port)
    server.serve_forever()


class LiveServer:
    """The provider served by werkzeug in a child process; stop() ends it.

    port: listen on this port (0: one the system picks). issuer_is_url: set ISSUER to the
    server's own URL (http://127.0.0.1:<port>), which is what the browser and RPs see.
    """

    def __init__(self, config: dict, *, port: int = 0, issuer_is_url: bool = False):
        queue = _ctx.Queue()
        self.process = _ctx.Process(target=_serve, args=(config, queue, port, issuer_is_url), daemon=True)
        self.process.start()
        try:
            port = queue.get(timeout=60)
        except Exception:
            self.stop()
            raise
        if not isinstance(port, int):
            self.stop()
            raise RuntimeError(f"the live server did not start: {port}")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

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
