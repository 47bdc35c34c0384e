"""``python -m bench``: how long a hook call takes next to reading its JSON, from 100 to 50,000 labs.

For each patient size, in one process and interleaved, over repeated runs:

  (a) ``json.loads`` of the request body: the floor;
  (b) ``json.loads`` plus every prefetched resource validated with its fhir.resources R4B model: the
      naive baseline (``bench/full_parse.py``);
  (c) the service's handling of the same request through its WSGI app, end to end (a direct WSGI call;
      the card log on a temporary SQLite file).

Then: the Synthea sample patients through all four hooks (when ``fhir_fixtures/synthea/derive.py`` has
made them), the FHIR fallback against a server that answers each query after 100 ms, the peak RSS growth of
one 50,000-Observation call (fresh subprocess), and a load run against ``cds-service serve``.
Patients are generated with a seeded generator (``bench/patients.py``); nothing is written to the repo.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from flask import Flask
from werkzeug.test import create_environ

from cds_service import Settings, create_app
from cds_service.facts import utc_today
from cds_service.fixtures import synthea_corpus, synthea_request
from cds_service.services import SERVICES, prefetch_keys

from . import card_load, full_parse, load
from .fallback import fallback_request, slow_fhir_server
from .patients import hook_request

SERVICE_PATH = "/cds-services/baricitinib-order-select"
SIZES = (100, 1_000, 10_000, 50_000)
# Repetitions of (a, b, c) per size: fewer for big patients, so that the whole run takes a few minutes.
REPEATS = {100: (300, 20, 300), 1_000: (100, 6, 100), 10_000: (20, 2, 20), 50_000: (6, 1, 6)}
QUICK = {100: (60, 5, 60), 1_000: (20, 2, 20), 10_000: (5, 1, 5), 50_000: (2, 1, 2)}


def call_app(app: Flask, environ: dict[str, Any]) -> tuple[str, bytes]:
    """One WSGI call: the status line and the whole response body."""
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> None:
        status.append(line)

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    return status[0], body


def post_environ(body: bytes, path: str = SERVICE_PATH) -> dict[str, Any]:
    return create_environ(path=path, method="POST", data=body, content_type="application/json")


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.seconds.append(value)

    def pct(self, p: float) -> float:
        """Nearest-rank percentile, in ms."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) * 1000

    def cell(self) -> str:
        return f"{self.median:,.1f} / {self.pct(95):,.1f} / {self.pct(99):,.1f}"


def timed(work: Callable[[], Any]) -> float:
    """Seconds to run ``work`` and free what it returns: a service frees the parsed body of every call,
    and (c) counts that, so (a) and (b) count it too."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


@dataclass
class Row:
    size: int
    body_bytes: int
    a: Samples
    a_no_gc: Samples
    b: Samples
    c: Samples
    resources: int
    cards: list[str]


def measure_size(app: Flask, size: int, repeats: tuple[int, int, int], seed: int) -> Row:
    content = app.extensions["cds_runtime"].content
    body = orjson.dumps(hook_request(size, content, utc_today(), seed))  # only the bytes are kept
    gc.collect()
    status, answer = call_app(app, post_environ(body))
    if not status.startswith("200"):
        raise RuntimeError(f"{size} Observations: the service answered {status}: {answer[:300]!r}")
    cards = [c["source"]["topic"]["code"] for c in orjson.loads(answer)["cards"]]
    valid, invalid = full_parse.validate_everything(body)
    if invalid:
        raise RuntimeError(f"{size} Observations: the generator made {invalid} invalid resources")
    n_a, n_b, n_c = repeats
    a, a_no_gc, b, c = Samples(), Samples(), Samples(), Samples()
    for i in range(max(n_a, n_c)):
        if i < n_a:
            a.add(timed(lambda: json.loads(body)))
        if i < n_c:
            environ = post_environ(body)
            c.add(timed(lambda environ=environ: call_app(app, environ)))
        if i < n_a:
            gc.disable()
            try:
                a_no_gc.add(timed(lambda: json.loads(body)))
            finally:
                gc.enable()
        if i < n_b:
            b.add(timed(lambda: full_parse.validate_everything(body)))
            gc.collect()
    progress(
        f"  {size:>6,} Observations: {len(body) / 1e6:.2f} MB, a {a.median:.1f} ms, b {b.median:.1f} ms, "
        f"c {c.median:.1f} ms"
    )
    return Row(size, len(body), a, a_no_gc, b, c, valid, cards)


def table(rows: Iterable[Row]) -> str:
    lines = [
        "| Observations | body | (a) json.loads, median / p95 / p99 ms | (b) full R4B validation | "
        "(c) service, WSGI end to end | c/a | b/c | a with GC paused | c/a (GC paused) |",
        "|---:|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.size:,} | {r.body_bytes / 1e6:.2f} MB | {r.a.cell()} | {r.b.cell()} | {r.c.cell()} | "
            f"{r.c.median / r.a.median:.2f} | {r.b.median / r.c.median:.0f} | {r.a_no_gc.median:,.1f} | "
            f"{r.c.median / r.a_no_gc.median:.2f} |"
        )
    return "\n".join(lines)


def report_corpus(app: Flask, repeats: int) -> None:
    """Each Synthea patient through each hook, ``repeats`` times, interleaved: time per call and cards."""
    corpus = synthea_corpus()
    if not corpus:
        print("\n## Synthea corpus\n\nSkipped: no patients (run fhir_fixtures/synthea/derive.py <mirror>).")
        return
    today = utc_today()
    bodies = {(s, p.stem): orjson.dumps(synthea_request(p, s.hook, today)) for s in SERVICES for p in corpus}
    times = {s.hook: Samples() for s in SERVICES}
    cards: dict[str, list[int]] = {s.hook: [] for s in SERVICES}
    for (service, _), body in bodies.items():
        status, answer = call_app(app, post_environ(body, f"/cds-services/{service.id}"))
        if not status.startswith("200"):
            raise RuntimeError(f"Synthea patient, {service.hook}: the service answered {status}")
        cards[service.hook].append(len(orjson.loads(answer)["cards"]))
    for _ in range(repeats):
        for (service, _), body in bodies.items():
            environ = post_environ(body, f"/cds-services/{service.id}")
            times[service.hook].add(timed(lambda environ=environ: call_app(app, environ)))
    sizes = sorted(len(b) for b in bodies.values())
    print(f"\n## Synthea corpus: {len(corpus)} patients x {len(SERVICES)} hooks, {repeats} runs each\n")
    print(f"Request bodies {sizes[0] / 1e3:.0f} to {sizes[-1] / 1e3:.0f} kB, median {statistics.median(sizes) / 1e3:.0f} kB.\n")
    print("| hook | median ms | p95 ms | p99 ms | cards per call (mean) |\n|---|---:|---:|---:|---:|")
    for hook, samples in times.items():
        print(f"| {hook} | {samples.median:.2f} | {samples.pct(95):.2f} | {samples.pct(99):.2f} | "
              f"{statistics.mean(cards[hook]):.1f} |")  # fmt: skip


def report_card_load(app: Flask) -> list[dict[str, Any]]:
    """Cards per call and words of clinical detail per card (the card-design targets)."""
    client = app.test_client()
    ids = {"order-select": "baricitinib-order-select", "patient-view": "baricitinib-patient-view"}
    rows = card_load.measure(lambda hook, body: client.post(f"/cds-services/{ids[hook]}", json=body).get_json(),
                             utc_today())  # fmt: skip
    print("\n## What a prescriber reads: cards per call, words of clinical detail per card\n")
    print("| corpus | situation | calls | cards per call, median (mean) | words per card, median / max | cards over 60 words | summaries over 100 characters (longest) | longest topics (max words) |")
    print("|---|---|---:|---|---|---:|---|---|")
    for r in rows:
        longest = ", ".join(f"{t} {n}" for n, t in r["longest"])
        print(f"| {r['corpus']} | {r['situation']} | {r['calls']} | {r['cards_median']:g} ({r['cards_mean']:.1f}) | "
              f"{r['words_median']:g} / {r['words_max']} | {r['over_60']} of {r['cards']} | "
              f"{r['summaries_over_100']} ({r['summary_max']}) | {longest} |")  # fmt: skip
    return rows


def measure_fallback(app: Flask, seed: int, delay: float = 0.1, repeats: int = 5) -> dict[str, float]:
    content = app.extensions["cds_runtime"].content
    request = hook_request(100, content, utc_today(), seed)
    calls = Samples()
    with slow_fhir_server(request["prefetch"], delay) as server:
        body = orjson.dumps(fallback_request(request, server.base_url))
        for _ in range(repeats):
            server.served.clear()
            environ = post_environ(body)
            started = time.perf_counter()
            status, answer = call_app(app, environ)
            calls.add(time.perf_counter() - started)
            if not status.startswith("200") or len(server.served) != len(prefetch_keys(content)):
                raise RuntimeError(f"fallback call: {status}, {len(server.served)} queries: {answer[:300]!r}")
            queries = sorted(seconds for _, seconds in server.served)
    return {
        "queries": len(queries),
        "query_ms": statistics.median(queries) * 1000,
        "sum_ms": sum(queries) * 1000,
        "call_median_ms": calls.median,
        "call_max_ms": calls.pct(100),
    }


def measure_rss(app: Flask, seed: int, workdir: Path, size: int = 50_000) -> dict[str, Any]:
    content = app.extensions["cds_runtime"].content
    body_path = workdir / f"rss-{size}.json"
    body_path.write_bytes(orjson.dumps(hook_request(size, content, utc_today(), seed)))
    found: dict[str, Any] = {"size": size}
    for mode in ("json", "orjson", "service"):
        output = subprocess.run(
            [sys.executable, "-m", "bench.rss", mode, str(body_path), str(workdir / "rss.sqlite3")],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        found["body_bytes"] = result["body_bytes"]
        found[f"{mode}_growth"] = result["peak_after"] - result["rss_before"]
    body_path.unlink()
    return found


class OtherLoad:
    """The share of the machine that processes other than this one took between start() and share()."""

    def __init__(self) -> None:
        self.ticks, self.wall, self.own = load.busy_ticks(), time.perf_counter(), os.times()

    def share(self) -> float:
        mine = sum(os.times()[:2]) - sum(self.own[:2])
        others = (load.busy_ticks() - self.ticks) / os.sysconf("SC_CLK_TCK") - mine
        return max(0.0, others) / ((time.perf_counter() - self.wall) * (os.cpu_count() or 1))


def report_table(app: Flask, settings: Settings, sizes: list[int], repeats: dict, seed: int) -> list[Row]:
    progress("timing (a) json.loads, (b) full R4B validation, (c) the service, per size ...")
    other = OtherLoad()
    plan = {n: repeats.get(n, (5, 1, 5)) for n in sizes}
    rows = [measure_size(app, n, plan[n], seed) for n in sizes]
    runs = ", ".join(f"{n:,}: a {r[0]}, b {r[1]}, c {r[2]}" for n, r in plan.items())
    print(f"\n## Hook call time, median / p95 / p99 in ms (runs per size: {runs})\n")
    print(table(rows))
    print(f"\nOther processes took {other.share():.0%} of the machine while the table was measured.")
    largest, limit = max(rows, key=lambda r: r.size), settings.max_body_bytes
    verdict = "admitted" if largest.body_bytes <= limit else "REFUSED"
    print(
        f"\nBody limit (CDS_MAX_BODY_BYTES): {limit:,} bytes ({limit / 2**20:g} MiB, {limit / 1e6:.1f} MB); "
        f"the {largest.size:,}-Observation body, {largest.body_bytes:,} bytes, was {verdict} "
        "(c answered 200)."
    )
    small = rows[0]
    print(
        f"\nFixed overhead, {small.size} Observations: c = {small.c.median:.2f} ms median "
        f"(p99 {small.c.pct(99):.2f} ms), c - a = {small.c.median - small.a.median:.2f} ms. "
        f"Cards: {', '.join(small.cards)}."
    )
    return rows


def report_fallback(app: Flask, seed: int) -> dict[str, float]:
    progress("FHIR fallback against a server answering each query after 100 ms ...")
    fb = measure_fallback(app, seed)
    print(
        f"\n## FHIR fallback (no prefetch; {fb['queries']} queries, each answered after 100 ms)\n\n"
        f"whole call: {fb['call_median_ms']:.0f} ms median (max {fb['call_max_ms']:.0f} ms); "
        f"one query: {fb['query_ms']:.0f} ms; the {fb['queries']} queries one after the other: "
        f"{fb['sum_ms']:.0f} ms"
    )
    return fb


def report_rss(app: Flask, seed: int, workdir: Path) -> dict[str, Any]:
    progress("peak RSS of one 50,000-Observation call, in a fresh process ...")
    rss = measure_rss(app, seed, workdir)
    mib, body = 1024 * 1024, rss["body_bytes"]
    print(
        f"\n## Memory ({rss['size']:,} Observations, body {body / mib:.1f} MiB)\n\n"
        f"peak RSS growth of one call: {rss['service_growth'] / mib:.0f} MiB = "
        f"{rss['service_growth'] / body:.1f} x the body; json.loads alone: "
        f"{rss['json_growth'] / mib:.0f} MiB = {rss['json_growth'] / body:.1f} x; orjson.loads alone (the "
        f"service's parser): {rss['orjson_growth'] / mib:.0f} MiB = {rss['orjson_growth'] / body:.1f} x"
    )
    return rss


def report_load(
    app: Flask, seed: int, workdir: Path, seconds: float, connections: int, tool: str
) -> dict[str, Any]:
    workers = Settings().workers
    progress(f"load run: cds-service serve ({workers} workers), {seconds:g} s ...")
    body = orjson.dumps(hook_request(100, app.extensions["cds_runtime"].content, utc_today(), seed))
    r = load.load_run(body, workdir, seconds, connections, tool)
    print(
        f"\n## Load: cds-service serve, {workers} workers, 100-Observation patient, {seconds:g} s, "
        f"{r['tool']}\n\n"
        f"{r['calls_per_s']:.0f} calls/s; latency p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, "
        f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms; {r['requests']:,} calls, {r['errors']} errors; "
        f"service CPU {r['service_cpu_ms_per_call']:.1f} ms per call; other processes took "
        f"{r['others_cpu_share']:.0%} of the machine meanwhile"
    )
    return r


def targets(
    rows: list[Row] | None,
    fallback: dict[str, float] | None,
    rss: dict[str, Any] | None,
    load_run: dict | None,
    cards: list[dict[str, Any]] | None = None,
) -> list[tuple[str, str, bool]]:
    """(target, what this run measured, met?) for each target of the issue that this run measured."""
    found = []
    for r in cards or []:
        limit = 2 if r["situation"] == "new start" else 1
        found.append((f"{r['corpus']}, {r['situation']}: at most {limit} card(s) a call (median)",
                      f"{r['cards_median']:g}", r["cards_median"] <= limit))  # fmt: skip
        found.append((f"{r['corpus']}, {r['situation']}: no card over about 60 words of clinical detail",
                      f"max {r['words_max']} ({r['over_60']} of {r['cards']} over 60)", r["over_60"] == 0))  # fmt: skip
    by_size = {r.size: r for r in rows or []}
    if 10_000 in by_size:
        ratio = by_size[10_000].c.median / by_size[10_000].a.median
        found.append(("c/a at 10,000 Observations <= 1.5", f"{ratio:.2f}", ratio <= 1.5))
    if 100 in by_size:
        small = by_size[100].c.median
        found.append(("fixed overhead (c, 100 Observations) < 5 ms", f"{small:.2f} ms median", small < 5))
    if rss:
        multiple, floor, parser = (
            rss[key] / rss["body_bytes"] for key in ("service_growth", "json_growth", "orjson_growth")
        )
        found.append(
            (
                "peak RSS growth a small multiple of the body (at most twice json.loads's)",
                f"{multiple:.1f} x (json.loads alone {floor:.1f} x, orjson.loads alone {parser:.1f} x)",
                multiple <= 2 * floor,
            )
        )
    if fallback:
        call, query = fallback["call_median_ms"], fallback["query_ms"]
        found.append(
            ("fallback close to one query's latency", f"{call:.0f} ms vs {query:.0f} ms", call < 1.5 * query)
        )
    if load_run:
        rate, p99 = load_run["calls_per_s"], load_run["p99_ms"]
        found.append(
            (
                "load: >= 200 calls/s, p99 < 50 ms",
                f"{rate:.0f} calls/s, p99 {p99:.1f} ms",
                rate >= 200 and p99 < 50,
            )
        )
    return found


def cpu_reference() -> float:
    """ms for a fixed pure-Python loop: this machine's speed at the moment, to compare runs by."""
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        sum(range(10**7))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default=",".join(str(s) for s in SIZES), help="Observation counts (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=6, help="generator seed (%(default)s)")
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions: a smoke run, not for figures"
    )
    parser.add_argument("--load-seconds", type=float, default=20, help="load run length (%(default)s)")
    parser.add_argument("--connections", type=int, default=4, help="load run connections (%(default)s)")
    parser.add_argument("--load-tool", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: table,corpus,cards,fallback,rss,load"
    )
    args = parser.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}

    with tempfile.TemporaryDirectory(prefix="cds-bench-") as tmp:
        workdir = Path(tmp)
        settings = Settings(database_url=f"sqlite:///{workdir / 'bench.sqlite3'}")
        app = create_app(settings)
        gc.freeze()  # as cds_service/wsgi.py does once the app is loaded
        quick = ", QUICK run" if args.quick else ""
        print(
            f"# cds_service benchmark, {time.strftime('%Y-%m-%d')}: Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, seed {args.seed}{quick}; CPU reference (sum(range(10**7))) "
            f"{cpu_reference():.0f} ms"
        )
        started = time.perf_counter()
        rows = fallback = rss = load_run = None
        if "table" not in skip:
            sizes = [int(s) for s in args.sizes.split(",") if s]
            rows = report_table(app, settings, sizes, QUICK if args.quick else REPEATS, args.seed)
        if "corpus" not in skip:
            report_corpus(app, 3 if args.quick else 20)
        cards = None if "cards" in skip else report_card_load(app)
        if "fallback" not in skip:
            fallback = report_fallback(app, args.seed)
        if "rss" not in skip:
            rss = report_rss(app, args.seed, workdir)
        if "load" not in skip:
            load_run = report_load(
                app, args.seed, workdir, args.load_seconds, args.connections, args.load_tool
            )
        print(f"\nCPU reference at the end: {cpu_reference():.0f} ms")
        print("\n## Targets\n\n| target | this run | met |\n|---|---|---|")
        for target, measured, met in targets(rows, fallback, rss, load_run, cards):
            print(f"| {target} | {measured} | {'yes' if met else '**NO**'} |")
        progress(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
