"""`make run`: the provider under granian (SERVER=gunicorn for gunicorn) and the two demo
systems, stopped together.

Reads instance/demo-systems.json, written by `flask seed-demo` (client ids and fresh secrets).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    instance = Path(os.environ.get("IDP_INSTANCE_PATH", ROOT / "instance"))
    systems = json.loads((instance / "demo-systems.json").read_text())
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "5000")
    issuer = os.environ.get("IDP_ISSUER", f"http://{host}:{port}")
    children = []
    for system in systems:
        env = {
            **os.environ,
            "RP_NAME": system["name"],
            "RP_CLIENT_ID": system["client_id"],
            "RP_CLIENT_SECRET": system["secret"],
            "RP_PORT": str(system["port"]),
            "RP_BASE_URL": system["base_url"],
            "RP_ISSUER": issuer,
        }
        children.append(subprocess.Popen([sys.executable, "-m", "demo_rp"], cwd=ROOT, env=env))
    bin_dir = Path(sys.executable).parent
    workers = os.environ.get("WORKERS", "2")
    if os.environ.get("SERVER", "granian") == "gunicorn":
        server = [str(bin_dir / "gunicorn"), "--workers", workers, "--bind", f"{host}:{port}",
                  "--access-logfile", "-", "wsgi:app"]
    else:
        server = [str(bin_dir / "granian"), "--interface", "wsgi", "--host", host, "--port", port,
                  "--workers", workers, "--blocking-threads", "4", "--no-ws", "--access-log", "wsgi:app"]
    provider = subprocess.Popen(server, cwd=ROOT)  # noqa: S603 (our own command line)
    children.append(provider)

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return provider.wait()
    finally:
        stop()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
