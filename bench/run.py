"""Benchmark: the e-ID provider (production profile, PostgreSQL + Redis) side by side with npm's
oidc-provider, each pinned to core 0, load from core 1, loopback only. Issue #8.

    .venv/bin/python bench/run.py --duration 20

Scenarios (--scenarios, comma-separated; default all):
  client_credentials  POST /oauth2/token, client_credentials, RS256 JWT access token
  refresh             POST /oauth2/token, refresh_token with rotation: every request presents the
                      token the previous answer of its chain issued (many chains, pre-issued)
  introspection       POST /oauth2/introspect of a JWT access token (the reference: an opaque
                      token, the only kind oidc-provider introspects)
  userinfo            GET /oauth2/userinfo with a bearer token
  jwks, discovery     GET /oauth2/jwks, GET /.well-known/openid-configuration
  login               whole browser logins: authorize -> login form -> password (argon2id at the
                      configured production cost) -> consent already given -> code -> token;
                      counted as complete logins per second (Python generator, e-ID only)

Every run CREATEs its own database idp_bench_<random> on IDP_BENCH_DATABASE_URL's server (default
postgresql+psycopg://postgres@127.0.0.1:5432/test) and DROPs it at the end; uses Redis
(IDP_BENCH_REDIS_URL, default redis://127.0.0.1:6379/0) under its own key prefix and deletes only
those keys. Each load is bounded in time (wrk -d, loop deadlines) and count, and targets
127.0.0.1 only. See docs/benchmarks.md for what the columns mean and the recorded results.

Other modes: --wsgi-matrix (gunicorn sync / gthread / granian, bare Flask and the provider),
--soak SECONDS (RSS over time under a scenario mix), --profile DIR (py-spy on the workers),
--smoke (a few seconds per scenario, for tests/bench/test_smoke.py; --json FILE for the result).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import procstats  # noqa: E402
from idp_target import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    FORWARDED,
    IdpTarget,
    Server,
    ServerSpec,
    ServiceUnavailable,
)
from loadgen import Browser, FlowError  # noqa: E402
from node_target import NodeServer, NodeUnavailable, node_version, npm_ci  # noqa: E402
from wrkrun import have_wrk, run_load, wrk_path  # noqa: E402

SCENARIOS = ["client_credentials", "refresh", "introspection", "userinfo", "jwks", "discovery", "login"]
HALF_RATE_SCENARIOS = ["client_credentials", "introspection", "userinfo"]
# Issue #8's targets, per core (provider pinned).
TARGETS = {
    "client_credentials": 1900,
    "refresh": 800,
    "introspection": 3000,
    "userinfo": 2000,
    "login": 40,
}
HALF_RATE_P99_MS = 25.0
RSS_LIMIT_MB = 150.0
# Failures of the provider met while preparing a scenario (retried once), for the report.
INCIDENTS: list[str] = []
# The generator of the wrk scenarios: "wrk", or "python" where wrk is not installed.
GENERATOR = {"name": "wrk"}
SERVER_CPU = "0"
LOAD_CPU = "1"
FORM = "application/x-www-form-urlencoded"


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# --- the two providers, as the scenarios see them -------------------------------------------

class Provider:
    key = ""
    label = ""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.tokens_file = tmp / f"{self.key}-refresh.txt"

    base = ""
    root_pid = 0

    def supports(self, scenario: str) -> tuple[bool, str]:
        return True, ""

    def settings(self, scenario: str) -> tuple[str, dict]:
        raise NotImplementedError

    def after_refresh_run(self, tokens_out: Path) -> None:
        if tokens_out.exists():
            shutil.move(tokens_out, self.tokens_file)

    def chains_left(self) -> int:
        try:
            return sum(1 for line in self.tokens_file.read_text().splitlines() if line.strip())
        except OSError:
            return 0

    def db_pids(self) -> list[int]:
        return []

    def commit_ms(self) -> float | None:
        return None


class IdpProvider(Provider):
    key = "idp"
    label = "e-ID"

    def __init__(self, tmp: Path, target: IdpTarget, server: Server, *, chains: int):
        super().__init__(tmp)
        self.target = target
        self.server = server
        self.chains = chains
        self.seed = target.seed
        self.auth = _basic(self.seed.client_id, self.seed.client_secret)

    @property
    def base(self) -> str:
        return self.server.base

    @property
    def root_pid(self) -> int:
        return self.server.proc.pid

    def db_pids(self) -> list[int]:
        return self.target.db.backend_pids()

    def commit_ms(self) -> float | None:
        return self.target.db.commit_latency_ms()

    def browser(self, index: int = 0) -> Browser:
        """A logged-in browser. A failed login is retried once and recorded as an incident
        (it is the provider's failure, shown in the report, not the benchmark's)."""
        citizen = self.seed.citizens[index % len(self.seed.citizens)]
        for attempt in (1, 2):
            b = Browser(self.base, self.seed.client_id, self.seed.client_secret, self.seed.scope)
            try:
                b.login(citizen["login"], self.seed.password)
                return b
            except FlowError as exc:
                INCIDENTS.append(f"login while preparing tokens (attempt {attempt}): {str(exc)[:200]}")
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def mint_refresh_tokens(self, n: int) -> None:
        """n new refresh-token chains: code flows in logged-in browsers (consent given)."""
        per = max(1, n // 4)

        def work(i):
            b = self.browser(i)
            out = []
            for _ in range(per if i < 3 else n - 3 * per):
                code, verifier = b.code()
                out.append(b.exchange(code, verifier)["refresh_token"])
            return out

        with ThreadPoolExecutor(4) as pool:
            tokens = [t for chunk in pool.map(work, range(4)) for t in chunk]
        with open(self.tokens_file, "a") as fh:
            fh.write("".join(t + "\n" for t in tokens))

    def _fresh_access_token(self) -> str:
        code, verifier = self.browser(0).code()
        b = Browser(self.base, self.seed.client_id, self.seed.client_secret, self.seed.scope)
        return b.exchange(code, verifier)["access_token"]

    def settings(self, scenario: str) -> tuple[str, dict]:
        post = {**FORWARDED, "Authorization": self.auth, "Content-Type": FORM}
        if scenario == "client_credentials":
            return "request", {"method": "POST", "path": "/oauth2/token", "headers": post,
                               "body": "grant_type=client_credentials"}
        if scenario == "refresh":
            # A run loses the chains in flight when it stops (and one wrk takes to check the
            # script): keep at least half the chains, and always more chains than connections.
            if self.chains_left() < self.chains // 2:
                self.mint_refresh_tokens(self.chains - self.chains_left())
            return "refresh", {"path": "/oauth2/token", "headers": post, "tokens_file": str(self.tokens_file),
                               "body_prefix": "grant_type=refresh_token&refresh_token="}
        if scenario == "introspection":
            return "request", {"method": "POST", "path": "/oauth2/introspect", "headers": post,
                               "body": "token=" + self._fresh_access_token()}
        if scenario == "userinfo":
            return "request", {"method": "GET", "path": "/oauth2/userinfo",
                               "headers": {**FORWARDED, "Authorization": "Bearer " + self._fresh_access_token()}}
        if scenario == "jwks":
            return "request", {"method": "GET", "path": "/oauth2/jwks", "headers": dict(FORWARDED)}
        if scenario == "discovery":
            return "request", {"method": "GET", "path": "/.well-known/openid-configuration",
                               "headers": dict(FORWARDED)}
        raise ValueError(scenario)

    def probe(self, scenario: str, settings: dict) -> None:
        """One request with the scenario's settings, checked, before the load."""
        import requests

        if scenario == "refresh":
            return  # the chains are checked by the load itself (a bad answer is an error)
        resp = requests.request(settings["method"], self.base + settings["path"], headers=settings["headers"],
                                data=settings.get("body"), timeout=10)
        _check_probe(scenario, resp)


class NodeProvider(Provider):
    key = "node"
    label = "oidc-provider"

    def __init__(self, tmp: Path, server: NodeServer):
        super().__init__(tmp)
        self.server = server
        seed = server.seed
        self.auth = _basic(seed["client_id"], seed["client_secret"])
        self.tokens_file.write_text("\n".join(seed["refresh_tokens"]) + "\n")

    @property
    def base(self) -> str:
        return self.server.base

    @property
    def root_pid(self) -> int:
        return self.server.proc.pid

    def supports(self, scenario: str) -> tuple[bool, str]:
        if scenario == "login":
            return False, ("oidc-provider's own login pages are development-only and check no "
                           "password; a password login with argon2id would be our code, not its")
        return True, ""

    def settings(self, scenario: str) -> tuple[str, dict]:
        seed = self.server.seed
        paths = seed["paths"]
        post = {**FORWARDED, "Authorization": self.auth, "Content-Type": FORM}
        if scenario == "client_credentials":
            return "request", {"method": "POST", "path": paths["token"], "headers": post,
                               "body": "grant_type=client_credentials&scope=" + seed["cc_scope"]}
        if scenario == "refresh":
            return "refresh", {"path": paths["token"], "headers": post, "tokens_file": str(self.tokens_file),
                               "body_prefix": "grant_type=refresh_token&refresh_token="}
        if scenario == "introspection":
            return "request", {"method": "POST", "path": paths["introspection"], "headers": post,
                               "body": "token=" + seed["introspect_token"]}
        if scenario == "userinfo":
            return "request", {"method": "GET", "path": paths["userinfo"],
                               "headers": {**FORWARDED, "Authorization": "Bearer " + seed["access_token"]}}
        if scenario == "jwks":
            return "request", {"method": "GET", "path": paths["jwks"], "headers": dict(FORWARDED)}
        if scenario == "discovery":
            return "request", {"method": "GET", "path": paths["discovery"], "headers": dict(FORWARDED)}
        raise ValueError(scenario)

    probe = IdpProvider.probe


def _check_probe(scenario: str, resp) -> None:
    if resp.status_code != 200:
        raise RuntimeError(f"{scenario}: probe answered HTTP {resp.status_code}: {resp.text[:300]}")
    body = resp.json()
    expect = {
        "client_credentials": lambda b: b.get("access_token", "").count(".") == 2,
        "introspection": lambda b: b.get("active") is True,
        "userinfo": lambda b: bool(b.get("sub")),
        "jwks": lambda b: bool(b.get("keys")),
        "discovery": lambda b: bool(b.get("issuer")),
    }[scenario]
    if not expect(body):
        raise RuntimeError(f"{scenario}: unexpected probe answer {json.dumps(body)[:300]}")


# --- measuring --------------------------------------------------------------------------------

@dataclass
class Row:
    scenario: str
    provider: str
    rate: float = 0.0
    requests: int = 0
    errors: int = 0
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    server_cpu: float = 0.0  # cores used on average by the server's processes
    per_cpu_second: float = 0.0  # rate / server_cpu: what one fully-owned core would give
    peak_rss_mb: float = 0.0  # largest worker's peak
    db_cpu: float = 0.0  # PostgreSQL backends of the bench database, cores
    gen_cpu: float = 0.0  # the load generator, cores
    other_cpu: float = 0.0  # everything else on the machine (other people's work), cores
    commit_ms: float | None = None  # PostgreSQL: median of one committed INSERT just before the run
    target_rate: float | None = None  # paced runs: the rate asked for
    duration_s: float = 0.0
    note: str = ""
    detail: dict = field(default_factory=dict)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _machine_ticks() -> tuple[int, int]:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(parts), parts[3] + parts[4]


class Meter:
    """CPU of the server tree, its database backends, the generator and the rest of the machine."""

    def __init__(self, provider: Provider):
        self.provider = provider

    def __enter__(self):
        self.sampler = procstats.Sampler(self.provider.root_pid).start()
        self.db_pids = self.provider.db_pids()
        self.db0 = {p: procstats.cpu_ticks(p) or 0 for p in self.db_pids}
        self.gen0 = _children_cpu()
        self.m0 = _machine_ticks()
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.sampler.stop()
        self.wall = time.monotonic() - self.t0
        pids = set(self.db_pids) | set(self.provider.db_pids())
        db_ticks = sum((procstats.cpu_ticks(p) or 0) - self.db0.get(p, 0) for p in pids)
        self.db_cpu = db_ticks / procstats.CLK_TCK / self.wall
        self.gen_cpu = (_children_cpu() - self.gen0) / self.wall
        total1, idle1 = _machine_ticks()
        busy = (total1 - self.m0[0]) - (idle1 - self.m0[1])
        busy_cores = busy / procstats.CLK_TCK / self.wall
        self.server_cpu = self.sampler.cpu_fraction
        self.other_cpu = max(0.0, busy_cores - self.server_cpu - self.db_cpu - self.gen_cpu)

    def fill(self, row: Row) -> Row:
        row.server_cpu = self.server_cpu
        row.per_cpu_second = row.rate / self.server_cpu if self.server_cpu > 0.05 else 0.0
        row.peak_rss_mb = self.sampler.peak_worker_rss_mb
        row.db_cpu = self.db_cpu
        row.gen_cpu = self.gen_cpu
        row.other_cpu = self.other_cpu
        return row


QUIET = {"max_wait": 0.0, "busy_below": 0.35}


def wait_quiet() -> float:
    """With --wait-quiet S: wait (at most S seconds) until the machine's other work leaves both
    cores nearly idle, so a figure is not mostly someone else's load. Returns the busy share."""
    deadline = time.monotonic() + QUIET["max_wait"]
    busy = procstats.machine_busy_fraction(0.5) * (os.cpu_count() or 1)
    while busy > QUIET["busy_below"] and time.monotonic() < deadline:
        busy = procstats.machine_busy_fraction(2.0) * (os.cpu_count() or 1)
    return busy


def measure_wrk(provider: Provider, scenario: str, *, duration: float, connections: int, warmup: float,
                rate: float | None = None) -> Row:
    kind, settings = provider.settings(scenario)
    provider.probe(scenario, settings)
    tokens_out = provider.tmp / f"{provider.key}-refresh-out.txt"
    if kind == "refresh":
        settings = {**settings, "tokens_out": str(tokens_out)}
    if warmup > 0:
        run_load(provider.base, generator=GENERATOR["name"], scenario=kind, settings=settings, duration=warmup,
                 connections=connections, cpu=LOAD_CPU, rate=rate)
        if kind == "refresh":
            provider.after_refresh_run(tokens_out)
    if QUIET["max_wait"] > 0:
        wait_quiet()
    commit_ms = provider.commit_ms()
    with Meter(provider) as meter:
        res = run_load(provider.base, generator=GENERATOR["name"], scenario=kind, settings=settings,
                       duration=duration, connections=connections, cpu=LOAD_CPU, rate=rate)
    if kind == "refresh":
        provider.after_refresh_run(tokens_out)
    row = Row(scenario=scenario, provider=provider.label, rate=res.ok_requests / res.duration_s,
              requests=res.requests, errors=res.error_count, p50=res.latency_ms["p50"],
              p90=res.latency_ms["p90"], p99=res.latency_ms["p99"], target_rate=rate,
              duration_s=res.duration_s, detail={"errors": res.errors, "connections": connections})
    if res.raw.get("stderr"):
        row.detail["wrk_stderr"] = res.raw["stderr"]
    row.commit_ms = commit_ms
    return meter.fill(row)


def measure_login(provider: IdpProvider, *, duration: float, threads: int, seed_file: Path,
                  max_logins: int = 1_000_000) -> Row:
    cmd = ["taskset", "-c", LOAD_CPU, sys.executable, str(BENCH / "loadgen.py"), "login", "--base", provider.base,
           "--seed", str(seed_file), "--threads", str(threads), "--duration", str(duration),
           "--max-logins", str(max_logins)]
    if QUIET["max_wait"] > 0:
        wait_quiet()
    commit_ms = provider.commit_ms()
    with Meter(provider) as meter:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"login generator failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout)
    lat = out["latency_ms"]
    row = Row(scenario="login", provider=provider.label, rate=out["rate"], requests=out["completed"],
              errors=out["errors"], p50=lat["p50"], p90=lat["p90"], p99=lat["p99"], duration_s=out["duration_s"],
              note="logins/s; latency of a whole login (5 requests)",
              detail={k: out[k] for k in ("errors_by_step", "first_error")} | {"threads": threads})
    row.commit_ms = commit_ms
    return meter.fill(row)


def generator_ceiling(provider: IdpProvider, *, duration: float, threads: int) -> dict:
    """The Python generator's own rate on a cheap endpoint, to compare with login's request rate."""
    cmd = ["taskset", "-c", LOAD_CPU, sys.executable, str(BENCH / "loadgen.py"), "get", "--base", provider.base,
           "--path", "/oauth2/jwks", "--threads", str(threads), "--duration", str(duration)]
    gen0 = _children_cpu()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-1000:])
    out = json.loads(proc.stdout)
    out["gen_cpu"] = (_children_cpu() - gen0) / wall
    return out


# --- profiles ---------------------------------------------------------------------------------

def profile_scenario(provider: IdpProvider, scenario: str, out_dir: Path, *, duration: float, connections: int,
                     login_threads: int, seed_file: Path) -> Path:
    """py-spy (nonblocking, on core 1) on every worker while the scenario runs; collapsed stacks."""
    import tools

    bin_dir = tools.ensure("py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{scenario}.collapsed.txt"
    spy = subprocess.Popen(
        ["taskset", "-c", LOAD_CPU, str(bin_dir / "py-spy"), "record", "--pid", str(provider.root_pid),
         "--subprocesses", "--nonblocking", "--rate", "200", "--duration", str(int(duration)),
         "--format", "raw", "--output", str(raw)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(1.0)
    if scenario == "login":
        measure_login(provider, duration=duration, threads=login_threads, seed_file=seed_file)
    else:
        measure_wrk(provider, scenario, duration=duration, connections=connections, warmup=0)
    try:
        _, err = spy.communicate(timeout=duration + 30)
    except subprocess.TimeoutExpired:
        spy.terminate()
        _, err = spy.communicate(timeout=10)
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote nothing: {err[-800:]}")
    summary = summarize_collapsed(raw)
    (out_dir / f"{scenario}.top.txt").write_text(summary)
    return raw


def summarize_collapsed(path: Path, top: int = 30) -> str:
    """Inclusive and self sample shares per function, from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    selfc: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = []
        for f in stack.split(";"):
            # "function (path/file.py:line)" -> "function (file.py)" relative to site-packages or repo
            name, _, where = f.partition(" (")
            where = where.rstrip(")").rsplit(":", 1)[0]
            for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
                if marker in where:
                    where = where.split(marker, 1)[1]
                    break
            frames.append(f"{name} ({where})")
        for fr in set(frames):
            inclusive[fr] = inclusive.get(fr, 0) + n
        if frames:
            selfc[frames[-1]] = selfc.get(frames[-1], 0) + n
    lines = [f"{path.name}: {total} samples (non-idle)", "", "inclusive %  function"]
    for fr, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:6.1f}  {fr}")
    lines += ["", "inclusive %  the provider's own functions (idp/)"]
    own = [(fr, n) for fr, n in inclusive.items() if "(idp/" in fr]
    for fr, n in sorted(own, key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:6.1f}  {fr}")
    lines += ["", "self %  function"]
    for fr, n in sorted(selfc.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:6.1f}  {fr}")
    return "\n".join(lines) + "\n"


# --- report -----------------------------------------------------------------------------------

def _fmt(v: float, digits: int = 0) -> str:
    return f"{v:,.{digits}f}"


def table(rows: list[Row], ratios: bool = True) -> str:
    head = ("| scenario | provider | req/s | p50 ms | p90 ms | p99 ms | errors | server CPU | req/CPU-s "
            "| peak RSS/worker MB | PG CPU | PG commit ms | load gen CPU | other load | e-ID / ref |")
    out = [head, "|" + "|".join(["---"] * 15) + "|"]
    by = {(r.scenario, r.provider): r for r in rows}
    for r in rows:
        ratio = ""
        if ratios and r.provider == IdpProvider.label:
            ref = by.get((r.scenario, NodeProvider.label))
            if ref and ref.rate > 0 and r.rate > 0:
                ratio = f"{r.rate / ref.rate:.2f}"
        out.append(
            f"| {r.scenario} | {r.provider} | {_fmt(r.rate, 1 if r.rate < 100 else 0)} | {r.p50:.1f} | {r.p90:.1f} "
            f"| {r.p99:.1f} | {r.errors} | {r.server_cpu:.2f} | {_fmt(r.per_cpu_second, 1 if r.rate < 100 else 0)} "
            f"| {r.peak_rss_mb:.0f} | {r.db_cpu:.2f} | {'' if r.commit_ms is None else f'{r.commit_ms:.1f}'} "
            f"| {r.gen_cpu:.2f} | {r.other_cpu:.2f} | {ratio} |"
        )
    return "\n".join(out)


def half_rate_table(rows: list[Row]) -> str:
    out = ["| scenario | provider | asked req/s | got req/s | p50 ms | p90 ms | p99 ms | errors | server CPU "
           "| p99 <= 25 ms |", "|" + "|".join(["---"] * 10) + "|"]
    for r in rows:
        ok = "yes" if r.p99 <= HALF_RATE_P99_MS else "no"
        out.append(f"| {r.scenario} | {r.provider} | {_fmt(r.target_rate or 0)} | {_fmt(r.rate)} | {r.p50:.1f} "
                   f"| {r.p90:.1f} | {r.p99:.1f} | {r.errors} | {r.server_cpu:.2f} | {ok} |")
    return "\n".join(out)


def targets_table(rows: list[Row], half: list[Row]) -> str:
    out = ["| target (per core) | measured req/s | per CPU-s | met |", "|---|---|---|---|"]
    by = {r.scenario: r for r in rows if r.provider == IdpProvider.label}
    for scenario, want in TARGETS.items():
        r = by.get(scenario)
        if r is None:
            continue
        out.append(f"| {scenario} >= {want:,}/s | {_fmt(r.rate, 1)} | {_fmt(r.per_cpu_second, 1)} "
                   f"| {'yes' if r.rate >= want else 'no'} |")
    for r in half:
        if r.provider == IdpProvider.label:
            out.append(f"| {r.scenario} p99 at half peak <= 25 ms | {r.p99:.1f} ms at {_fmt(r.rate)}/s | "
                       f"| {'yes' if r.p99 <= HALF_RATE_P99_MS else 'no'} |")
    rss = max((r.peak_rss_mb for r in rows if r.provider == IdpProvider.label), default=0)
    out.append(f"| RSS per worker <= 150 MB | {rss:.0f} MB peak | | {'yes' if rss <= RSS_LIMIT_MB else 'no'} |")
    return "\n".join(out)


def _versions() -> dict:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for name in ("flask", "authlib", "joserfc", "gunicorn", "sqlalchemy", "psycopg", "redis", "argon2-cffi"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "?"
    out["node"] = node_version() or "-"
    lock = BENCH / "node" / "package-lock.json"
    try:
        out["oidc-provider"] = json.loads(lock.read_text())["packages"]["node_modules/oidc-provider"]["version"]
    except (OSError, KeyError, ValueError):
        out["oidc-provider"] = "?"
    try:
        out["wrk"] = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True).stdout.split()[1]
    except Exception:
        out["wrk"] = "-"
    return out


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


# --- main -------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=20, help="seconds of measured load per scenario")
    p.add_argument("--warmup", type=float, default=3, help="seconds of unmeasured load before each")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--server", choices=["gunicorn", "granian"], default="gunicorn")
    # gthread 2 x 4 by measurement (docs/benchmarks.md, "WSGI servers"): keep-alive spares the
    # connection set-up and gunicorn 27's lingering close that a sync worker pays per request.
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-class", choices=["sync", "gthread"], default="gthread")
    p.add_argument("--threads", type=int, default=4, help="gthread threads / granian blocking threads")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (1 wrk thread, core 1)")
    p.add_argument("--login-threads", type=int, default=6, help="parallel browsers of the login scenario")
    p.add_argument("--chains", type=int, default=128, help="refresh-token chains of the e-ID provider")
    p.add_argument("--citizens", type=int, default=8)
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment of the provider's server (e.g. MALLOC_ARENA_MAX=2); repeatable")
    p.add_argument("--no-node", action="store_true", help="skip the oidc-provider reference")
    p.add_argument("--no-half-rate", action="store_true", help="skip the p99-at-half-peak runs")
    p.add_argument("--soak", type=float, default=0, help="seconds of scenario mix watching worker RSS")
    p.add_argument("--soak-only", action="store_true", help="with --soak: skip the scenario table")
    p.add_argument("--profile", type=Path, default=None, help="py-spy the workers per scenario into DIR")
    p.add_argument("--profile-duration", type=float, default=15)
    p.add_argument("--wsgi-matrix", action="store_true", help="compare WSGI servers (bare Flask + provider)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="before each measured load, wait up to SECONDS for other work on the machine "
                        "to leave the cores nearly idle (a shared machine)")
    p.add_argument("--smoke", action="store_true", help="a few seconds per scenario (tests)")
    p.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto",
                   help="load generator of the HTTP scenarios: wrk (Debian package) or, without it, "
                        "Python threads (smoke runs only: far slower)")
    p.add_argument("--json", type=Path, default=None, help="write every figure as JSON here")
    p.add_argument("--database-url", default=os.environ.get("IDP_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    p.add_argument("--redis-url", default=os.environ.get("IDP_BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    args = p.parse_args(argv)
    if args.smoke:
        args.duration = min(args.duration, 1)
        args.warmup = 0
        args.chains = min(args.chains, 16)
        args.citizens = min(args.citizens, 2)
        args.login_threads = min(args.login_threads, 2)
        args.no_half_rate = True
        args.workers = min(args.workers, 2)
        args.connections = min(args.connections, 8)
    # More refresh-token chains than connections, so no connection waits for a chain.
    args.chains = max(args.chains, 4 * args.connections)
    args.scenario_list = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenario_list) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _logs_on_failure(servers: list, node):
    """When a run breaks, print what the servers said, before the database goes away."""
    try:
        yield
    except BaseException:
        for srv in servers:
            if srv.proc is not None:
                print(f"--- {srv.spec.label()} log (last lines) ---\n{srv.log_tail(60)}", file=sys.stderr)
        ref = node()
        if ref is not None and ref.proc is not None:
            print(f"--- oidc-provider log ---\n{ref.log_tail(30)}", file=sys.stderr)
        raise


def _terminate(signum, frame):
    # SIGTERM ends the run like Ctrl-C: servers stopped, database dropped, keys deleted.
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if (os.cpu_count() or 1) < 2:
        print("bench: needs 2 cores (server on core 0, load on core 1)", file=sys.stderr)
        return 2
    if args.generator == "auto":
        # The Python generator tops out near the provider's own rate: a full run's figures would
        # be the generator's. Only a smoke run falls back to it without being asked.
        args.generator = "wrk" if have_wrk() or not args.smoke else "python"
    if args.generator == "wrk" and not have_wrk():
        print("bench: wrk is not installed (apt-get install -y wrk), or use --generator python", file=sys.stderr)
        return 2
    GENERATOR["name"] = args.generator
    QUIET["max_wait"] = args.wait_quiet
    if args.generator == "python":
        args.no_half_rate = True  # pacing needs wrk
    started = dt.datetime.now(dt.UTC)
    meta = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "loadavg_before": procstats.loadavg(),
        "machine_busy_before": round(procstats.machine_busy_fraction(1.0) * (os.cpu_count() or 1), 2),
        "versions": _versions(),
        "generator": args.generator,
        "server": None,
    }
    results: dict = {"meta": meta, "rows": [], "half_rate": [], "skipped": {}, "generator": None,
                     "soak": None, "wsgi_matrix": None, "profiles": {}}

    # The reference installs while the e-ID provider is prepared.
    node_box: dict = {}

    def install_node():
        try:
            npm_ci()
            node_box["ok"] = True
        except NodeUnavailable as exc:
            node_box["error"] = str(exc)

    node_thread = None
    if not args.no_node:
        node_thread = threading.Thread(target=install_node, daemon=True)
        node_thread.start()

    tmp = Path(tempfile.mkdtemp(prefix="bench-run-"))
    node_server = None
    server = None
    servers: list = []
    try:
        log(f"preparing the e-ID provider (database on {args.database_url.rsplit('@', 1)[-1]})")
        try:
            target = IdpTarget(args.database_url, args.redis_url, citizens=args.citizens)
        except ServiceUnavailable as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 3
        with target, _logs_on_failure(servers, lambda: node_server):
            spec = ServerSpec(server=args.server, workers=args.workers, worker_class=args.worker_class,
                              threads=args.threads, cpu=SERVER_CPU)
            for item in args.server_env:
                name, _, value = item.partition("=")
                target.env[name] = value
            meta["server"] = spec.label() + "".join(f", {e}" for e in args.server_env)
            tools_bin = None
            if args.server == "granian":
                import tools

                tools_bin = tools.ensure("granian")
            server = Server(spec, target.env).start(tools_bin=tools_bin)
            servers.append(server)
            idp = IdpProvider(tmp, target, server, chains=args.chains)
            idp.tokens_file.unlink(missing_ok=True)
            meta["database"] = target.db.name
            meta["redis_prefix"] = target.redis.prefix
            seed_file = tmp / "login-seed.json"
            seed_file.write_text(json.dumps(target.seed.as_dict()))
            providers: list[Provider] = [idp]

            if node_thread is not None:
                node_thread.join(timeout=300)
                if node_box.get("ok"):
                    try:
                        node_server = NodeServer(cpu=SERVER_CPU, refresh_tokens=max(1024, args.chains * 4)).start()
                        providers.append(NodeProvider(tmp, node_server))
                        meta["reference"] = f"oidc-provider {node_server.seed.get('version')} on node {node_version()}"
                    except NodeUnavailable as exc:
                        node_box["error"] = str(exc)
                if not node_box.get("ok") or node_server is None:
                    results["skipped"]["reference"] = node_box.get("error", "not installed")
                    log(f"reference skipped: {results['skipped']['reference']}")
            else:
                results["skipped"]["reference"] = "--no-node"

            if not args.wsgi_matrix and not (args.soak_only and args.soak > 0):
                run_scenarios(args, providers, idp, seed_file, results)
            if args.soak > 0:
                results["soak"] = run_soak(args, idp, seed_file)
            if args.profile is not None:
                for scenario in args.scenario_list:
                    if scenario in ("jwks", "discovery"):
                        continue
                    log(f"profiling {scenario}")
                    profile_scenario(idp, scenario, args.profile, duration=args.profile_duration,
                                     connections=args.connections, login_threads=args.login_threads,
                                     seed_file=seed_file)
                    results["profiles"][scenario] = str(args.profile / f"{scenario}.top.txt")
            server.stop()
            server = None
            if args.wsgi_matrix:
                results["wsgi_matrix"] = run_wsgi_matrix(args, target, tmp)
    finally:
        if server is not None:
            server.stop()
        if node_server is not None:
            node_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    meta["loadavg_after"] = procstats.loadavg()
    results["incidents"] = list(INCIDENTS)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


def run_scenarios(args, providers: list[Provider], idp: IdpProvider, seed_file: Path, results: dict) -> None:
    rows: list[Row] = []
    half: list[Row] = []
    for scenario in args.scenario_list:
        for provider in providers:
            ok, why = provider.supports(scenario)
            if not ok:
                results["skipped"][f"{scenario}/{provider.label}"] = why
                continue
            log(f"{scenario}: {provider.label}")
            if scenario == "login":
                if args.warmup > 0:
                    measure_login(provider, duration=args.warmup, threads=args.login_threads, seed_file=seed_file)
                row = measure_login(provider, duration=args.duration, threads=args.login_threads,
                                    seed_file=seed_file)
            else:
                row = measure_wrk(provider, scenario, duration=args.duration, connections=args.connections,
                                  warmup=args.warmup)
            rows.append(row)
            log(f"  {row.rate:,.1f}/s p99 {row.p99:.1f} ms errors {row.errors} server CPU {row.server_cpu:.2f}")
        if not args.no_half_rate and scenario in HALF_RATE_SCENARIOS:
            for provider in providers:
                peak = next((r for r in rows if r.scenario == scenario and r.provider == provider.label), None)
                if peak is None or peak.rate <= 0:
                    continue
                log(f"{scenario}: {provider.label} paced at {peak.rate / 2:,.0f}/s")
                half.append(measure_wrk(provider, scenario, duration=args.duration, connections=args.connections,
                                        warmup=0, rate=peak.rate / 2))
    if "login" in args.scenario_list:
        log("python generator ceiling (GET /oauth2/jwks)")
        results["generator"] = generator_ceiling(idp, duration=min(args.duration, 5), threads=args.login_threads)
    results["rows"] = [asdict(r) for r in rows]
    results["half_rate"] = [asdict(r) for r in half]


def run_soak(args, idp: IdpProvider, seed_file: Path) -> dict:
    """Scenario mix for args.soak seconds; worker RSS sampled every second."""
    mix = ["client_credentials", "refresh", "introspection", "userinfo", "login"]
    chunk = 30.0
    sampler = procstats.Sampler(idp.root_pid, interval=1.0).start()
    t_end = time.monotonic() + args.soak
    i = 0
    runs = []
    while time.monotonic() < t_end - 5:
        scenario = mix[i % len(mix)]
        d = min(chunk, t_end - time.monotonic())
        if d < 5:
            break
        log(f"soak: {scenario} {d:.0f} s")
        if scenario == "login":
            r = measure_login(idp, duration=d, threads=args.login_threads, seed_file=seed_file)
        else:
            r = measure_wrk(idp, scenario, duration=d, connections=args.connections, warmup=0)
        runs.append({"scenario": scenario, "rate": r.rate, "errors": r.errors})
        i += 1
    sampler.stop()
    series = sampler.rss_series
    t0 = series[0][0] if series else 0
    per_pid: dict[int, list[tuple[float, float]]] = {}
    for t, snap in series:
        for pid, kb in snap.items():
            per_pid.setdefault(pid, []).append(((t - t0) / 60, kb / 1024))
    workers = {}
    for pid, pts in per_pid.items():
        if len(pts) < 3:
            continue
        first = [v for m, v in pts if m <= pts[0][0] + 1] or [pts[0][1]]
        last = [v for m, v in pts if m >= pts[-1][0] - 1] or [pts[-1][1]]
        n = len(pts)
        mx = sum(m for m, _ in pts) / n
        my = sum(v for _, v in pts) / n
        var = sum((m - mx) ** 2 for m, _ in pts)
        slope = sum((m - mx) * (v - my) for m, v in pts) / var if var else 0.0
        # Second half only: growth after warm-up.
        half = [p for p in pts if p[0] >= pts[-1][0] / 2]
        hx = sum(m for m, _ in half) / len(half)
        hy = sum(v for _, v in half) / len(half)
        hvar = sum((m - hx) ** 2 for m, _ in half)
        hslope = sum((m - hx) * (v - hy) for m, v in half) / hvar if hvar else 0.0
        workers[pid] = {"first_mb": round(sum(first) / len(first), 1), "last_mb": round(sum(last) / len(last), 1),
                        "max_mb": round(max(v for _, v in pts), 1), "slope_mb_per_min": round(slope, 3),
                        "second_half_slope_mb_per_min": round(hslope, 3)}
    return {"seconds": args.soak, "runs": runs, "workers": workers}


WSGI_SPECS = [
    ServerSpec("gunicorn", 1, "sync"),
    ServerSpec("gunicorn", 2, "sync"),
    ServerSpec("gunicorn", 3, "sync"),
    ServerSpec("gunicorn", 4, "sync"),
    ServerSpec("gunicorn", 1, "gthread", 4),
    ServerSpec("gunicorn", 2, "gthread", 4),
    ServerSpec("granian", 1, "sync", 1),
    ServerSpec("granian", 1, "sync", 4),
    ServerSpec("granian", 2, "sync", 2),
]


def run_wsgi_matrix(args, target: IdpTarget, tmp: Path) -> list[dict]:
    import tools

    try:
        tools_bin = tools.ensure("granian")
    except tools.ToolUnavailable as exc:
        log(f"granian unavailable: {exc}")
        tools_bin = None
    out = []
    scenarios = [s for s in ("discovery", "client_credentials", "userinfo", "refresh") if s in args.scenario_list]
    for spec in WSGI_SPECS:
        if spec.server == "granian" and tools_bin is None:
            continue
        entry = {"server": spec.label()}
        bare_spec = ServerSpec(spec.server, spec.workers, spec.worker_class, spec.threads, SERVER_CPU,
                               app="bench.bare_app:app")
        bare = Server(bare_spec, target.env).start(tools_bin=tools_bin)
        try:
            prov = _BareProvider(tmp, bare)
            log(f"wsgi matrix: {spec.label()} bare")
            r = measure_wrk(prov, "discovery", duration=args.duration, connections=args.connections,
                            warmup=args.warmup)
            entry["bare"] = asdict(r)
        finally:
            bare.stop()
        srv = Server(ServerSpec(spec.server, spec.workers, spec.worker_class, spec.threads, SERVER_CPU),
                     target.env).start(tools_bin=tools_bin)
        try:
            idp = IdpProvider(tmp, target, srv, chains=args.chains)
            for scenario in scenarios:
                log(f"wsgi matrix: {spec.label()} {scenario}")
                r = measure_wrk(idp, scenario, duration=args.duration, connections=args.connections,
                                warmup=args.warmup)
                entry[scenario] = asdict(r)
        finally:
            srv.stop()
        out.append(entry)
    return out


class _BareProvider(Provider):
    key = "bare"
    label = "bare Flask"

    def __init__(self, tmp: Path, server: Server):
        super().__init__(tmp)
        self.server = server

    @property
    def base(self) -> str:
        return self.server.base

    @property
    def root_pid(self) -> int:
        return self.server.proc.pid

    def settings(self, scenario: str):
        return "request", {"method": "GET", "path": "/.well-known/openid-configuration", "headers": dict(FORWARDED)}

    def probe(self, scenario, settings):
        return None


def report(results: dict) -> None:
    meta = results["meta"]
    print(f"\n## Benchmark {meta['date']}\n")
    print(f"- command: `{meta['command']}`")
    print(f"- machine: {meta['cores']} cores ({meta['cpu']}); provider pinned to core {SERVER_CPU}, "
          f"load generators on core {LOAD_CPU}")
    print(f"- e-ID provider: production profile, {meta.get('server')}, PostgreSQL + Redis")
    if meta.get("reference"):
        print(f"- reference: {meta['reference']}, in-memory adapter, pinned to core {SERVER_CPU}")
    gen = "wrk (1 thread)" if meta.get("generator") == "wrk" else "Python threads (no wrk: smoke figures only)"
    print(f"- load generator: {gen} for the HTTP scenarios; Python threads for logins")
    v = meta["versions"]
    print("- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    print(f"- machine load before: loadavg {meta['loadavg_before']}, {meta['machine_busy_before']} cores busy; "
          f"after: loadavg {meta.get('loadavg_after')}")
    for what, why in results["skipped"].items():
        print(f"- skipped {what}: {why}")
    for incident in results.get("incidents", []):
        print(f"- INCIDENT (the provider failed, retried): {incident}")
    rows = [Row(**r) for r in results["rows"]]
    half = [Row(**r) for r in results["half_rate"]]
    if rows:
        print("\n### Peak throughput\n")
        print(table(rows))
    if half:
        print("\n### Latency at half the peak rate\n")
        print(half_rate_table(half))
    if rows:
        print("\n### Targets (issue #8)\n")
        print(targets_table(rows, half))
    gen = results.get("generator")
    if gen:
        print(f"\nPython generator ceiling: {gen['rate']:,.0f} GET/s of /oauth2/jwks with its threads "
              f"({gen['gen_cpu']:.2f} cores of core {LOAD_CPU}), errors {gen['errors']}")
    soak = results.get("soak")
    if soak:
        print(f"\n### Soak ({soak['seconds']:.0f} s, scenario mix)\n")
        print("| worker pid | RSS first MB | RSS last MB | max MB | slope MB/min | 2nd half slope MB/min |")
        print("|---|---|---|---|---|---|")
        for pid, w in soak["workers"].items():
            print(f"| {pid} | {w['first_mb']} | {w['last_mb']} | {w['max_mb']} | {w['slope_mb_per_min']} "
                  f"| {w['second_half_slope_mb_per_min']} |")
    matrix = results.get("wsgi_matrix")
    if matrix:
        print("\n### WSGI servers (core 0)\n")
        cols = [c for c in ("bare", "discovery", "client_credentials", "userinfo", "refresh")
                if any(c in e for e in matrix)]
        print("| server | " + " | ".join(f"{c} req/s (p99 ms, CPU)" for c in cols) + " |")
        print("|---|" + "---|" * len(cols))
        for e in matrix:
            cells = []
            for c in cols:
                r = e.get(c)
                cells.append(f"{r['rate']:,.0f} ({r['p99']:.1f}, {r['server_cpu']:.2f})" if r else "-")
            print(f"| {e['server']} | " + " | ".join(cells) + " |")
    if results.get("profiles"):
        print("\nProfiles: " + ", ".join(results["profiles"].values()))


if __name__ == "__main__":
    sys.exit(main())
