"""A relying party's back-channel logout endpoint: a real HTTP server on loopback.

`Receiver` runs http.server in a daemon thread on 127.0.0.1 with a port of the system's
choosing, records every request, and answers as scripted per path (a status, a delay, or a
body that trickles in). `validate_logout_token` checks a logout token the way an RP must
(OpenID Connect Back-Channel Logout 1.0 §2.6).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass
class Step:
    """How the receiver answers one request: after `delay` seconds, `status`; with `drip`
    set, the body arrives one byte every `drip` seconds for `drip_for` seconds."""

    status: int = 200
    delay: float = 0.0
    drip: float = 0.0
    drip_for: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    content_type: str
    form: dict
    at: float = field(default_factory=time.monotonic)


class Receiver:
    """Loopback HTTP server recording requests; stop() ends it (use as a context manager)."""

    def __init__(self):
        self.received: list[Received] = []
        self._scripts: dict[str, list[Step]] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _record(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                item = Received(
                    method=method,
                    path=parts.path,
                    content_type=self.headers.get("Content-Type", ""),
                    form={k: v if len(v) > 1 else v[0] for k, v in parse_qs(body).items()},
                )
                with receiver._cond:
                    receiver.received.append(item)
                    receiver._cond.notify_all()
                return receiver._next_step(parts.path)

            def _answer(self, step: Step):
                self.close_connection = True  # one request per connection: no keep-alive noise
                if step.delay and receiver._stopping.wait(step.delay):
                    return
                if step.drip:
                    self.send_response(step.status)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.flush()
                    ends = time.monotonic() + step.drip_for
                    try:
                        while time.monotonic() < ends and not receiver._stopping.wait(step.drip):
                            self.wfile.write(b"1\r\nx\r\n")
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                    except OSError:
                        pass  # the client hung up: that is what a bounded client does
                    return
                body = b"" if step.status in (204, 304) else b"ok"
                self.send_response(step.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                with contextlib.suppress(OSError):  # the client may hang up first
                    self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                self._answer(self._record("POST"))

            def do_GET(self):  # noqa: N802
                self._answer(self._record("GET"))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="rp-receiver", daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def script(self, path: str, *steps: Step | int) -> None:
        """Answer the next requests to path with these steps in order; then 200."""
        self._scripts[path] = [s if isinstance(s, Step) else Step(status=s) for s in steps]

    def _next_step(self, path: str) -> Step:
        with self._cond:
            steps = self._scripts.get(path)
            return steps.pop(0) if steps else Step()

    def posts(self, path: str) -> list[Received]:
        with self._cond:
            return [r for r in self.received if r.method == "POST" and r.path == path]

    def wait_for_posts(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.received if r.method == "POST" and r.path == path]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._cond.wait(remaining)

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def closed_port_url(path: str = "/") -> str:
    """A loopback URL on a port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def validate_logout_token(token: str, jwks: dict | KeySet, *, issuer: str, client_id: str,
                          algorithms=("RS256", "ES256"), max_age: int = 300) -> dict:
    """Verify signature and claims of a logout token as an RP must; returns its claims."""
    keys = jwks if isinstance(jwks, KeySet) else KeySet.import_key_set(jwks)
    decoded = jwt.decode(token, keys, algorithms=list(algorithms))
    assert decoded.header.get("typ") == "logout+jwt", decoded.header
    assert decoded.header.get("kid"), decoded.header
    claims = dict(decoded.claims)
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
    ).validate(claims)
    assert claims["aud"] == client_id, claims
    now = time.time()
    assert now - max_age <= claims["iat"] <= now + 5, claims
    assert claims["exp"] > claims["iat"], claims
    events = claims.get("events")
    assert isinstance(events, dict) and BACKCHANNEL_EVENT in events, claims
    assert isinstance(events[BACKCHANNEL_EVENT], dict), claims
    assert "nonce" not in claims, claims
    assert claims.get("sub") or claims.get("sid"), claims
    return claims
