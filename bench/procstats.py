"""CPU time and resident memory of a server's process tree, read from /proc (Linux only).

A Sampler watches one root process (gunicorn's master, granian's main process, node) and its
descendants: CPU seconds used between start() and stop() (utime + stime of every process in the
tree, including processes that appear meanwhile), and the peak VmRSS of each process, sampled a
few times per second. Only processes this benchmark started are read; nothing is signalled.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def children(pid: int) -> list[int]:
    """Direct children of pid (every thread's list)."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                out.extend(int(x) for x in (task / "children").read_text().split())
            except OSError:
                continue
    except OSError:
        return []
    return out


def tree(pid: int) -> list[int]:
    """pid and every descendant."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(children(p))
    return seen


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of one process, in clock ticks; None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def affinity(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


class Sampler:
    """CPU seconds and per-process peak RSS of root's tree between start() and stop()."""

    def __init__(self, root: int, *, workers_only: bool = True, interval: float = 0.25):
        self.root = root
        self.workers_only = workers_only  # peak RSS of the children (workers), not the master
        self.interval = interval
        self._start_ticks: dict[int, int] = {}
        self._last_ticks: dict[int, int] = {}
        self.peak_rss_kb: dict[int, int] = {}
        self.rss_series: list[tuple[float, dict[int, int]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.wall = 0.0
        self.cpu_seconds = 0.0

    def _sample(self) -> None:
        pids = tree(self.root)
        rss_now = {}
        for pid in pids:
            ticks = cpu_ticks(pid)
            if ticks is None:
                continue
            # A process born during the run started from 0 ticks.
            self._start_ticks.setdefault(pid, 0 if self._thread is not None else ticks)
            self._last_ticks[pid] = ticks
            if self.workers_only and pid == self.root and len(pids) > 1:
                continue
            rss = rss_kb(pid)
            if rss is not None:
                rss_now[pid] = rss
                self.peak_rss_kb[pid] = max(self.peak_rss_kb.get(pid, 0), rss)
        self.rss_series.append((time.monotonic(), rss_now))

    def start(self) -> Sampler:
        self._t0 = time.monotonic()
        self._sample()  # baseline ticks of the processes alive now
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> Sampler:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.wall = time.monotonic() - self._t0
        used = sum(self._last_ticks[p] - self._start_ticks.get(p, 0) for p in self._last_ticks)
        self.cpu_seconds = used / CLK_TCK
        return self

    @property
    def peak_worker_rss_mb(self) -> float:
        return max(self.peak_rss_kb.values(), default=0) / 1024

    @property
    def cpu_fraction(self) -> float:
        """Cores used on average (1.0 = one core fully busy)."""
        return self.cpu_seconds / self.wall if self.wall else 0.0


def cpu_seconds_of(pids: list[int]) -> float:
    return sum(cpu_ticks(p) or 0 for p in pids) / CLK_TCK


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def machine_busy_fraction(seconds: float = 1.0) -> float:
    """Share of all cores busy over a short window (from /proc/stat), 0..1."""

    def read():
        parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        values = [int(x) for x in parts]
        idle = values[3] + values[4]
        return sum(values), idle

    total0, idle0 = read()
    time.sleep(seconds)
    total1, idle1 = read()
    dt = total1 - total0
    return 0.0 if dt <= 0 else 1.0 - (idle1 - idle0) / dt
