"""No logger, at any level, writes a URL or value carrying a patient id.

The FHIR fallback is driven through a real HTTP server on 127.0.0.1 with every logger at DEBUG, so that
urllib3 writes the request lines it writes in production; the check is that they arrive, redacted.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from cds_service import Settings, create_app
from cds_service.facts import utc_today
from cds_service.fixtures import hook_request, patient_resources, rolled_to
from cds_service.log_redaction import redact_urls
from cds_service.rules import RULES
from tests.log_checks import MRN, PATIENT_IDS, assert_nothing_secret_logged, every_logger_at_debug, with_phi

ORDER_SELECT = "/cds-services/baricitinib-order-select"
PATIENT = PATIENT_IDS[0]


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        (
            f'http://127.0.0.1:8090 "GET /fhir/Condition?patient={PATIENT}&_sort=-date HTTP/1.1" 200 51',
            'http://127.0.0.1:8090 "GET /fhir/Condition?patient=[redacted]&_sort=[redacted] HTTP/1.1" 200 51',
        ),
        (
            f'https://ehr.example.org:443 "GET /fhir/r4/Patient/{PATIENT} HTTP/1.1" 404 None',
            'https://ehr.example.org:443 "GET /fhir/r4/Patient/[redacted] HTTP/1.1" 404 None',
        ),
        (
            f"Redirecting https://ehr.example.org/fhir/Patient/{PATIENT}/$everything?x=1 -> "
            f"https://user:pw@other.example/Patient/{PATIENT}/Observation#part",
            "Redirecting https://ehr.example.org/fhir/Patient/[redacted]/$everything?x=[redacted] -> "
            "https://[redacted]@other.example/Patient/[redacted]/Observation#[redacted]",
        ),
        (
            f"Incremented Retry for (url='/fhir/Patient/{PATIENT}/_history/2'): Retry(total=0)",
            "Incremented Retry for (url='/fhir/Patient/[redacted]/_history/2'): Retry(total=0)",
        ),
        (
            f"HTTPConnectionPool(host='127.0.0.1', port=8090): Max retries exceeded with url: "
            f"/fhir/MedicationRequest?subject=Patient/{PATIENT}",
            "HTTPConnectionPool(host='127.0.0.1', port=8090): Max retries exceeded with url: "
            "/fhir/MedicationRequest?subject=[redacted]",
        ),
        (
            "Starting new HTTP connection (1): 127.0.0.1:8090",
            "Starting new HTTP connection (1): 127.0.0.1:8090",
        ),
    ],
    ids=["search", "read", "redirect", "retry", "max-retries", "no-url"],
)
def test_urls_keep_host_resource_type_and_parameter_names_only(logged, shown):
    assert redact_urls(logged) == shown


def test_the_services_own_loggers_redact_urls_too(app, caplog):
    """A line a future change might add, quoting a FHIR URL, is redacted like the libraries' lines."""
    logging.getLogger("cds_service.routes").warning("slow: %s", f"http://127.0.0.1/fhir/Patient/{PATIENT}")
    assert caplog.records[-1].getMessage() == "slow: http://127.0.0.1/fhir/Patient/[redacted]"


class FhirHandler(BaseHTTPRequestHandler):
    """Answers reads and searches from fixture patient ``sle-baseline``; Conditions come in two pages,
    the second linked by a URL that names the patient, as servers' ``next`` links do."""

    resources: dict[str, list[dict]] = {}
    seen: list[str] = []
    broken_headers: set[str] = set()  # resource types answered with a header line that has no colon

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append(self.path)
        parts = urlsplit(self.path)
        kind = parts.path.removeprefix("/fhir/").split("/")[0]
        if kind == "Patient":
            body = self.resources["Patient"][0]
        else:
            page = parse_qs(parts.query).get("page", ["1"])[0]
            entries = [{"resource": r} for r in self.resources.get(kind, [])] if page == "1" else []
            body = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
            if kind == "Condition" and page == "1":
                host, port = self.server.server_address[:2]
                next_url = f"http://{host}:{port}/fhir/Condition?patient={PATIENT}&page=2"
                body["link"] = [{"relation": "next", "url": next_url}]
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        if kind in self.broken_headers:
            self._headers_buffer.append(b"this header line has no colon\r\n")  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # the server's own stderr lines are not the service's log
        pass


@pytest.fixture
def fhir_server():
    """A real FHIR server on a random 127.0.0.1 port, serving sle-baseline; yields (base URL, handler)."""
    resources = rolled_to(patient_resources(PATIENT), utc_today())
    by_type: dict[str, list[dict]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    handler = type("Handler", (FhirHandler,), {"resources": by_type, "seen": [], "broken_headers": set()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir", handler
    finally:
        server.shutdown()
        server.server_close()


def call_with_fhir_fallback(tmp_path, base: str):
    """An order-select call with nothing prefetched, so every key, the Patient too, is read from ``base``."""
    client = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'db'}", fhir_read_timeout=5.0)
    ).test_client()
    body = rolled_to(hook_request("order-select", PATIENT, ["baricitinib-4mg"], set()), utc_today())
    body.pop("prefetch")
    return client.post(ORDER_SELECT, json=with_phi(body, base))


def test_at_debug_urllib3_request_lines_name_no_patient(tmp_path, caplog, fhir_server):
    base, handler = fhir_server
    with every_logger_at_debug():
        response = call_with_fhir_fallback(tmp_path, base)
    assert response.status_code == 200, response.get_json()
    assert f"/fhir/Patient/{PATIENT}" in handler.seen  # the ids were in the URLs the service called
    assert any(PATIENT in path and "page=2" in path for path in handler.seen)  # the next link too
    lines = [r.getMessage() for r in caplog.records if r.name == "urllib3.connectionpool"]
    assert any('"GET /fhir/Patient/[redacted] HTTP/1.1" 200' in line for line in lines), lines
    assert any(
        '"GET /fhir/Condition?patient=[redacted]&page=[redacted] HTTP/1.1" 200' in line for line in lines
    )
    assert_nothing_secret_logged(caplog.records)


def test_the_url_of_a_response_with_broken_headers_is_logged_redacted(tmp_path, caplog, fhir_server):
    """urllib3 warns about malformed response headers at WARNING, the default level's side, with the URL."""
    base, handler = fhir_server
    handler.broken_headers.add("Observation")
    response = call_with_fhir_fallback(tmp_path, base)
    assert response.status_code == 200
    warnings = [r for r in caplog.records if r.name.startswith("urllib3") and r.levelno == logging.WARNING]
    assert any("Failed to parse headers (url=http://127.0.0.1:" in r.getMessage() for r in warnings), warnings
    assert all("/fhir/Observation?patient=[redacted]" in r.getMessage() for r in warnings)
    assert_nothing_secret_logged(caplog.records)


def test_a_failing_rule_is_logged_by_type_and_frames_not_by_its_message(client, caplog, monkeypatch):
    def fails(facts, content):
        raise ValueError(f"could not read {MRN}")  # an exception message quoting patient data

    name = next(iter(RULES))
    monkeypatch.setitem(RULES, name, replace(RULES[name], function=fails))
    body = rolled_to(hook_request("order-select", PATIENT, ["baricitinib-4mg"]), utc_today())
    assert client.post(ORDER_SELECT, json=with_phi(body)).status_code == 200
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"rule {name} failed")]
    assert line.startswith(f"rule {name} failed: ValueError at\n") and "fails" in line
    assert_nothing_secret_logged(caplog.records)


def send(port: int, request: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request.encode())
        return conn.recv(1024)


def test_gunicorn_error_and_access_logs_show_request_lines_redacted(tmp_path):
    """gunicorn warns, at its default level, quoting the raw request line of a request it cannot parse;
    its access log (off by default, on here) quotes every request line."""
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    env |= {"CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'db'}", "CDS_HOST": "127.0.0.1"}
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--preload"]
    command += ["--access-logfile", "-", "--error-logfile", "-", "cds_service.wsgi:app"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60  # a bound, not a measurement: start-up loads the content
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=10).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        # a client that does not percent-encode a name: gunicorn refuses the target and logs it
        target = f"/fhir/Patient/{PATIENT}?identifier={MRN}&given=Ren\u00e9e"
        assert send(port, f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP/1.1 400")
        answer = send(
            port, f"GET /healthz?patient={PATIENT} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    (refused,) = [line for line in output.splitlines() if "Invalid request from ip=127.0.0.1" in line]
    assert "/fhir/Patient/[redacted]?identifier=[redacted]&given=[redacted]" in refused, refused
    (access,) = [line for line in output.splitlines() if '"GET /healthz' in line]
    assert '"GET /healthz?patient=[redacted] HTTP/1.1" 200' in access, access
    assert PATIENT not in output and MRN not in output
