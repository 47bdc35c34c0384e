"""The FHIR fallback, timed against a real HTTP server on loopback that answers every query after a delay.

The hook request carries no prefetch, only ``fhirServer``, so the service fetches all five prefetch keys
from the server. Run concurrently, the whole call takes about one query's latency; one after the other,
it would take the sum.

The server can also misbehave on the queries for chosen resource types (``FAULTS``): trickle a byte at
a time (the body, or the headers), accept and never answer, send a body that never ends (plain or
gzip) or one announced as 2 GB, a valid 45 MiB one, or JSON nested 100,000 deep. The fault tests and
``bench/faults.py`` use it so.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Json = dict[str, Any]


class _SlowFhirHandler(BaseHTTPRequestHandler):
    server: _SlowFhirServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body, written apart, wait out a 40 ms delayed ACK

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        started = time.perf_counter()
        time.sleep(self.server.delay)
        kind = urlsplit(self.path).path.removeprefix("/fhir/").split("/")[0]  # Patient/x, Observation?...
        with self.server.lock:
            self.server.requested.append(kind)
        if kind in self.server.faults:
            try:
                getattr(self, "_" + self.server.faults[kind])()
            except OSError:  # the service hung up: what a bounded client does
                with self.server.lock:
                    self.server.hung_up.append(kind)
            self.close_connection = True
            return
        if kind == "Patient":
            body = self.server.patient
        else:
            resources = self.server.by_type.get(kind, [])
            body = {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": r} for r in resources],
            }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with self.server.lock:
            self.server.served.append((kind, time.perf_counter() - started))

    def _trickle(self) -> None:
        """Announce a body and send it a byte at a time, each well inside any read timeout."""
        self._headers(length=1_000_000)
        for byte in _ENDLESS_PREFIX * 1000:
            if self.server.stop.wait(self.server.trickle_interval):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def _trickle_headers(self) -> None:
        """Send the status line, then headers a byte at a time."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for byte in b"X-Padding: " + b"x" * 100_000:
            if self.server.stop.wait(self.server.trickle_interval):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def _silent(self) -> None:
        """Take the request and never answer (until the server stops)."""
        self.server.stop.wait()

    def _endless(self) -> None:
        """A chunked Bundle whose entries never end, as fast as the service reads them."""
        self._headers(length=None)
        self.wfile.write(_chunk(_ENDLESS_PREFIX))
        entries = _chunk(_ENTRIES)
        while not self.server.stop.is_set():
            self.wfile.write(entries)

    def _gzip(self) -> None:
        """The endless Bundle gzip-compressed (about 1,000 to 1), as fast as the service reads it."""
        self._headers(length=None, encoding="gzip")
        compressor = zlib.compressobj(wbits=31)
        self.wfile.write(_chunk(compressor.compress(_ENDLESS_PREFIX)))
        entries = _chunk(compressor.compress(_ENTRIES * 16) + compressor.flush(zlib.Z_SYNC_FLUSH))
        while not self.server.stop.is_set():
            self.wfile.write(entries)  # the same compressed block again: valid, and cheap to send

    def _huge(self) -> None:
        """A Bundle announced as 2 GB (Content-Length), its entries sent as fast as they are read."""
        self._headers(length=2_000_000_000)
        self.wfile.write(_ENDLESS_PREFIX)
        for _ in range(2_000_000_000 // len(_ENTRIES)):
            if self.server.stop.is_set():
                return
            self.wfile.write(_ENTRIES)

    def _big(self) -> None:
        """A valid searchset of 45 MiB (Observations without a code), under the default 50 MiB cap."""
        entries = _ENTRIES * (45 * 2**20 // len(_ENTRIES))
        body = _ENDLESS_PREFIX + entries + b'{"resource": {"resourceType": "Observation"}}]}'
        self._headers(length=len(body))
        self.wfile.write(body)

    def _deep(self) -> None:
        """JSON nested 100,000 levels deep."""
        body = b"[" * 100_000 + b"]" * 100_000
        self._headers(length=len(body))
        self.wfile.write(body)

    def _headers(self, length: int | None, encoding: str | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


FAULTS = ("trickle", "trickle_headers", "silent", "endless", "gzip", "huge", "big", "deep")
_ENDLESS_PREFIX = b'{"resourceType": "Bundle", "type": "searchset", "entry": ['
_ENTRIES = b'{"resource": {"resourceType": "Observation", "status": "final"}},' * 1000


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _SlowFhirServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connections of concurrent calls: a 1 s SYN retry each

    def __init__(
        self, prefetch: Json, delay: float, faults: dict[str, str], host: str, trickle_interval: float
    ):
        super().__init__(("127.0.0.1", 0), _SlowFhirHandler)
        self.delay = delay
        self.faults = faults
        self.host = host
        self.trickle_interval = trickle_interval
        self.stop = threading.Event()
        self.requested: list[str] = []  # the resource type of every query received
        self.hung_up: list[str] = []  # the resource types whose faulty answer the service stopped reading
        self.patient = prefetch["patient"]
        self.by_type: dict[str, list[Json]] = {}
        for key, value in prefetch.items():
            if key == "patient":
                continue
            for entry in value.get("entry") or ():
                resource = entry["resource"]
                kind = (
                    "MedicationRequest"
                    if resource["resourceType"] == "Medication"
                    else resource["resourceType"]
                )
                self.by_type.setdefault(kind, []).append(resource)
        self.lock = threading.Lock()
        self.served: list[tuple[str, float]] = []

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.server_address[1]}/fhir"


@contextmanager
def slow_fhir_server(
    prefetch: Json,
    delay: float = 0.1,
    faults: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    trickle_interval: float = 1.0,
) -> Iterator[_SlowFhirServer]:
    """A ThreadingHTTPServer on 127.0.0.1 serving ``prefetch``'s resources, each answer ``delay`` late;
    ``faults`` maps a resource type to one of ``FAULTS``; ``host`` is the name ``base_url`` gives."""
    server = _SlowFhirServer(prefetch, delay, faults or {}, host, trickle_interval)
    thread = threading.Thread(target=server.serve_forever, name="slow-fhir", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


def fallback_request(request: Json, base_url: str) -> Json:
    """``request`` with its prefetch taken away and ``fhirServer`` set: every key must be fetched."""
    without = {k: v for k, v in request.items() if k != "prefetch"}
    return {**without, "fhirServer": base_url}
