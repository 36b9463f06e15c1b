"""Browser tests: Playwright driving Debian's Chromium against real servers on loopback.

The provider runs as a LiveServer (its issuer is its own URL) on the database and store of this
test run, with the back-channel logout worker on. Three demo relying parties run as
`python -m demo_rp` subprocesses: A and B as `make run` starts them, C with
RP_ACR_VALUES=urn:eid:loa:substantial (a service that needs two factors).

Without Chromium (/usr/bin/chromium, or E2E_CHROMIUM) these tests are skipped, saying how to
enable them; with CI=true they fail instead. Every test's browser context fails any request
that leaves 127.0.0.1 and checks the Content-Security-Policy of every provider page. A failed
test leaves a screenshot and the HTML of each of its pages under test-artifacts/e2e/.

One exception, named by the test that needs it: an upstream provider (a second instance of
this provider, the national e-ID of the federation test) is served on 127.0.0.1 but named
http://localhost:<port>, so that the browser keeps its cookies apart from ours (a browser has
one cookie jar per host name, whatever the port). `new_context(upstreams=[url])` lets the
browser reach that origin, and only that one, and checks its pages' CSP as the provider's.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import _clean
from tests.e2e.support import AXE_JS, NODE_DIR, Axe

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
ENABLE_HINT = "to enable them: `apt-get install chromium` (Debian's, at /usr/bin/chromium) and `pip install -e '.[test]'`"
ACR_SUBSTANTIAL = "urn:eid:loa:substantial"


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is not installed at {CHROMIUM}"
    return None


def _is_e2e(item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config, items):
    missing = _browser_missing()
    if missing is None or IN_CI:
        return  # in CI a missing browser fails in the `browser` fixture
    skip = pytest.mark.skip(reason=f"browser tests skipped: {missing}; {ENABLE_HINT}")
    for item in items:
        if _is_e2e(item):
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# --- servers -------------------------------------------------------------------------------

@dataclass
class RelyingParty:
    key: str
    client_id: str
    name: str
    agency: str
    port: int
    acr_values: str = ""
    secret: str = ""
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    app: object  # a provider app in this process, on the same database and store
    provider: str  # the provider's URL, which is also its issuer
    rps: dict[str, RelyingParty] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, *, process=None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process ended with status {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")
        time.sleep(0.1)


def _relying_parties() -> list[RelyingParty]:
    from idp.cli import DEMO_SYSTEMS

    a, b = DEMO_SYSTEMS
    return [
        RelyingParty("a", a["client_id"], a["name"], a["agency"], _free_port()),
        RelyingParty("b", b["client_id"], b["name"], b["agency"], _free_port()),
        RelyingParty("c", "demo-he-thong-c", "Hệ thống C — Cấp phiếu lý lịch tư pháp", "Sở Tư pháp tỉnh",
                     _free_port(), acr_values=ACR_SUBSTANTIAL),
    ]


@pytest.fixture(scope="package")
def stack(browser, migrated, base_config, tmp_path_factory):
    """The provider and the demo relying parties, up for the whole e2e package; state is
    cleaned (database rows, store keys) when the package is done."""
    from idp import create_app
    from idp.clients import services as client_services
    from idp.oidc.keys import ensure_keys
    from idp.timeutil import utcnow
    from tests.support.live import LiveServer

    logs = tmp_path_factory.mktemp("e2e-logs")
    app = create_app(base_config)
    rps = _relying_parties()
    with app.app_context():
        ensure_keys(now=utcnow(), config=app.config)  # not left to the server's first request
        for rp in rps:
            _, rp.secret = client_services.create_client(
                client_id=rp.client_id, name=rp.name, agency=rp.agency,
                redirect_uris=[rp.url + "/callback"],
                post_logout_redirect_uris=[rp.url + "/"],
                backchannel_logout_uri=rp.url + "/backchannel-logout",
                grant_types=["authorization_code", "refresh_token"],
                scopes=["openid", "profile", "email", "phone", "national_id"],
                config=app.config, now=utcnow(),
            )
    config = {**base_config, "SERVER_NAME": None, "BACKCHANNEL_WORKER": True, "BACKCHANNEL_RETRY_DELAY": 1}
    provider = None
    try:
        provider = LiveServer(config, issuer_is_url=True)
        for rp in rps:
            rp.log = logs / f"demo_rp_{rp.key}.log"
            env = {
                **os.environ,
                "RP_NAME": rp.name, "RP_CLIENT_ID": rp.client_id, "RP_CLIENT_SECRET": rp.secret,
                "RP_PORT": str(rp.port), "RP_BASE_URL": rp.url, "RP_ISSUER": provider.url,
                "RP_ACR_VALUES": rp.acr_values,
            }
            with rp.log.open("wb") as out:
                rp.process = subprocess.Popen([sys.executable, "-m", "demo_rp"], cwd=ROOT, env=env,
                                              stdout=out, stderr=subprocess.STDOUT)
        _wait_http(provider.url + "/.well-known/openid-configuration")
        for rp in rps:
            _wait_http(rp.url + "/healthz", process=rp.process)
        yield Stack(app=app, provider=provider.url, rps={rp.key: rp for rp in rps})
    finally:
        for rp in rps:
            if rp.process is not None and rp.process.poll() is None:
                rp.process.terminate()
        for rp in rps:
            if rp.process is not None:
                try:
                    rp.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    rp.process.kill()
                    rp.process.wait(timeout=10)
        if provider is not None:
            provider.stop()
        _clean(app)  # the servers are gone: nothing holds the tables any more


# --- the browser ---------------------------------------------------------------------------

@pytest.fixture(scope="package")
def browser():
    missing = _browser_missing()
    if missing:
        pytest.fail(f"browser tests must run in CI, but {missing}: {ENABLE_HINT}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


LOOPBACK_NAMES = ("localhost",)  # what an upstream on 127.0.0.1 may be called instead


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Watch:
    """What a context saw: requests off loopback, provider pages and their CSP, CSP reports.

    upstreams: origins named by a loopback name (http://localhost:<port>) that this context
    may reach too; their pages are checked like the provider's.
    """

    provider: str
    upstreams: tuple[str, ...] = ()
    outside: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    csp_problems: list[str] = field(default_factory=list)
    console_csp: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for origin in self.upstreams:
            assert urlsplit(origin).hostname in LOOPBACK_NAMES, f"{origin} is not a loopback name"

    def _allowed(self, url: str) -> bool:
        return url.startswith("data:") or urlsplit(url).hostname == "127.0.0.1" or _origin(url) in self.upstreams

    def request(self, request) -> None:
        if not self._allowed(request.url):
            self.outside.append(request.url)

    def route(self, route) -> None:
        url = route.request.url
        if self._allowed(url):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort("blockedbyclient")

    def response(self, response) -> None:
        if response.request.resource_type != "document":
            return
        if not any(response.url.startswith(origin + "/") for origin in (self.provider, *self.upstreams)):
            return
        if not 200 <= response.status < 300 and not 400 <= response.status < 600:
            return  # redirects carry no page
        self.pages.append(response.url)
        csp = response.headers.get("content-security-policy", "")
        if not csp:
            self.csp_problems.append(f"{response.url}: no Content-Security-Policy")
        elif re.search(r"'unsafe-(inline|eval)'", csp):
            self.csp_problems.append(f"{response.url}: {csp}")

    def console(self, message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.console_csp.append(message.text)

    def problems(self) -> list[str]:
        found = [f"request left 127.0.0.1: {url}" for url in dict.fromkeys(self.outside)]
        found += [f"CSP header: {p}" for p in self.csp_problems]
        found += [f"CSP violation reported by the browser: {t}" for t in self.console_csp]
        return found


def _artifact_folder(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("tests/e2e/")[-1])[:150]
    folder = ARTIFACTS / name
    shutil.rmtree(folder, ignore_errors=True)  # a previous run's pictures would mislead
    folder.mkdir(parents=True)
    return folder


def _save_artifacts(folder: Path, prefix: str, context) -> None:
    """A full-page screenshot and the current HTML of every page of the context."""
    for i, page in enumerate(context.pages):
        stem = folder / f"{prefix}page{i}"
        try:
            page.screenshot(path=f"{stem}.png", full_page=True)
            stem.with_suffix(".html").write_text(f"<!-- {page.url} -->\n" + page.content(), encoding="utf-8")
        except Exception as exc:  # a crashed page must not hide the test's own failure
            stem.with_suffix(".error.txt").write_text(repr(exc), encoding="utf-8")


@pytest.fixture
def new_context(browser, stack, request):
    """Make fresh browser profiles (no cookies, Vietnamese), each watched; when the test fails,
    or a request left loopback, or a provider page's CSP is wrong, their pages are kept as
    artifacts and the test fails. upstreams=[url]: origins on a loopback name it may reach."""
    made = []

    def make(*, upstreams=(), **options):
        watch = Watch(provider=stack.provider, upstreams=tuple(u.rstrip("/") for u in upstreams))
        context = browser.new_context(**{"locale": "vi-VN", "viewport": {"width": 1280, "height": 900}, **options})
        context.set_default_timeout(10_000)
        context.set_default_navigation_timeout(15_000)
        context.route("**/*", watch.route)
        context.on("request", watch.request)
        context.on("response", watch.response)
        context.on("console", watch.console)
        made.append((context, watch))
        return context

    yield make
    failed = any(getattr(request.node, f"rep_{when}", None) is not None
                 and getattr(request.node, f"rep_{when}").failed for when in ("setup", "call"))
    problems = [p for _, watch in made for p in watch.problems()]
    folder = _artifact_folder(request) if failed or problems else None
    for i, (context, _) in enumerate(made):
        if folder is not None:
            _save_artifacts(folder, f"context{i}-" if len(made) > 1 else "", context)
        context.close()
    if folder is not None:
        for rp in stack.rps.values():  # what the demo systems logged, e.g. a refused logout token
            if rp.log is not None and rp.log.exists():
                shutil.copy(rp.log, folder / rp.log.name)
    assert not problems, "\n".join(problems)
    assert failed or all(watch.pages for _, watch in made), "a browser context never showed a provider page"


@pytest.fixture
def context(new_context):
    return new_context()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture(scope="package")
def axe():
    """axe-core from tests/e2e/node (npm ci when node_modules is missing)."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            message = f"axe-core is not installed and npm is missing: run `npm ci` in {NODE_DIR}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300)
    return Axe(AXE_JS.read_text(encoding="utf-8"))
