"""Benchmark: import N legacy rows into PostgreSQL, then link them against N identities.

    IDP_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/legacy_bench.py --rows 1000000 [--format csv] [--reimport]

The URL names a server and a maintenance database; the benchmark CREATEs its own database
(idp_bench_<random>) there, runs the migrations in it, and DROPs it at the end. It never
touches another database.

Steps: N identities (with personal numbers and, for some, an old ID number) are bulk-loaded
with COPY; an export of N legacy rows is generated (bench/legacy_gen.py, same seed, so most
rows belong to those identities); `flask legacy import` runs as a subprocess, timed (wall
clock) with its peak RSS (getrusage RUSAGE_CHILDREN, taken in a small helper process that
runs only that command); then `flask legacy link`, timed the same way.
Targets: import of 1,000,000 rows <= 90 s and <= 300 MB; linking <= 120 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import legacy_gen  # noqa: E402
from pgdb import DEFAULT_URL, create_database, drop_database, libpq  # noqa: E402

from idp.identity.names import search_key  # noqa: E402

TARGETS = {"import_seconds": 90, "import_peak_mb": 300, "link_seconds": 120}


def flask(env: dict, *args: str, capture: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", *args]
    result = subprocess.run(  # noqa: S603 (our own command line)
        cmd, cwd=ROOT, env=env, capture_output=capture, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def load_identities(db_url: str, n: int, seed: int) -> float:
    """COPY n identities and their identifiers; returns seconds."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")  # naive UTC, as stored
    with psycopg.connect(libpq(db_url)) as conn, conn.cursor() as cur:
        with (
            cur.copy(
                "COPY identities (id, kind, full_name, name_search, birth_date, gender, phone, "
                "email, status, assurance_level, created_at, updated_at) FROM STDIN"
            ) as ident_copy,
        ):
            buffer = io.StringIO()
            ids = []
            for person in legacy_gen.people(n, seed):
                identity_id = uuid.UUID(int=person.index + 1, version=4)
                ids.append((identity_id, person.personal_number, person.id_number))
                buffer.write(
                    f"{identity_id}\tcitizen\t{person.full_name}\t{search_key(person.full_name)}\t"
                    f"{person.birth_date.isoformat()}\t{person.gender}\t{person.phone}\t"
                    f"{person.email}\tactive\t1\t{now}\t{now}\n"
                )
                if buffer.tell() > 1 << 20:
                    ident_copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            ident_copy.write(buffer.getvalue())
        with cur.copy(
            "COPY identifiers (identity_id, type, value, is_primary, valid_from) FROM STDIN"
        ) as copy:
            buffer = io.StringIO()
            for identity_id, number, cmnd in ids:
                buffer.write(f"{identity_id}\tpersonal_number\t{number}\tt\t{now}\n")
                if cmnd:
                    buffer.write(f"{identity_id}\tlegacy_id_number\t{cmnd}\tf\t{now}\n")
                if buffer.tell() > 1 << 20:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        conn.commit()
    with psycopg.connect(libpq(db_url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE identities")
        conn.execute("VACUUM ANALYZE identifiers")
    return time.perf_counter() - started


# Runs one command and reports its wall time and peak memory. A fresh, small interpreter runs it,
# so RUSAGE_CHILDREN holds that command alone: a child forked from this process (which holds a
# million identities' worth of memory by then) would report this process's pages as its own.
# The import reads in a second process (idp.legacy.child_reader), so the peak is also sampled
# as the sum of the proportional set sizes of the command and every process under it (pages
# divided among the processes that share them: PSS), 5 times a second.
_MEASURE = """
import json, os, resource, subprocess, sys, tempfile, time

def tree_pss_kb(pid):
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                total += next(int(l.split()[1]) for l in fh if l.startswith("Pss:"))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            pass
    return total

started = time.perf_counter()
out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")  # pipes could fill and block it
proc = subprocess.Popen(sys.argv[1:], stdout=out, stderr=err, text=True)
peak_sum = 0
while proc.poll() is None:
    peak_sum = max(peak_sum, tree_pss_kb(proc.pid))
    time.sleep(0.2)
out.seek(0); err.seek(0)
stdout, stderr = out.read(), err.read()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": time.perf_counter() - started, "returncode": proc.returncode,
                  "peak_mb": max(usage.ru_maxrss / 1024, peak_sum / 1024),
                  "largest_process_mb": usage.ru_maxrss / 1024,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "stdout": stdout, "stderr": stderr[-4000:]}))
"""


def timed_child(env: dict, *args: str) -> dict:
    """{seconds, peak_mb, stdout} of one `flask` command."""
    cmd = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", *args]
    done = subprocess.run(  # noqa: S603 (our own command line)
        [sys.executable, "-c", _MEASURE, *cmd], cwd=ROOT, env=env, capture_output=True,
        text=True, check=True,
    )
    measured = json.loads(done.stdout)
    if measured["returncode"] != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{measured['stdout']}\n{measured['stderr']}")
    return measured


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reimport", action="store_true", help="Time a second, idempotent import.")
    parser.add_argument("--keep-file", action="store_true")
    args = parser.parse_args(argv)
    admin_url = os.environ.get("IDP_BENCH_DATABASE_URL", DEFAULT_URL)
    results: dict = {"rows": args.rows, "format": args.format, "cpus": os.cpu_count(),
                     "load_average_before": [round(x, 2) for x in os.getloadavg()]}

    name, db_url = create_database(admin_url)
    print(f"database {name}", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    try:
        env = {
            **os.environ,
            "IDP_PROFILE": "development",
            "IDP_DATABASE_URL": db_url,
            "IDP_INSTANCE_PATH": str(workdir / "instance"),
            "IDP_BACKCHANNEL_WORKER": "false",
            "IDP_LOG_LEVEL": "WARNING",
        }
        flask(env, "db", "upgrade")
        results["identities_load_seconds"] = round(load_identities(db_url, args.rows, args.seed), 1)
        print(f"identities loaded in {results['identities_load_seconds']} s", file=sys.stderr)
        flask(env, "legacy", "add-system", "bench", "--name", "Hệ thống thử", "--agency",
              "Bench", "--hash-scheme", "md5_hex", "--salt-position", "before")

        export = workdir / f"legacy.{args.format}"
        started = time.perf_counter()
        with open(export, "wb") as out:
            legacy_gen.write(legacy_gen.legacy_rows(args.rows, seed=args.seed), out, args.format)
        results["generate_seconds"] = round(time.perf_counter() - started, 1)
        results["file_mb"] = round(export.stat().st_size / 1e6, 1)
        print(f"export generated ({results['file_mb']} MB)", file=sys.stderr)

        run = timed_child(env, "legacy", "import", "bench", str(export))
        results["import_seconds"] = round(run["seconds"], 1)
        results["import_peak_mb"] = round(run["peak_mb"], 1)
        results["import_largest_process_mb"] = round(run["largest_process_mb"], 1)
        results["import_client_cpu_seconds"] = round(run["cpu_seconds"], 1)
        results["import_output"] = run["stdout"].strip().splitlines()
        print(run["stdout"], file=sys.stderr)

        with psycopg.connect(libpq(db_url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE legacy_accounts")

        if args.reimport:
            run = timed_child(env, "legacy", "import", "bench", str(export))
            results["reimport_seconds"] = round(run["seconds"], 1)
            results["reimport_peak_mb"] = round(run["peak_mb"], 1)
            results["reimport_output"] = run["stdout"].strip().splitlines()

        run = timed_child(env, "legacy", "link", "bench")
        results["link_seconds"] = round(run["seconds"], 1)
        results["link_peak_mb"] = round(run["peak_mb"], 1)
        results["link_client_cpu_seconds"] = round(run["cpu_seconds"], 1)
        results["link_output"] = run["stdout"].strip().splitlines()
        print(run["stdout"], file=sys.stderr)
        results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        results["report"] = json.loads(flask(env, "legacy", "report", "--json").stdout)
    finally:
        drop_database(admin_url, name)
        if not args.keep_file:
            for path in sorted(workdir.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            workdir.rmdir()
    results["targets"] = TARGETS
    results["met"] = {
        "import_seconds": results["import_seconds"] <= TARGETS["import_seconds"],
        "import_peak_mb": results["import_peak_mb"] <= TARGETS["import_peak_mb"],
        "link_seconds": results["link_seconds"] <= TARGETS["link_seconds"],
    }
    print(json.dumps(results, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
