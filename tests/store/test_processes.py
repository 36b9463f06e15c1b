"""Races between real OS processes, each with its own app, on both backends."""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import time
import traceback
from collections import Counter

import pytest

WORKERS = 4
KEYS = 50
# Whole-race limit; each test stays far below it.
DEADLINE = 30


def _worker(config, barrier, results, worker_id, job):
    """Child process: build an app, wait for the others, run job, report the outcome."""
    try:
        from idp import create_app
        from idp.extensions import db

        app = create_app(config)
        with app.app_context():
            store = app.extensions["idp_store"]
            store.ping()  # connect before the start line
            barrier.wait(timeout=DEADLINE)
            if job == "take":
                out = [(k, v) for k in _keys("take") if (v := store.take(k)) is not None]
            elif job == "incr":
                out = [store.incr("race:incr", 60) for _ in range(KEYS)]
            elif job == "set_if_absent":
                out = [k for k in _keys("sia") if store.set_if_absent(k, f"w{worker_id}", 60)]
            elif job == "set_add":
                # Odd workers add with a short ttl: it must never shorten the set's life.
                ttl = 1 if worker_id % 2 else 60
                for i in range(KEYS // 2):
                    store.set_add("race:set", f"w{worker_id}-{i}", ttl)
                out = None
            else:
                raise ValueError(job)
            db.engine.dispose()
        results.put((worker_id, "ok", out))
    except BaseException:
        results.put((worker_id, "error", traceback.format_exc()))


def _keys(name):
    return [f"race:{name}:{i}" for i in range(KEYS)]


@pytest.fixture(params=["sql", "redis"])
def backend(request, make_app, base_config):
    """(config for the children, store of the parent) on one backend."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    config = {**base_config, "REDIS_URL": url}
    app = make_app(REDIS_URL=url)
    with app.app_context():
        yield config, app.extensions["idp_store"]


def _race(config, job):
    """Run job in WORKERS spawned processes started together; return {worker_id: output}."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(config, barrier, results, i, job), daemon=True)
        for i in range(WORKERS)
    ]
    for p in procs:
        p.start()
    outputs, errors = {}, []
    deadline = time.monotonic() + DEADLINE
    try:
        while len(outputs) + len(errors) < WORKERS:
            try:
                worker_id, status, out = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue_module.Empty:
                pytest.fail(f"{job}: workers did not finish within {DEADLINE}s")
            if status == "ok":
                outputs[worker_id] = out
            else:
                errors.append(out)
        for p in procs:
            p.join(timeout=10)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    assert not errors, "\n".join(errors)
    return outputs


def test_take_once_across_processes(backend):
    config, store = backend
    for i, key in enumerate(_keys("take")):
        store.set(key, f"v{i}", 60)
    outputs = _race(config, "take")
    taken = [item for out in outputs.values() for item in out]
    counts = Counter(k for k, _ in taken)
    assert counts == Counter({k: 1 for k in _keys("take")})
    assert sorted(taken) == sorted((k, f"v{i}") for i, k in enumerate(_keys("take")))
    assert all(store.get(k) is None for k in _keys("take"))


def test_incr_across_processes(backend):
    config, store = backend
    outputs = _race(config, "incr")
    values = sorted(v for out in outputs.values() for v in out)
    # Every increment was counted once and returned a distinct value.
    assert values == list(range(1, WORKERS * KEYS + 1))
    assert store.get("race:incr") == str(WORKERS * KEYS)
    assert store.ttl("race:incr") <= 60


def test_set_if_absent_one_winner(backend):
    config, store = backend
    outputs = _race(config, "set_if_absent")
    winners = {}
    for worker_id, keys in outputs.items():
        for key in keys:
            assert key not in winners, f"{key} won by w{winners[key]} and w{worker_id}"
            winners[key] = worker_id
    assert set(winners) == set(_keys("sia"))
    assert all(store.get(k) == f"w{w}" for k, w in winners.items())


def test_set_add_never_shortened_across_processes(backend):
    config, store = backend
    _race(config, "set_add")
    expected = {f"w{w}-{i}" for w in range(WORKERS) for i in range(KEYS // 2)}
    assert store.set_members("race:set") == expected
    # The short-ttl additions must not have cut the set's life.
    time.sleep(1.2)
    assert store.set_members("race:set") == expected
    assert store.ttl("race:set") > 50
