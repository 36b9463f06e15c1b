"""Test doubles for the federation tests: a tiny JSON server on loopback (a fake upstream's
discovery document and JWKS), a dict store, and token minting with joserfc keys."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey


class JsonServer:
    """Serves `routes[path]` as JSON on 127.0.0.1; counts the hits per path."""

    def __init__(self):
        self.routes: dict[str, dict] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                body = server.routes.get(self.path)
                data = json.dumps(body).encode() if body is not None else b"{}"
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class DictStore:
    """The store protocol's few calls the validators use, in memory (expiry ignored)."""

    def __init__(self):
        self.data: dict[str, str] = {}

    def get(self, key):
        return self.data.get(key)

    def set(self, key, value, ttl):
        self.data[key] = value

    def set_if_absent(self, key, value, ttl):
        if key in self.data:
            return False
        self.data[key] = value
        return True


class Signer:
    """Keys of a fake upstream and tokens signed with them."""

    def __init__(self):
        self.rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})
        self.ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})

    def jwks(self, *keys) -> dict:
        return KeySet(list(keys) or [self.rsa, self.ec]).as_dict()

    def sign(self, claims: dict, *, key=None, alg="RS256", header=None) -> str:
        key = key or (self.ec if alg == "ES256" else self.rsa)
        head = {"alg": alg, "kid": key.kid, "typ": "JWT", **(header or {})}
        return jwt.encode(head, claims, key, algorithms=[alg])


def id_claims(issuer: str, client_id: str, *, nonce="n-1", sub="upstream-sub-1", **extra) -> dict:
    now = int(time.time())
    claims = {"iss": issuer, "sub": sub, "aud": client_id, "iat": now, "exp": now + 300, "nonce": nonce,
              "acr": "urn:eid:loa:substantial"}
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def logout_claims(issuer: str, client_id: str, *, sid="up-sid-1", sub=None, **extra) -> dict:
    now = int(time.time())
    claims = {"iss": issuer, "aud": client_id, "iat": now, "exp": now + 120, "jti": str(uuid.uuid4()),
              "events": {"http://schemas.openid.net/event/backchannel-logout": {}}, "sid": sid, "sub": sub}
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def unsigned(claims: dict) -> str:
    """An alg "none" token (joserfc refuses to make one, so it is built by hand)."""
    import base64

    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
