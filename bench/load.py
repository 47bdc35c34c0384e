"""A bounded load run against ``cds-service serve`` on loopback, with the configured workers.

wrk (``bench/wrk_post.lua``) drives the load when it is installed; otherwise a small Python load
generator does (one process per connection, each sending one request at a time). Either way the load
generator runs on the same machine as the service, as the target asks.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVICE_PATH = "/cds-services/baricitinib-order-select"


def busy_ticks() -> int:
    """CPU time spent busy by the whole machine so far, in clock ticks (Linux /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal


def process_ticks(pids: list[int]) -> int:
    """utime + stime of the given processes, in clock ticks."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def _family(master: int) -> list[int]:
    """The gunicorn master and its workers."""
    pids = [master]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(workdir: Path, settings: dict[str, str] | None = None) -> Iterator[tuple[int, int]]:
    """``cds-service serve`` on 127.0.0.1 (settings from the environment and ``settings``, CDS_* names;
    a temporary SQLite file)."""
    port = _free_port()
    env = {
        **os.environ,
        **(settings or {}),
        "CDS_HOST": "127.0.0.1",
        "CDS_PORT": str(port),
        "CDS_DATABASE_URL": f"sqlite:///{workdir / 'load.sqlite3'}",
    }
    log = (workdir / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "cds_service.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                try:
                    connection.request("GET", "/healthz")
                    if connection.getresponse().status == 200:
                        break
                finally:
                    connection.close()
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cds-service serve did not start; see {workdir / 'serve.log'}")
            time.sleep(0.2)
        yield port, server.pid
    finally:
        server.send_signal(signal.SIGTERM)  # gunicorn's master stops its workers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _wrk(port: int, body_path: Path, seconds: float, connections: int) -> dict[str, Any]:
    command = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "5s",
        "-s",
        str(HERE / "wrk_post.lua"),
        f"http://127.0.0.1:{port}{SERVICE_PATH}",
        "--",
        str(body_path),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in output.splitlines() if x.startswith("BENCH-JSON "))
    raw = json.loads(line.removeprefix("BENCH-JSON "))
    return {
        "tool": f"wrk -t1 -c{connections}",
        "requests": raw["requests"],
        "errors": raw["errors"] + raw["non_2xx"],
        "calls_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }


def _python_client(port: int, body: bytes, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json"}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("POST", SERVICE_PATH, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status != 200:
                errors += 1
                continue
        except OSError:
            errors += 1
            continue
        latencies.append(time.perf_counter() - started)
    return latencies, errors


def _python(port: int, body: bytes, seconds: float, connections: int) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=connections) as pool:
        started = time.perf_counter()
        results = list(
            pool.map(_python_client, [port] * connections, [body] * connections, [seconds] * connections)
        )
        elapsed = time.perf_counter() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)

    def pct(p: float) -> float:
        if not latencies:  # every call failed
            return float("nan")
        return latencies[max(0, min(len(latencies) - 1, round(p / 100 * len(latencies) + 0.5) - 1))] * 1000

    return {
        "tool": f"python (bench/load.py), {connections} client processes",
        "requests": len(latencies),
        "errors": errors,
        "calls_per_s": len(latencies) / elapsed,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": pct(100),
    }


def load_run(
    body: bytes, workdir: Path, seconds: float = 20, connections: int = 4, tool: str = "auto"
) -> dict[str, Any]:
    """Serve, warm up for 3 s, then drive ``seconds`` of load; calls/s and latency percentiles, the
    service's CPU time per call, and the share of the machine other processes took meanwhile."""
    body_path = workdir / "load-body.json"
    body_path.write_bytes(body)
    use_wrk = tool == "wrk" or (tool == "auto" and shutil.which("wrk") is not None)
    with served(workdir) as (port, master):
        run = (
            (lambda s: _wrk(port, body_path, s, connections))
            if use_wrk
            else (lambda s: _python(port, body, s, connections))
        )
        run(3)
        family = _family(master)
        ticks = os.sysconf("SC_CLK_TCK")
        before = (time.perf_counter(), busy_ticks(), process_ticks(family), _own_ticks(ticks))
        result = run(seconds)
        after = (time.perf_counter(), busy_ticks(), process_ticks(family), _own_ticks(ticks))
    elapsed = after[0] - before[0]
    service = after[2] - before[2]
    generator = after[3] - before[3]  # wrk, or the Python client processes, reaped by now
    others = max(0, (after[1] - before[1]) - service - generator)
    result["service_cpu_ms_per_call"] = service / ticks * 1000 / max(result["requests"], 1)
    result["others_cpu_share"] = others / ticks / (elapsed * (os.cpu_count() or 1))
    return result


def _own_ticks(ticks_per_second: int) -> int:
    """CPU ticks of this process and of its reaped children (the load generator)."""
    own = os.times()
    return round((own.user + own.system + own.children_user + own.children_system) * ticks_per_second)
