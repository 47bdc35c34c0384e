"""``python -m bench.faults``: hook calls under each FHIR fault, next to a no-fault baseline, in one run.

Throughput: the app runs in this process (WSGI calls, as ``python -m bench`` makes them) with a 1 s call
deadline; ``--callers`` threads call it back to back for ``--seconds`` per fault. Each request has only
the patient prefetched, so the four other keys are fetched from a loopback FHIR server
(``bench/fallback.py``) that misbehaves on its Observation queries (or, for slow DNS, whose name takes
10 s to resolve). Printed per fault: calls/s, p50/p99/max latency, the statuses, the reason the
data-quality card gives, and the service's FHIR threads alive half a second afterwards (fetch pool at
most 16, name resolution at most 4, one header timer per query in flight): they must not pile up.

Memory: one call per hostile body in a fresh process (``bench/fhir_rss.py``), default settings (50 MiB
cap) but a 120 s call deadline, so that a big valid body is read whole however busy the machine: peak
RSS growth and what the process keeps. ``--before TREE`` measures an older tree of the
service too (e.g. ``git archive <commit> | tar -x -C TREE``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from cds_service import Settings, content, create_app
from cds_service.facts import utc_today
from cds_service.rules import load_rules

from .fallback import slow_fhir_server
from .fhir_rss import observations_reason, patient_only
from .patients import hook_request
from .run import call_app, post_environ

HERE = Path(__file__).resolve().parent
# (label, fault on Observation queries, FHIR server host name); "slow-dns" delays resolving "localhost".
THROUGHPUT = [
    ("no fault (baseline)", None, "127.0.0.1"),
    ("body trickled, 1 byte/s", "trickle", "127.0.0.1"),
    ("headers trickled, 1 byte/s", "trickle_headers", "127.0.0.1"),
    ("accepts, never answers", "silent", "127.0.0.1"),
    ("endless body (cap 50 MiB)", "endless", "127.0.0.1"),
    ("JSON 100,000 levels deep", "deep", "127.0.0.1"),
    ("name resolution takes 10 s", None, "localhost"),
]
MEMORY = [
    ("valid 45 MiB body", "big"),
    ("endless chunked body", "endless"),
    ("endless gzip body", "gzip"),
    ("body announced as 2 GB", "huge"),
]
DEADLINE = 1.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextmanager
def slow_name_resolution(seconds: float) -> Iterator[None]:
    """``localhost`` takes ``seconds`` to resolve (released early when the block ends)."""
    resolve, released = socket.getaddrinfo, threading.Event()

    def slow(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "localhost":
            released.wait(seconds)
        return resolve(host, *args, **kwargs)

    socket.getaddrinfo = slow
    try:
        yield
    finally:
        socket.getaddrinfo = resolve
        released.set()


def run_fault(app: Any, request: dict, fault: str | None, host: str, seconds: float, callers: int) -> dict:
    faults = {"Observation": fault} if fault else {}
    with slow_fhir_server(request["prefetch"], 0, faults, host) as server:
        body = json.dumps(patient_only(request, server.base_url)).encode()
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        lock = threading.Lock()
        until = time.perf_counter() + seconds

        def caller() -> None:
            while time.perf_counter() < until:
                started = time.perf_counter()
                status, answer = call_app(app, post_environ(body))
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    statuses[status.split()[0]] += 1
                    reasons[observations_reason(answer)] += 1

        started = time.perf_counter()
        with slow_name_resolution(10) if host == "localhost" else nullcontext():
            threads = [threading.Thread(target=caller) for _ in range(callers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        wall = time.perf_counter() - started
        time.sleep(0.5)  # what a fault leaves behind is counted after the calls' own threads are done
        return {
            "calls": len(latencies),
            "calls_per_s": len(latencies) / wall,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "max_ms": max(latencies) * 1000,
            "statuses": dict(statuses),
            "reason": reasons.most_common(1)[0][0],
            "threads": sum(t.name.startswith("fhir") for t in threading.enumerate()),
        }


def report_throughput(seconds: float, callers: int, workdir: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{workdir / 'faults.sqlite3'}", call_deadline=DEADLINE)
    app = create_app(settings)
    request = hook_request(100, app.extensions["cds_runtime"].content, utc_today())
    print(f"\n## Hook calls under FHIR faults: {callers} callers, {seconds:g} s each, "
          f"call deadline {DEADLINE:g} s\n")  # fmt: skip
    print("| fault (on Observation queries) | calls | calls/s | p50 ms | p99 ms | max ms | statuses | "
          "observations in the data-quality card | FHIR threads after |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---|---|---:|")
    for label, fault, host in THROUGHPUT:
        print(f"running: {label} ...", file=sys.stderr, flush=True)
        r = run_fault(app, request, fault, host, seconds, callers)
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
        print(f"| {label} | {r['calls']} | {r['calls_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
              f"{r['max_ms']:.0f} | {statuses} | {r['reason']} | {r['threads']} |", flush=True)  # fmt: skip


def measure_memory(base_url: str, tree: Path, workdir: Path) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "bench.fhir_rss", base_url, str(workdir / "rss.sqlite3")],
        cwd=tree,
        env={**os.environ, "CDS_CALL_DEADLINE": "120"},  # memory, not time, is measured here
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def report_memory(before: Path | None, workdir: Path) -> None:
    trees = [("this tree", HERE.parent)]
    if before is not None:
        shutil.copy(HERE / "fhir_rss.py", before / "bench" / "fhir_rss.py")
        trees.append((f"before ({before})", before))
    request = hook_request(100, content.load(Settings().content_dir, load_rules()), utc_today())
    mib = 2**20
    print("\n## Memory of one call whose Observation query meets a hostile body (fresh process, "
          "cap 50 MiB)\n")  # fmt: skip
    print("| body | service | status | peak RSS growth MiB | kept after the call MiB | observations |")
    print("|---|---|---|---:|---:|---|")
    for label, fault in MEMORY:
        with slow_fhir_server(request["prefetch"], 0, {"Observation": fault}) as server:
            for name, tree in trees:
                print(f"running: {label}, {name} ...", file=sys.stderr, flush=True)
                r = measure_memory(server.base_url, tree, workdir)
                print(f"| {label} | {name} | {r['status']} | {r['peak_growth'] / mib:.0f} | "
                      f"{r['kept_growth'] / mib:.0f} | {r['reason']} |", flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6, help="calls per fault for so long (%(default)s)")
    parser.add_argument("--callers", type=int, default=4, help="concurrent callers (%(default)s)")
    parser.add_argument("--before", type=Path, help="an older tree of the service to measure memory in too")
    parser.add_argument("--skip", default="", help="comma-separated: throughput,memory")
    args = parser.parse_args(argv)
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory(prefix="cds-faults-") as tmp:
        if "throughput" not in skip:
            report_throughput(args.seconds, args.callers, Path(tmp))
        if "memory" not in skip:
            report_memory(args.before, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
