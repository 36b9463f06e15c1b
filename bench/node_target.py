"""The reference provider: npm's oidc-provider (bench/node), installed with `npm ci` at run time
and served by bench/node/server.mjs, pinned to one core like the e-ID provider."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"


class NodeUnavailable(RuntimeError):
    """The reference cannot run here (no node/npm, or `npm ci` failed): the reason says which."""


def node_version() -> str | None:
    node = shutil.which("node")
    if not node:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def npm_ci(timeout: float = 240) -> None:
    if not shutil.which("node") or not shutil.which("npm"):
        raise NodeUnavailable("node and npm are not installed")
    try:
        proc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        raise NodeUnavailable(f"npm ci did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise NodeUnavailable(f"npm ci failed: {(proc.stderr or proc.stdout).strip()[-600:]}")


class NodeServer:
    def __init__(self, *, cpu: str = "0", refresh_tokens: int = 512):
        self.cpu = cpu
        self.refresh_tokens = refresh_tokens
        self.proc: subprocess.Popen | None = None
        self.seed: dict = {}
        self._dir = Path(tempfile.mkdtemp(prefix="bench-node-"))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.seed['port']}"

    def start(self, timeout: float = 60) -> NodeServer:
        seed_file = self._dir / "seed.json"
        log = open(self._dir / "node.log", "w")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(
            ["taskset", "-c", self.cpu, "node", "server.mjs", "--port", "0", "--seed-file", str(seed_file),
             "--refresh-tokens", str(self.refresh_tokens)],
            cwd=NODE_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "NODE_ENV": "production"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NodeUnavailable(f"the reference server exited: {self.log_tail()}")
            if seed_file.exists():
                try:
                    self.seed = json.loads(seed_file.read_text())
                    return self
                except ValueError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise NodeUnavailable(f"the reference server did not start within {timeout} s")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self._dir / "node.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None
        shutil.rmtree(self._dir, ignore_errors=True)
