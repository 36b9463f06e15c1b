"""CPU cost per request, in process: the provider's WSGI app called through Flask's test client
(no sockets, no server), production profile on PostgreSQL + Redis, one request at a time.

    .venv/bin/python bench/inproc.py [--n 300] [--scenarios client_credentials,refresh]
        [--profile DIR] [--ab NAME,...]

For each scenario: CPU milliseconds per request (time.process_time of this process, so what
other processes on the machine do barely moves it) and wall milliseconds (which includes the
waits on PostgreSQL and Redis). 1000 / CPU ms is the rate one core could give if the server
around the app cost nothing; the gap to bench/run.py's figures is the WSGI server, the network
and waiting. --profile DIR writes a cProfile (CPU time) of each scenario and its top functions.

--ab NAME,... measures proposed changes (bench/whatif.py: switchable monkeypatches inside this
process only; the application's files are not changed) against the unchanged code: the variants
(unchanged, each experiment alone, all together) take turns, --repeat rounds each, and the
median CPU ms of each is reported with its change against the unchanged code.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import re
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from idp_target import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, FORWARDED, REDIRECT_URI, IdpTarget  # noqa: E402
from loadgen import pkce_pair  # noqa: E402

SCENARIOS = ["client_credentials", "refresh", "introspection", "userinfo", "jwks", "discovery", "login"]
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
HTTPS = {"base_url": "https://idp.bench.local", "headers": {"X-Forwarded-Proto": "https"}}


class InProc:
    def __init__(self, app, seed):
        self.app = app
        self.seed = seed
        self.client = app.test_client()
        self.auth = "Basic " + base64.b64encode(f"{seed.client_id}:{seed.client_secret}".encode()).decode()
        self.post_headers = {**FORWARDED, "Authorization": self.auth}
        self.chains: list[str] = []
        self._browser = None

    # A browser is a test client with its cookie jar.
    def login(self, client=None) -> tuple[object, dict]:
        c = client or self.app.test_client()
        verifier, challenge = pkce_pair()
        params = {"response_type": "code", "client_id": self.seed.client_id, "redirect_uri": REDIRECT_URI,
                  "scope": self.seed.scope, "state": "s", "nonce": "n", "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        r = c.get("/oauth2/authorize?" + urlencode(params), **HTTPS)
        assert r.status_code == 302, r.status_code
        login_url = r.headers["Location"]
        page = c.get(login_url, **HTTPS)
        token = _CSRF.search(page.get_data(as_text=True)).group(1)
        r = c.post(login_url, data={"login": self.seed.citizens[0]["login"], "password": self.seed.password,
                                    "csrf_token": token},
                   base_url="https://idp.bench.local",
                   headers={"X-Forwarded-Proto": "https", "Referer": "https://idp.bench.local" + login_url})
        assert r.status_code == 302, r.get_data(as_text=True)[:300]
        r = c.get(r.headers["Location"], **HTTPS)
        assert r.status_code == 302 and r.headers["Location"].startswith(REDIRECT_URI)
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
        return c, self.exchange(code, verifier)

    def code(self, c) -> tuple[str, str]:
        verifier, challenge = pkce_pair()
        params = {"response_type": "code", "client_id": self.seed.client_id, "redirect_uri": REDIRECT_URI,
                  "scope": self.seed.scope, "state": "s", "nonce": "n", "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        r = c.get("/oauth2/authorize?" + urlencode(params), **HTTPS)
        assert r.status_code == 302, r.status_code
        return parse_qs(urlsplit(r.headers["Location"]).query)["code"][0], verifier

    def exchange(self, code: str, verifier: str) -> dict:
        r = self.client.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
                             headers=self.post_headers)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()

    def prepare(self, scenario: str, n: int):
        """A callable doing one request of the scenario (inputs made beforehand, not timed)."""
        c = self.client
        if scenario == "client_credentials":
            def one():
                r = c.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=self.post_headers)
                assert r.status_code == 200
            return one
        if scenario == "refresh":
            browser, first = self.login()
            chain = [first["refresh_token"]]

            def one():
                r = c.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": chain[-1]},
                           headers=self.post_headers)
                assert r.status_code == 200, r.get_data(as_text=True)
                chain.append(r.get_json()["refresh_token"])
            return one
        if scenario in ("introspection", "userinfo"):
            _, tokens = self.login()
            at = tokens["access_token"]
            if scenario == "introspection":
                def one():
                    r = c.post("/oauth2/introspect", data={"token": at}, headers=self.post_headers)
                    assert r.status_code == 200 and r.get_json()["active"]
            else:
                def one():
                    r = c.get("/oauth2/userinfo", headers={**FORWARDED, "Authorization": "Bearer " + at})
                    assert r.status_code == 200
            return one
        if scenario == "jwks":
            return lambda: c.get("/oauth2/jwks", headers=FORWARDED)
        if scenario == "discovery":
            return lambda: c.get("/.well-known/openid-configuration", headers=FORWARDED)
        if scenario == "login":
            def one():
                self.login()
            return one
        raise ValueError(scenario)


def count_calls(app, fn, n: int = 10) -> tuple[float, float]:
    """SQL statements and shared-store calls per request (averaged over n requests)."""
    from sqlalchemy import event

    from idp.extensions import db
    from idp.store import get_store

    with app.app_context():
        engine, store = db.engine, get_store()
    statements = []

    def on_execute(*args):
        statements.append(1)

    calls = []
    methods = ("get", "set", "set_if_absent", "take", "incr", "ttl", "delete", "set_add", "set_remove",
               "set_members")
    originals = {m: getattr(store, m) for m in methods}
    for m, original in originals.items():
        def counted(*a, _original=original, **kw):
            calls.append(1)
            return _original(*a, **kw)
        setattr(store, m, counted)
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        for _ in range(n):
            fn()
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        for m in methods:
            delattr(store, m)  # back to the class's methods
    return len(statements) / n, len(calls) / n


def measure(fn, n: int) -> tuple[float, float]:
    t0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1000, (time.perf_counter() - w0) / n * 1000


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def top_functions(profile: cProfile.Profile, n: int = 35) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(n)
    out.write("\n")
    stats.sort_stats("tottime").print_stats(n)
    return re.sub(r"/\S*/site-packages/", "", out.getvalue()).replace(str(BENCH.parent) + "/", "")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=300, help="requests per scenario (login: n/10)")
    p.add_argument("--repeat", type=int, default=3, help="measurements per scenario; the best is kept")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--profile", type=Path, default=None)
    p.add_argument("--ab", default="", help="comma-separated experiments of bench/whatif.py")
    p.add_argument("--database-url", default=os.environ.get("IDP_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    p.add_argument("--redis-url", default=os.environ.get("IDP_BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    args = p.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    experiments = [w for w in args.ab.split(",") if w]
    with IdpTarget(args.database_url, args.redis_url, citizens=1) as target:
        os.environ.update(target.env)
        os.environ["IDP_BACKCHANNEL_WORKER"] = "false"  # no delivery thread beside the timed loop
        from idp import create_app

        if experiments:
            import whatif

            whatif.install(experiments)
        app = create_app()
        bench = InProc(app, target.seed)
        if experiments:
            variants = [[]] + [[e] for e in experiments] + ([experiments] if len(experiments) > 1 else [])
            print("| scenario | variant | CPU ms/request (median) | change | wall ms/request |")
            print("|---|---|---|---|---|")
        else:
            print("| scenario | CPU ms/request | wall ms/request | 1000 / CPU ms | SQL statements | store calls |")
            print("|---|---|---|---|---|---|")
        for scenario in scenarios:
            n = max(5, args.n // 10) if scenario == "login" else args.n
            fn = bench.prepare(scenario, n * (args.repeat + 2))
            for _ in range(min(n, 20)):
                fn()  # warm: imports, caches, key ring
            if experiments:
                runs: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(variants))}
                for _ in range(args.repeat):
                    for i, variant in enumerate(variants):
                        whatif.enable(experiments, False)
                        whatif.enable(variant, True)
                        runs[i].append(measure(fn, n))
                whatif.enable(experiments, False)
                base = _median([c for c, _ in runs[0]])
                for i, variant in enumerate(variants):
                    cpu = _median([c for c, _ in runs[i]])
                    wall = _median([w for _, w in runs[i]])
                    change = "" if i == 0 else f"{100 * (cpu - base) / base:+.0f}%"
                    print(f"| {scenario} | {'+'.join(variant) or 'unchanged'} | {cpu:.2f} | {change} | {wall:.2f} |",
                          flush=True)
                continue
            best = min((measure(fn, n) for _ in range(args.repeat)), key=lambda cw: cw[0])
            sql, store_calls = count_calls(app, fn, 3 if scenario == "login" else 10)
            print(f"| {scenario} | {best[0]:.2f} | {best[1]:.2f} | {1000 / best[0]:,.0f} | {sql:.1f} | {store_calls:.1f} |",
                  flush=True)
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                prof = cProfile.Profile(time.process_time)
                prof.enable()
                for _ in range(n):
                    fn()
                prof.disable()
                (args.profile / f"{scenario}.cprofile.txt").write_text(top_functions(prof))
        from idp.extensions import db

        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
