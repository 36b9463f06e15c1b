"""Python load generator: whole browser logins, and a bare GET rate to show its own ceiling.

    taskset -c 1 .venv/bin/python bench/loadgen.py login --base http://127.0.0.1:PORT \\
        --seed seed.json --threads 6 --duration 20 [--max-logins 100000]
    taskset -c 1 .venv/bin/python bench/loadgen.py get --base http://127.0.0.1:PORT \\
        --path /.well-known/openid-configuration --threads 4 --duration 5

A login is what a citizen's browser does, each step checked:
  GET  /oauth2/authorize?...   (PKCE S256, nonce)    -> 302 to /login?next=...
  GET  /login?next=...                                -> 200, the form and its CSRF token
  POST /login (login, password, csrf_token)           -> 302 to /oauth2/authorize/resume
  GET  /oauth2/authorize/resume?req=...  (consent already given) -> 302 to the RP with a code
  POST /oauth2/token (authorization_code, the RP's client_secret_basic) -> 200 with tokens
Every virtual browser (thread) keeps only its device cookie between logins (a returning
citizen on their own computer); the session cookies start empty each time. Prints one JSON
object. Loops stop after --duration seconds or --max-logins, whichever comes first; only
loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

HOST = "idp.bench.local"
# The provider runs as behind a TLS-terminating proxy (IDP_PROXY_FIX=1).
FORWARDED = {"Host": HOST, "X-Forwarded-Proto": "https"}
REDIRECT_URI = "https://rp.bench.local/cb"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class FlowError(RuntimeError):
    def __init__(self, step: str, detail: str):
        super().__init__(f"{step}: {detail}")
        self.step = step


def check_loopback(base: str) -> None:
    host = urlsplit(base).hostname
    if host not in ("127.0.0.1", "::1"):
        raise SystemExit(f"loopback only: {base}")


def new_session() -> requests.Session:
    s = requests.Session()
    s.headers.update(FORWARDED)
    s.headers["User-Agent"] = "Mozilla/5.0 (bench) eid-idp-loadgen"
    s.headers["Accept-Language"] = "vi"
    return s


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _path(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def _expect(resp, status: int, step: str):
    if resp.status_code != status:
        raise FlowError(step, f"HTTP {resp.status_code} (expected {status}): {resp.text[:200]!r}")
    return resp


class Browser:
    """One citizen's browser against the provider at base (loopback)."""

    def __init__(self, base: str, client_id: str, client_secret: str, scope: str):
        check_loopback(base)
        self.base = base.rstrip("/")
        self.client_id = client_id
        self.auth = basic(client_id, client_secret)
        self.scope = scope
        self.session = new_session()
        self.timeout = 30

    def _send(self, method: str, path: str, **kwargs):
        """One browser request; the TLS proxy is simulated, so Secure cookies (the provider
        sets __Host- cookies, https issuer) must still go back over loopback http."""
        resp = self.session.request(method, self.base + path, allow_redirects=False,
                                    timeout=self.timeout, **kwargs)
        for cookie in self.session.cookies:
            cookie.secure = False
        return resp

    def reset_keep_device(self) -> None:
        device = [c for c in self.session.cookies if c.name == "idp_device"]
        self.session.cookies.clear()
        for cookie in device:
            self.session.cookies.set_cookie(cookie)

    def _authorize(self):
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT_URI,
            "scope": self.scope, "state": secrets.token_urlsafe(12), "nonce": secrets.token_urlsafe(12),
            "code_challenge": challenge, "code_challenge_method": "S256",
        }
        resp = self._send("GET", f"/oauth2/authorize?{urlencode(params)}")
        return verifier, params["state"], resp

    def _code_from(self, resp, state: str, step: str) -> str:
        _expect(resp, 302, step)
        location = resp.headers.get("Location", "")
        if not location.startswith(REDIRECT_URI):
            raise FlowError(step, f"redirected to {location[:120]!r}, not the RP")
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if query.get("state") != state or "code" not in query:
            raise FlowError(step, f"no code for this state: {query}")
        return query["code"]

    def login(self, login: str, password: str) -> dict:
        """A whole login (authorize, login form, code, token); returns the token response."""
        verifier, state, resp = self._authorize()
        _expect(resp, 302, "authorize")
        login_url = _path(resp.headers["Location"])
        if not login_url.startswith("/login"):
            raise FlowError("authorize", f"not sent to the login page: {login_url[:120]!r}")
        page = _expect(self._send("GET", login_url), 200, "login form")
        match = _CSRF.search(page.text)
        if not match:
            raise FlowError("login form", "no CSRF token")
        resp = self._send(
            "POST", login_url,
            data={"login": login, "password": password, "csrf_token": match.group(1)},
            headers={"Referer": f"https://{HOST}{login_url}", "Origin": f"https://{HOST}"},
        )
        _expect(resp, 302, "login post")
        resume = _path(resp.headers["Location"])
        resp = self._send("GET", resume)
        code = self._code_from(resp, state, "resume")
        return self.exchange(code, verifier)

    def code(self) -> tuple[str, str]:
        """Authorize again in the logged-in session (consent given): (code, verifier)."""
        verifier, state, resp = self._authorize()
        return self._code_from(resp, state, "authorize (logged in)"), verifier

    def exchange(self, code: str, verifier: str) -> dict:
        resp = requests.post(
            self.base + "/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                  "code_verifier": verifier},
            headers={**FORWARDED, "Authorization": self.auth}, timeout=self.timeout,
        )
        body = _expect(resp, 200, "token").json()
        for name in ("access_token", "id_token"):
            if name not in body:
                raise FlowError("token", f"no {name} in {sorted(body)}")
        return body


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    ordered = sorted(values)

    def pick(q):
        return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]

    return {"p50": pick(50), "p90": pick(90), "p99": pick(99),
            "mean": sum(ordered) / len(ordered), "max": ordered[-1]}


def run_logins(base: str, seed: dict, *, threads: int, duration: float, max_logins: int) -> dict:
    """Logins in parallel browsers until duration or max_logins; latency per whole login."""
    deadline = time.monotonic() + duration
    lock = threading.Lock()
    state = {"started": 0, "done": 0, "errors": 0, "by_step": {}, "latencies": [], "first_error": None}
    citizens = seed["citizens"]

    def worker(index: int) -> None:
        citizen = citizens[index % len(citizens)]
        browser = Browser(base, seed["client_id"], seed["client_secret"], seed["scope"])
        while time.monotonic() < deadline:
            with lock:
                if state["started"] >= max_logins:
                    return
                state["started"] += 1
            browser.reset_keep_device()
            t0 = time.perf_counter()
            try:
                browser.login(citizen["login"], seed["password"])
            except (FlowError, requests.RequestException) as exc:
                step = getattr(exc, "step", "http")
                with lock:
                    state["errors"] += 1
                    state["by_step"][step] = state["by_step"].get(step, 0) + 1
                    state["first_error"] = state["first_error"] or str(exc)[:300]
                time.sleep(0.05)
                continue
            elapsed = (time.perf_counter() - t0) * 1000
            with lock:
                state["done"] += 1
                state["latencies"].append(elapsed)

    t0 = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=duration + 60)
    wall = time.monotonic() - t0
    return {
        "completed": state["done"],
        "errors": state["errors"],
        "errors_by_step": state["by_step"],
        "first_error": state["first_error"],
        "duration_s": wall,
        "rate": state["done"] / wall if wall else 0.0,
        "latency_ms": percentiles(state["latencies"]),
        "requests_per_login": 5,
    }


def run_gets(base: str, path: str, *, threads: int, duration: float, max_requests: int) -> dict:
    """GET one path as fast as the generator can (its own ceiling, to compare with the login rate)."""
    check_loopback(base)
    deadline = time.monotonic() + duration
    lock = threading.Lock()
    state = {"n": 0, "errors": 0, "latencies": []}

    def worker() -> None:
        s = new_session()
        while time.monotonic() < deadline:
            with lock:
                if state["n"] >= max_requests:
                    return
                state["n"] += 1
            t0 = time.perf_counter()
            try:
                ok = s.get(base + path, timeout=10).status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                state["latencies"].append((time.perf_counter() - t0) * 1000)
                state["errors"] += 0 if ok else 1

    t0 = time.monotonic()
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=duration + 30)
    wall = time.monotonic() - t0
    return {"requests": state["n"], "errors": state["errors"], "duration_s": wall,
            "rate": state["n"] / wall if wall else 0.0, "latency_ms": percentiles(state["latencies"])}


def run_requests(base: str, kind: str, settings: dict, *, duration: float, connections: int) -> dict:
    """The wrk scenarios (bench/wrk/request.lua, refresh.lua) in Python, for a machine without
    wrk: each thread keeps one connection (requests.Session) and, for refresh, takes a chain
    from the shared pool and puts back the token each answer carries. Far slower than wrk:
    good for a smoke run, not for figures."""
    check_loopback(base)
    deadline = time.monotonic() + duration
    lock = threading.Lock()
    pool: list[str] = []
    if kind == "refresh":
        pool = [t for t in Path(settings["tokens_file"]).read_text().split() if t]
    state = {"n": 0, "status": 0, "bad": 0, "errors": 0, "latencies": [], "sample": ""}

    def one(s: requests.Session) -> None:
        token = None
        if kind == "refresh":
            with lock:
                token = pool.pop() if pool else "no-chain-left"
            body = settings["body_prefix"] + token
            method, path = "POST", settings["path"]
        else:
            body = settings.get("body")
            method, path = settings["method"], settings["path"]
        t0 = time.perf_counter()
        try:
            resp = s.request(method, base + path, headers=settings["headers"], data=body, timeout=10)
        except requests.RequestException:
            with lock:
                state["errors"] += 1
            return
        elapsed = (time.perf_counter() - t0) * 1000
        with lock:
            state["n"] += 1
            state["latencies"].append(elapsed)
            if resp.status_code >= 400:
                state["status"] += 1
            if kind == "refresh":
                new = resp.json().get("refresh_token") if resp.status_code == 200 else None
                if new:
                    pool.append(new)
                else:
                    state["bad"] += 1
                    state["sample"] = state["sample"] or f"{resp.status_code} {resp.text[:200]}"

    def worker() -> None:
        s = requests.Session()
        while time.monotonic() < deadline:
            one(s)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 30)
    wall = time.monotonic() - t0
    if kind == "refresh" and settings.get("tokens_out"):
        Path(settings["tokens_out"]).write_text("".join(t + "\n" for t in pool))
    return {"requests": state["n"], "duration_s": wall, "sample": state["sample"],
            "errors": {"connect": state["errors"], "read": 0, "write": 0, "status": state["status"],
                       "timeout": 0, "bad_body": state["bad"]},
            "latency_ms": percentiles(state["latencies"])}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("login")
    p.add_argument("--base", required=True)
    p.add_argument("--seed", required=True, help="JSON: client_id, client_secret, scope, password, citizens")
    p.add_argument("--threads", type=int, default=6)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--max-logins", type=int, default=100_000)
    g = sub.add_parser("get")
    g.add_argument("--base", required=True)
    g.add_argument("--path", default="/.well-known/openid-configuration")
    g.add_argument("--threads", type=int, default=4)
    g.add_argument("--duration", type=float, default=5)
    g.add_argument("--max-requests", type=int, default=1_000_000)
    r = sub.add_parser("requests", help="a wrk scenario in Python (no wrk on the machine)")
    r.add_argument("--base", required=True)
    r.add_argument("--kind", choices=["request", "refresh"], required=True)
    r.add_argument("--settings", required=True, help="JSON file: the scenario's BENCH settings")
    r.add_argument("--connections", type=int, default=4)
    r.add_argument("--duration", type=float, default=5)
    args = parser.parse_args(argv)
    check_loopback(args.base)
    if args.cmd == "requests":
        out = run_requests(args.base, args.kind, json.loads(Path(args.settings).read_text()),
                           duration=args.duration, connections=args.connections)
    elif args.cmd == "login":
        seed = json.loads(Path(args.seed).read_text())
        out = run_logins(args.base, seed, threads=args.threads, duration=args.duration, max_logins=args.max_logins)
    else:
        out = run_gets(args.base, args.path, threads=args.threads, duration=args.duration,
                       max_requests=args.max_requests)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
