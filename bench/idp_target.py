"""The e-ID provider as the benchmark runs it: production profile, its own PostgreSQL database
and Redis key prefix, served by gunicorn (or granian) pinned to one core.

Nothing here touches another database or another key: the database is idp_bench_<random>,
CREATEd at the start and DROPped at the end; the Redis keys all start with idpbench:<random>:
and only those are deleted.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests
from sqlalchemy.engine import make_url

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ISSUER = "https://idp.bench.local"
CLIENT_ID = "bench-rp"
REDIRECT_URI = "https://rp.bench.local/cb"
FORWARDED = {"Host": "idp.bench.local", "X-Forwarded-Proto": "https"}


class ServiceUnavailable(RuntimeError):
    """PostgreSQL or Redis cannot be reached: the benchmark cannot run."""


def _libpq(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_services(database_url: str, redis_url: str) -> None:
    url = make_url(database_url)
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise ServiceUnavailable(f"PostgreSQL at {url.host}:{url.port or 5432}: {exc}".strip()) from None
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"Redis at {redis_url}: {exc}") from None


class BenchDatabase:
    """idp_bench_<random> on the server named by admin_url; drop() removes it."""

    def __init__(self, admin_url: str):
        self.admin_url = make_url(admin_url)
        self.name = f"idp_bench_{secrets.token_hex(4)}"
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = self.admin_url.set(database=self.name).render_as_string(hide_password=False)

    def backend_pids(self) -> list[int]:
        """PostgreSQL server processes serving this database (for their CPU time)."""
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.name,)).fetchall()
        return [r[0] for r in rows]

    def commit_latency_ms(self, n: int = 15) -> float:
        """Median time of a one-row INSERT committed on its own (a WAL flush), in this database:
        what each commit of the provider waits for on this machine's disk at this moment."""
        with psycopg.connect(_libpq(make_url(self.url)), autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY)")
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                conn.execute("INSERT INTO bench_commit_probe DEFAULT VALUES")
                times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        return times[len(times) // 2]

    def drop(self) -> None:
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class BenchRedisPrefix:
    def __init__(self, url: str):
        self.url = url
        self.prefix = f"idpbench:{secrets.token_hex(4)}:"

    def cleanup(self) -> int:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=3)
        removed = 0
        batch = []
        for key in client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                removed += client.delete(*batch)
                batch = []
        if batch:
            removed += client.delete(*batch)
        return removed


def provider_env(database_url: str, redis_url: str, prefix: str, instance: Path) -> dict:
    """The production profile's environment, with secrets generated for this run only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({
        "IDP_PROFILE": "production",
        "IDP_DATABASE_URL": database_url,
        "IDP_REDIS_URL": redis_url,
        "IDP_STORE_PREFIX": prefix,
        "IDP_ISSUER": ISSUER,
        # Behind one TLS-terminating proxy, as in production: the generators send
        # X-Forwarded-Proto: https. (Authlib accepts loopback http anyway, so no
        # AUTHLIB_INSECURE_TRANSPORT is needed either way.)
        "IDP_PROXY_FIX": "1",
        "IDP_INSTANCE_PATH": str(instance),
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("AUTHLIB_INSECURE_TRANSPORT", None)
    for name in ("SECRET_KEY", "KEY_ENCRYPTION_KEY", "CLIENT_SECRET_KEY", "PAIRWISE_SALT"):
        env[f"IDP_{name}"] = secrets.token_urlsafe(48)
    return env


def _flask(env: dict, *args: str, timeout: float = 300) -> str:
    proc = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@dataclass
class Seed:
    client_id: str
    client_secret: str
    password: str
    scope: str
    citizens: list[dict]

    def as_dict(self) -> dict:
        return {"client_id": self.client_id, "client_secret": self.client_secret, "password": self.password,
                "scope": self.scope, "citizens": self.citizens}


def prepare(env: dict, *, citizens: int) -> Seed:
    """Migrations, signing keys, the benchmark client, citizens with their consent."""
    _flask(env, "db", "upgrade")
    _flask(env, "keys", "ensure")
    out = _flask(
        env, "clients", "create", "--client-id", CLIENT_ID, "--name", "Hệ thống đo tải",
        "--agency", "Benchmark", "--redirect-uri", REDIRECT_URI,
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--grant-type", "client_credentials",
        "--scope", "openid", "--scope", "profile", "--scope", "email", "--scope", "phone",
        "--access-token-lifetime", "3600",
    )
    match = re.search(r"client_secret: (\S+)", out)
    if not match:
        raise RuntimeError(f"no client secret in: {out}")
    proc = subprocess.run(
        [sys.executable, str(BENCH / "seed_idp.py"), "--client-id", CLIENT_ID, "--citizens", str(citizens)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{proc.stderr}")
    data = json.loads(proc.stdout)
    return Seed(CLIENT_ID, match.group(1), data["password"], data["scope"], data["citizens"])


@dataclass
class ServerSpec:
    """How the provider is served: gunicorn sync/gthread, or granian (WSGI)."""

    server: str = "gunicorn"  # gunicorn | granian
    workers: int = 3
    worker_class: str = "sync"  # sync | gthread (gunicorn)
    threads: int = 1  # gthread threads, or granian blocking threads
    cpu: str = "0"
    app: str = "wsgi:app"

    def label(self) -> str:
        if self.server == "granian":
            return f"granian {self.workers}w x {self.threads}t"
        if self.worker_class == "gthread":
            return f"gunicorn gthread {self.workers}w x {self.threads}t"
        return f"gunicorn sync {self.workers}w"


@dataclass
class Server:
    spec: ServerSpec
    env: dict
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, tools_bin: Path | None) -> list[str]:
        spec = self.spec
        bind = f"127.0.0.1:{self.port}"
        if spec.server == "gunicorn":
            cmd = [str(VENV_BIN / "gunicorn"), "--bind", bind, "--workers", str(spec.workers),
                   "--worker-class", spec.worker_class, "--backlog", "2048", "--timeout", "60",
                   "--graceful-timeout", "5"]
            if spec.worker_class == "gthread":
                cmd += ["--threads", str(spec.threads)]
            return ["taskset", "-c", spec.cpu, *cmd, spec.app]
        if spec.server == "granian":
            if tools_bin is None:
                raise RuntimeError("granian needs the bench tools venv")
            return ["taskset", "-c", spec.cpu, str(tools_bin / "granian"), "--interface", "wsgi",
                    "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(spec.workers),
                    "--blocking-threads", str(spec.threads), "--no-ws", "--log-level", "warning",
                    spec.app]
        raise ValueError(spec.server)

    def start(self, *, tools_bin: Path | None = None, ready_path: str = "/.well-known/openid-configuration",
              timeout: float = 60) -> Server:
        self.port = free_port()
        fd, name = tempfile.mkstemp(prefix="bench-server-", suffix=".log")
        self.log_path = Path(name)
        log = os.fdopen(fd, "w")
        self.proc = subprocess.Popen(self.command(tools_bin), cwd=ROOT, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.label()} exited:\n{self.log_tail()}")
            try:
                if requests.get(self.base + ready_path, headers=FORWARDED, timeout=2).status_code == 200:
                    # Every worker imports the app on its first request: warm them all.
                    for _ in range(self.spec.workers * 4):
                        requests.get(self.base + ready_path, headers=FORWARDED, timeout=10)
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.spec.label()} did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AttributeError):
            return ""

    def worker_pids(self) -> list[int]:
        from procstats import tree

        pids = tree(self.proc.pid)
        # taskset execs the server: the root is the server itself (gunicorn master, granian main).
        return [p for p in pids if p != self.proc.pid]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # Our own session (start_new_session): the server and its workers, nothing else.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
        self.proc = None


class IdpTarget:
    """Database + Redis prefix + environment + seed, for one benchmark run."""

    def __init__(self, database_url: str, redis_url: str, *, citizens: int = 8):
        check_services(database_url, redis_url)
        self.database_url = database_url
        self.redis_url = redis_url
        self.citizens = citizens
        self.db: BenchDatabase | None = None
        self.redis: BenchRedisPrefix | None = None
        self.instance: Path | None = None
        self.env: dict = {}
        self.seed: Seed | None = None

    def __enter__(self) -> IdpTarget:
        try:
            self.db = BenchDatabase(self.database_url)
            self.redis = BenchRedisPrefix(self.redis_url)
            self.instance = Path(tempfile.mkdtemp(prefix="idp-bench-instance-"))
            self.env = provider_env(self.db.url, self.redis_url, self.redis.prefix, self.instance)
            self.seed = prepare(self.env, citizens=self.citizens)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        errors = []
        if self.db is not None:
            try:
                self.db.drop()
            except Exception as exc:  # report, keep cleaning
                errors.append(f"dropping {self.db.name}: {exc}")
            self.db = None
        if self.redis is not None:
            try:
                self.redis.cleanup()
            except Exception as exc:
                errors.append(f"deleting {self.redis.prefix}*: {exc}")
            self.redis = None
        if self.instance is not None:
            shutil.rmtree(self.instance, ignore_errors=True)
            self.instance = None
        if errors:
            print("cleanup: " + "; ".join(errors), file=sys.stderr)
