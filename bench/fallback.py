"""The FHIR fallback, timed against a real HTTP server on loopback that answers every query after a delay.

The hook request carries no prefetch, only ``fhirServer``, so the service fetches all five prefetch keys
from the server. Run concurrently, the whole call takes about one query's latency; one after the other,
it would take the sum.
"""

from __future__ import annotations

import json
import threading
import time
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

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _SlowFhirServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, prefetch: Json, delay: float):
        super().__init__(("127.0.0.1", 0), _SlowFhirHandler)
        self.delay = delay
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
        return f"http://127.0.0.1:{self.server_address[1]}/fhir"


@contextmanager
def slow_fhir_server(prefetch: Json, delay: float = 0.1) -> Iterator[_SlowFhirServer]:
    """A ThreadingHTTPServer on 127.0.0.1 serving ``prefetch``'s resources, each answer ``delay`` late."""
    server = _SlowFhirServer(prefetch, delay)
    thread = threading.Thread(target=server.serve_forever, name="slow-fhir", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def fallback_request(request: Json, base_url: str) -> Json:
    """``request`` with its prefetch taken away and ``fhirServer`` set: every key must be fetched."""
    without = {k: v for k, v in request.items() if k != "prefetch"}
    return {**without, "fhirServer": base_url}
