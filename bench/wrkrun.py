"""Run wrk (Debian's package) on core 1 against a loopback URL, with a generated Lua script.

The script is a BENCH settings table, bench/wrk/common.lua (pacing, JSON summary) and one
scenario file (bench/wrk/request.lua or refresh.lua). wrk stops by itself after the duration;
a timeout of duration + 30 s ends it otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

WRK_DIR = Path(__file__).resolve().parent / "wrk"


class WrkMissing(RuntimeError):
    pass


def wrk_path() -> str:
    path = shutil.which("wrk")
    if not path:
        raise WrkMissing("wrk is not installed: apt-get install -y wrk")
    return path


def _lua(value) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if "]==]" in value or value.startswith("\n"):
            raise ValueError(f"cannot quote {value!r} for Lua")
        return "[==[" + value + "]==]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{json.dumps(str(k))}] = {_lua(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Lua form for {value!r}")


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    errors: dict
    latency_ms: dict
    raw: dict = field(repr=False, default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        e = self.errors
        return e["connect"] + e["read"] + e["write"] + e["status"] + e["timeout"] + e.get("bad_body", 0)

    @property
    def ok_requests(self) -> int:
        return max(0, self.requests - self.errors["status"] - self.errors.get("bad_body", 0))


def run_wrk(
    url: str,
    *,
    scenario: str,
    settings: dict,
    duration: float,
    connections: int,
    threads: int = 1,
    cpu: str = "1",
    rate: float | None = None,
    timeout_s: float = 5.0,
) -> WrkResult:
    """Run one wrk load; settings become the BENCH table (method, path, headers, body...)."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "::1"):
        raise ValueError(f"loopback only: {url}")
    connections = max(connections, threads)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        result_file = Path(tmp) / "result.json"
        bench = {**settings, "threads": threads, "result_file": str(result_file), "rate": rate or 0}
        script = Path(tmp) / "script.lua"
        script.write_text(
            "BENCH = " + _lua(bench) + "\n"
            + (WRK_DIR / "common.lua").read_text() + "\n"
            + (WRK_DIR / f"{scenario}.lua").read_text()
        )
        seconds = max(1, int(round(duration)))
        cmd = [
            "taskset", "-c", cpu, wrk_path(),
            "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
            "--timeout", f"{timeout_s:g}s", "-s", str(script), url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
        if proc.returncode != 0 or not result_file.exists():
            raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        raw = json.loads(result_file.read_text())
        raw["stderr"] = proc.stderr.strip()[-600:]
    pct = raw["latency_us"]["percentiles"]
    latency = {
        "mean": raw["latency_us"]["mean"] / 1000,
        "max": raw["latency_us"]["max"] / 1000,
        "p50": pct["50"] / 1000,
        "p90": pct["90"] / 1000,
        "p99": pct["99"] / 1000,
    }
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        errors=raw["errors"],
        latency_ms=latency,
        raw=raw,
    )


def run_python(
    url: str,
    *,
    scenario: str,
    settings: dict,
    duration: float,
    connections: int,
    cpu: str = "1",
) -> WrkResult:
    """The same scenario with bench/loadgen.py (threads + requests) when wrk is missing."""
    import sys

    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "::1"):
        raise ValueError(f"loopback only: {url}")
    with tempfile.TemporaryDirectory(prefix="bench-pyload-") as tmp:
        settings_file = Path(tmp) / "settings.json"
        settings_file.write_text(json.dumps(settings))
        cmd = ["taskset", "-c", cpu, sys.executable, str(WRK_DIR.parent / "loadgen.py"), "requests",
               "--base", url, "--kind", scenario, "--settings", str(settings_file),
               "--connections", str(connections), "--duration", str(duration)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"python load generator failed: {proc.stderr[-1500:]}")
        out = json.loads(proc.stdout)
    lat = out["latency_ms"]
    raw = {"stderr": f"first bad answer: {out['sample']}" if out.get("sample") else ""}
    return WrkResult(requests=out["requests"], duration_s=out["duration_s"], errors=out["errors"],
                     latency_ms={k: lat[k] for k in ("mean", "max", "p50", "p90", "p99")}, raw=raw)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_load(url: str, *, generator: str, scenario: str, settings: dict, duration: float, connections: int,
             cpu: str = "1", rate: float | None = None) -> WrkResult:
    """wrk, or the Python generator (generator="python"; no paced runs)."""
    if generator == "python":
        if rate:
            raise ValueError("paced runs need wrk")
        return run_python(url, scenario=scenario, settings=settings, duration=duration,
                          connections=connections, cpu=cpu)
    return run_wrk(url, scenario=scenario, settings=settings, duration=duration, connections=connections,
                   cpu=cpu, rate=rate)
