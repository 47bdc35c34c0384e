"""``python -m bench.server_faults``: ordinary hook calls while slow clients and a slow FHIR server hold
the service's threads, against a no-fault baseline measured in the same run.

It starts the real service (``cds-service serve``, the configured workers and threads, a temporary SQLite
file) on a free port and a local FHIR server that trickles its answers, one byte every 0.5 s. Then, phase
by phase, client processes send ordinary prefetched calls (``fhir_fixtures/requests/order-select/
low-anc-new-start.json``) one after another while:

- baseline:       nothing else happens;
- slow headers:   ``--slow`` connections send their request headers one byte a second, never finishing
                  (a slowloris; a connection the server closes is opened again at once);
- trickling FHIR: ``--trickling`` calls that carry no prefetch wait on the trickling FHIR server (a call
                  that ends is sent again, so that many are always in flight);
- both:           the two faults at once.

It prints calls/s, p50 and p99 of the ordinary calls per phase, and the calls that failed (a call that
takes more than 5 s counts as failed).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from cds_service.facts import utc_today
from cds_service.fixtures import request_file, rolled_to
from cds_service.settings import Settings

from .fallback import fallback_request
from .load import SERVICE_PATH, _python, served

ORDINARY_REQUEST = "order-select/low-anc-new-start"


class TricklingFhirServer:
    """A FHIR server on 127.0.0.1 that reads each request, then answers one byte every ``interval``
    seconds: each byte arrives well inside any read timeout, so a client without a deadline waits on."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stopped = threading.Event()
        self.requests = 0
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/fhir"

    def start(self) -> None:
        self.listener.settimeout(0.2)
        self._spawn(self._accept)

    def hang_up(self) -> None:
        """Close every answer under way: the calls waiting on them end."""
        with self._lock:
            for connection in self._open:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:  # the client closed it already
                    pass

    def stop(self) -> None:
        self.stopped.set()
        self.hang_up()
        for thread in self._threads:
            thread.join(timeout=5)
        self.listener.close()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="trickling-fhir")
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.requests += 1
            self._spawn(self._trickle, connection)

    def _trickle(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.add(connection)
        try:
            if self._read_request(connection):
                self._answer_slowly(connection)
        except OSError:  # hung up, or the client went away
            pass
        finally:
            with self._lock:
                self._open.discard(connection)
            connection.close()

    def _read_request(self, connection: socket.socket) -> bool:
        connection.settimeout(self.interval)
        received = b""
        while b"\r\n\r\n" not in received:
            if self.stopped.is_set():
                return False
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return False
            received += chunk
        return True

    def _answer_slowly(self, connection: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000000\r\n\r\n"
        for byte in head + b'{"' + b"x" * 1_000_000:
            if self.stopped.wait(self.interval):
                return
            connection.sendall(bytes([byte]))


@contextmanager
def trickling_fhir_server(interval: float = 0.5) -> Iterator[TricklingFhirServer]:
    server = TricklingFhirServer(interval)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class SlowHeaders:
    """``count`` connections that send a request line and headers one byte per ``interval`` seconds and
    never finish them. A connection the server closes is opened again, as a slowloris does."""

    REQUEST_HEAD = (
        f"POST {SERVICE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + b"X-Slow: " + b"a" * 100_000
    )

    def __init__(self, port: int, count: int, interval: float = 1.0):
        self.port, self.count, self.interval = port, count, interval
        self.stopped = threading.Event()
        self.sent = 0  # bytes, all connections together
        self.reopened = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="slow-headers")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self._thread.join(timeout=5)

    def _connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=2)

    def _run(self) -> None:
        sockets = [self._connect() for _ in range(self.count)]
        sent = [0] * self.count
        try:
            while not self.stopped.wait(self.interval):
                for i in range(self.count):
                    try:
                        sockets[i].send(self.REQUEST_HEAD[sent[i] : sent[i] + 1])
                        sent[i] += 1
                        self.sent += 1
                    except OSError:  # the server gave up on it: a slowloris simply connects again
                        sockets[i].close()
                        sockets[i] = self._connect()
                        sent[i] = 0
                        self.reopened += 1
        finally:
            for connection in sockets:
                connection.close()


@contextmanager
def slow_headers(port: int, count: int, interval: float = 1.0) -> Iterator[SlowHeaders]:
    clients = SlowHeaders(port, count, interval)
    clients.start()
    try:
        yield clients
    finally:
        clients.stop()


class TricklingCalls:
    """``count`` hook calls that need the trickling FHIR server, always in flight: one that ends is resent."""

    def __init__(self, port: int, body: bytes, count: int, fhir: TricklingFhirServer):
        self.port, self.body, self.fhir = port, body, fhir
        self.stopped = threading.Event()
        self.ended: list[str] = []  # status (or error) of each call that ended
        self._threads = [
            threading.Thread(target=self._run, daemon=True, name="trickling-call") for _ in range(count)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self.stopped.set()
        deadline = time.monotonic() + 30
        while any(t.is_alive() for t in self._threads) and time.monotonic() < deadline:
            self.fhir.hang_up()  # the calls in flight end; one sent just before the stop, on the next round
            for thread in self._threads:
                thread.join(timeout=0.5)

    def _run(self) -> None:
        while not self.stopped.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            try:
                connection.request("POST", SERVICE_PATH, self.body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                self.ended.append(str(response.status))
            except OSError as exc:
                self.ended.append(type(exc).__name__)
            finally:
                connection.close()


@contextmanager
def trickling_calls(
    port: int, body: bytes, count: int, fhir: TricklingFhirServer
) -> Iterator[TricklingCalls]:
    calls = TricklingCalls(port, body, count, fhir)
    calls.start()
    try:
        yield calls
    finally:
        calls.stop()


def ordinary_body() -> bytes:
    return json.dumps(rolled_to(request_file(ORDINARY_REQUEST), utc_today())).encode()


def run_phases(seconds: float, clients: int, slow: int, trickling: int) -> list[dict[str, Any]]:
    body = ordinary_body()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as work, trickling_fhir_server() as fhir:
        trickling_body = json.dumps(fallback_request(json.loads(body), fhir.base_url)).encode()
        with served(Path(work)) as (port, _master):
            _python(port, body, 2, clients)  # warm-up: first calls load lazily imported code
            phases = {
                "baseline (no fault)": (0, 0),
                f"slow headers ({slow} connections)": (slow, 0),
                f"trickling FHIR ({trickling} calls in flight)": (0, trickling),
                f"both ({slow} slow-header connections, {trickling} trickling calls)": (slow, trickling),
            }
            for name, (slow_count, trickling_count) in phases.items():
                with ExitStack() as faults:
                    slow = faults.enter_context(slow_headers(port, slow_count)) if slow_count else None
                    if trickling_count:
                        faults.enter_context(trickling_calls(port, trickling_body, trickling_count, fhir))
                    time.sleep(2)  # the faults take hold: headers started, FHIR queries sent
                    result = _python(port, body, seconds, clients)
                    result["slow_closed"] = slow.reopened if slow else 0  # by the server's header deadline
                result["phase"] = name
                rows.append(result)
                progress(
                    f"  {name}: {result['calls_per_s']:.1f} calls/s, p50 {result['p50_ms']:.1f} ms, "
                    f"p99 {result['p99_ms']:.1f} ms, failed {result['errors']}"
                )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| phase | calls/s | p50 ms | p99 ms | max ms | failed | slow connections cut by the deadline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['phase']} | {row['calls_per_s']:.1f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} "
            f"| {row['max_ms']:.1f} | {row['errors']} | {row['slow_closed']} |"
        )
    return "\n".join(lines)


def progress(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.server_faults", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=10, help="length of each phase (default 10)")
    parser.add_argument("--clients", type=int, default=2, help="client processes sending ordinary calls")
    parser.add_argument("--slow", type=int, default=10, help="slow-header connections (default 10)")
    parser.add_argument("--trickling", type=int, default=2, help="calls waiting on the trickling FHIR server")
    args = parser.parse_args(argv)
    settings = Settings()
    progress(
        f"cds-service serve: {settings.workers} workers x {settings.threads} threads; "
        f"{args.clients} client processes, {args.seconds:g} s per phase"
    )
    rows = run_phases(args.seconds, args.clients, args.slow, args.trickling)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
