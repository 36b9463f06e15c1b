"""Talking to an upstream provider: discovery metadata and its JWKS, with bounded time.

Every request has a total deadline (FEDERATION_TIMEOUT): a slow upstream yields
UpstreamUnavailable, never a hung worker. Nothing here follows redirects.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import time
from urllib.parse import urlsplit

import requests
from joserfc.jwk import ECKey, KeySet, RSAKey

from idp.store import Store

log = logging.getLogger(__name__)

MAX_BODY = 512 * 1024
# The JWKS is kept this long in the shared store. A token naming a key it does not hold makes
# one refetch; for tokens anyone can send (back-channel logout) at most once per interval.
JWKS_TTL = 3600
JWKS_REFETCH_INTERVAL = 30
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
OPTIONAL_ENDPOINTS = ("userinfo_endpoint", "end_session_endpoint")
_LOOPBACK_NAMES = ("localhost",)


class UpstreamUnavailable(Exception):
    """The upstream did not answer in time, or answered with a server error."""


class UpstreamError(Exception):
    """The upstream answered, but with something we must not use; reason is a short code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def read_limited(resp: requests.Response, deadline: float) -> bytes:
    """The body of a streamed response, refused past MAX_BODY bytes or the deadline."""
    chunks, size = [], 0
    for chunk in resp.iter_content(8192):
        size += len(chunk)
        if size > MAX_BODY:
            raise UpstreamError("response_too_large")
        if time.monotonic() > deadline:
            raise UpstreamUnavailable("the upstream answered too slowly")
        chunks.append(chunk)
    return b"".join(chunks)


def get_json(url: str, *, timeout: float, headers: dict | None = None) -> dict:
    """GET a JSON object within timeout seconds in total."""
    deadline = time.monotonic() + timeout
    try:
        with requests.get(url, timeout=timeout, stream=True, allow_redirects=False,
                          headers={"Accept": "application/json", **(headers or {})}) as resp:
            body = read_limited(resp, deadline)
            status = resp.status_code
    except requests.RequestException as exc:
        raise UpstreamUnavailable(f"{exc.__class__.__name__}: {exc}") from None
    if status >= 500:
        raise UpstreamUnavailable(f"HTTP {status} from {url}")
    if status != 200:
        raise UpstreamError("http_status", f"HTTP {status} from {url}")
    try:
        data = json.loads(body)
    except ValueError:
        raise UpstreamError("not_json", url) from None
    if not isinstance(data, dict):
        raise UpstreamError("not_json_object", url)
    return data


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url, *, name: str) -> str:
    """An absolute https URL (http only on loopback, for development and tests)."""
    if not isinstance(url, str):
        raise UpstreamError("bad_metadata", f"{name} is missing")
    parts = urlsplit(url)
    if parts.fragment or "@" in parts.netloc or not parts.hostname:
        raise UpstreamError("bad_metadata", f"{name} is not a usable URL: {url}")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return url
    raise UpstreamError("bad_metadata", f"{name} must be https: {url}")


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def fetch_metadata(issuer: str, *, timeout: float, allowed_algs) -> dict:
    """The upstream's discovery document, checked (OpenID Connect Discovery 1.0 §4.3)."""
    check_url(issuer, name="issuer")
    meta = get_json(discovery_url(issuer), timeout=timeout)
    return check_metadata(meta, issuer=issuer, allowed_algs=allowed_algs)


def check_metadata(meta: dict, *, issuer: str, allowed_algs) -> dict:
    if meta.get("issuer") != issuer:
        # The issuer must be exactly the one asked for: the basis of the mix-up defence.
        raise UpstreamError("issuer_mismatch", f"metadata says {meta.get('issuer')!r}, expected {issuer!r}")
    for name in REQUIRED_ENDPOINTS:
        check_url(meta.get(name), name=name)
    for name in OPTIONAL_ENDPOINTS:
        if meta.get(name) is not None:
            check_url(meta[name], name=name)
    types = meta.get("response_types_supported")
    if isinstance(types, list) and "code" not in types:
        raise UpstreamError("bad_metadata", "the upstream does not support the authorization code flow")
    algs = meta.get("id_token_signing_alg_values_supported")
    if isinstance(algs, list) and not set(algs) & set(allowed_algs):
        raise UpstreamError("bad_metadata", f"no ID token algorithm in common (upstream: {', '.join(map(str, algs))})")
    return meta


def metadata_warnings(meta: dict) -> list[str]:
    """What an operator should know but that does not stop the provider from working."""
    warnings = []
    methods = meta.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        warnings.append("the upstream does not advertise PKCE S256 (it is sent anyway)")
    if not meta.get("authorization_response_iss_parameter_supported"):
        warnings.append("the upstream does not send the iss response parameter (RFC 9207)")
    if not meta.get("end_session_endpoint"):
        warnings.append("no end_session_endpoint: people cannot be offered to log out upstream")
    if not meta.get("backchannel_logout_supported"):
        warnings.append("no back-channel logout advertised")
    return warnings


# --- JWKS --------------------------------------------------------------------------------

_KEY_CLASSES = {"RSA": RSAKey, "EC": ECKey}


def parse_jwks(data) -> KeySet:
    """The signing keys of a JWKS; keys of other types or uses are skipped, not fatal."""
    keys = []
    for item in (data or {}).get("keys", []) if isinstance(data, dict) else []:
        if not isinstance(item, dict) or item.get("use") not in (None, "sig"):
            continue
        cls = _KEY_CLASSES.get(item.get("kty"))
        if cls is None or "d" in item:
            continue  # unknown type, or a private key the upstream should never publish
        try:
            keys.append(cls.import_key(item))
        except Exception:  # noqa: BLE001 - one bad key must not hide the others
            log.warning("skipped an unusable key in an upstream JWKS (kid %r)", item.get("kid"))
    return KeySet(keys)


class JwksCache:
    """An upstream's JWKS in the shared store; refetched once when a token names an unknown key."""

    def __init__(self, *, slug: str, jwks_uri: str, store: Store, timeout: float):
        self.jwks_uri = jwks_uri
        self.store = store
        self.timeout = timeout
        tag = hashlib.sha256(jwks_uri.encode()).hexdigest()[:16]
        self._key = f"fed-jwks:{slug}:{tag}"
        self._refetch_key = f"fed-jwks-refetch:{slug}:{tag}"

    def _fetch(self) -> KeySet:
        data = get_json(check_url(self.jwks_uri, name="jwks_uri"), timeout=self.timeout)
        self.store.set(self._key, json.dumps(data), JWKS_TTL)
        return parse_jwks(data)

    def keys(self) -> KeySet:
        raw = self.store.get(self._key)
        if raw is not None:
            return parse_jwks(json.loads(raw))
        return self._fetch()

    def refresh(self, *, limited: bool) -> KeySet | None:
        """Fetch again; when limited, at most once per JWKS_REFETCH_INTERVAL (else None)."""
        if limited and not self.store.set_if_absent(self._refetch_key, "1", JWKS_REFETCH_INTERVAL):
            return None
        return self._fetch()
