"""The FHIR fallback under faults: the call ends in its time budget with the cards the data still allows
and a data-quality card naming what could not be had (or 412 where required data is missing).

test_gather.py covers 401, 500, a timeout, malformed JSON and a bare string on one query; here are the
other statuses, broken bodies, paging loops and redirects through the whole app, connection refused on
a real closed port, and one real HTTP server on 127.0.0.1 that answers after the read timeout.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses
import urllib3.exceptions

from cds_service import Settings, create_app
from cds_service.facts import utc_today
from cds_service.fixtures import hook_request, rolled_to
from tests.log_checks import assert_nothing_secret_logged, with_phi

BASE = "http://127.0.0.1:8090/fhir"
NOT_PATIENT = {"conditions", "observations", "immunizations", "medications"}
ORDER_SELECT = "/cds-services/baricitinib-order-select"


@pytest.fixture(autouse=True)
def no_secret_in_any_log(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    assert_nothing_secret_logged(caplog.records)


def order_select(base: str = BASE, prefetch_keys: set[str] | None = None) -> dict:
    """baricitinib 4 mg for sle-baseline; only ``prefetch_keys`` prefetched (default: patient only)."""
    keys = {"patient"} if prefetch_keys is None else prefetch_keys
    body = rolled_to(hook_request("order-select", "sle-baseline", ["baricitinib-4mg"], keys), utc_today())
    if not keys:
        body.pop("prefetch")  # hook_request fills every key when given none
    return with_phi(body, base)


def topics(response) -> set[str]:
    return {c["source"]["topic"]["code"] for c in response.get_json()["cards"]}


def quality_detail(response) -> str:
    assert response.status_code == 200, response.get_json()
    cards = [c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "data-quality"]
    assert len(cards) == 1, response.get_json()
    return cards[0]["detail"]


# --- HTTP statuses and bodies --------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 404, 429, 502, 503])
def test_an_error_status_on_observations_leaves_the_other_checks_and_names_the_gap(
    client, fhir_server, status
):
    fhir_server.serve_patient(BASE, "sle-baseline", fail={"Observation": status})
    response = client.post(ORDER_SELECT, json=order_select())
    detail = quality_detail(response)
    assert f"**Unavailable: observations**: Observation query: the server answered HTTP {status}" in detail
    assert "off-label-use" in topics(response)  # conditions still arrived: the SLE card is given
    assert "lab-hold" not in topics(response)  # no labs: no lab card, and no pretending they are normal
    assert len([c for c in fhir_server.calls if "/Observation" in c.path_url]) == 1  # a 429 is not retried


def test_every_query_failing_with_403_still_answers_from_prefetch(client, fhir_server):
    fhir_server.serve_patient(
        BASE,
        "sle-baseline",
        fail={k: 403 for k in ("Condition", "Observation", "Immunization", "MedicationRequest")},
    )
    detail = quality_detail(client.post(ORDER_SELECT, json=order_select()))
    for key in NOT_PATIENT:
        assert f"**Unavailable: {key}**" in detail


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            '{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Cond',
            "not JSON",
        ),
        ("<html><body>502 Bad Gateway</body></html>", "not JSON"),
        ("", "not JSON"),
        ("[]", "not a FHIR resource"),
        ('{"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}', "OperationOutcome"),
    ],
    ids=["truncated", "html", "empty", "array", "operation-outcome"],
)
def test_a_broken_body_is_named_in_the_data_quality_card(client, fhir_server, body, reason):
    fhir_server.serve_patient(BASE, "sle-baseline", fail={"Condition": body})
    detail = quality_detail(client.post(ORDER_SELECT, json=order_select()))
    assert "**Unavailable: conditions**: Condition query:" in detail and reason in detail


@pytest.mark.parametrize(
    "bundle",
    [
        {"resourceType": "Bundle", "entry": True},
        {"resourceType": "Bundle", "entry": 5, "link": {"relation": "next"}},
    ],
)
def test_a_bundle_with_malformed_entry_or_link_is_read_as_empty(client, fhir_server, bundle):
    fhir_server.serve_patient(BASE, "sle-baseline", fail={"Condition": json.dumps(bundle)})
    response = client.post(ORDER_SELECT, json=order_select())
    assert response.status_code == 200


class _BreaksOff(io.RawIOBase):
    """A body whose connection drops after a few bytes (what urllib3 reports as IncompleteRead)."""

    def __init__(self) -> None:
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.reads += 1
        if self.reads == 1:
            buffer[:12] = b'{"resourceTy'
            return 12
        raise urllib3.exceptions.ProtocolError(
            "Connection broken: IncompleteRead(12 bytes read, 900 more expected)"
        )


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (lambda: io.BufferedReader(_BreaksOff()), {}, "the response broke off"),
        (lambda: b"not gzip at all", {"Content-Encoding": "gzip"}, "the response could not be decoded"),
    ],
    ids=["broken-off", "bad-gzip"],
)
@responses.activate
def test_a_body_that_breaks_off_or_does_not_decode_is_unavailable(client, body, headers, reason):
    """Read straight from urllib3 (to cap the size), these errors are not requests': both were a 500."""
    responses.get(f"{BASE}/Condition", body=body(), headers=headers)
    serve_everything_but_conditions(responses)
    detail = quality_detail(client.post(ORDER_SELECT, json=order_select()))
    assert f"**Unavailable: conditions**: Condition query: {reason}" in detail


# --- paging, redirects, size ---------------------------------------------------------------------


def bundle(ids: list[str], next_url: str | None = None) -> dict:
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Condition", "id": i}} for i in ids],
    }
    if next_url:
        page["link"] = [{"relation": "next", "url": next_url}]
    return page


def serve_everything_but_conditions(mock) -> None:
    for kind in ("Observation", "Immunization", "MedicationRequest"):
        mock.get(f"{BASE}/{kind}", json={"resourceType": "Bundle", "type": "searchset"})


@responses.activate
def test_a_paging_loop_ends_with_a_data_quality_card(client):
    serve_everything_but_conditions(responses)
    responses.get(f"{BASE}/Condition?patient=sle-baseline", json=bundle(["a"], f"{BASE}/Condition?page=2"))
    responses.get(f"{BASE}/Condition?page=2", json=bundle(["b"], f"{BASE}/Condition?patient=sle-baseline"))
    detail = quality_detail(client.post(ORDER_SELECT, json=order_select()))
    assert "**Unavailable: conditions**: Condition query: the server's paging links loop" in detail


@responses.activate
def test_endless_paging_stops_at_the_page_bound(tmp_path):
    client = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db'}", fhir_max_pages=3)).test_client()
    serve_everything_but_conditions(responses)
    responses.get(f"{BASE}/Condition?patient=sle-baseline", json=bundle(["0"], f"{BASE}/Condition?page=1"))
    for n in range(1, 10):
        responses.get(f"{BASE}/Condition?page={n}", json=bundle([str(n)], f"{BASE}/Condition?page={n + 1}"))
    detail = quality_detail(client.post(ORDER_SELECT, json=order_select()))
    assert "more than 3 pages of results" in detail
    assert len([c for c in responses.calls if "Condition" in c.request.url]) == 3


@responses.activate
def test_a_next_link_to_another_host_is_not_followed(client):
    serve_everything_but_conditions(responses)
    responses.get(
        f"{BASE}/Condition?patient=sle-baseline", json=bundle(["a"], "http://169.254.169.254/latest")
    )
    detail = quality_detail(client.post(ORDER_SELECT, json=order_select()))
    assert "a paging link points away from the FHIR server" in detail
    assert not [c for c in responses.calls if "169.254" in c.request.url]


@responses.activate
def test_a_redirect_is_not_followed(client):
    serve_everything_but_conditions(responses)
    responses.get(
        f"{BASE}/Condition?patient=sle-baseline", status=307, headers={"Location": "http://10.0.0.9/x"}
    )
    detail = quality_detail(client.post(ORDER_SELECT, json=order_select()))
    assert "the server redirected (not followed)" in detail
    assert not [c for c in responses.calls if "10.0.0.9" in c.request.url]


@responses.activate
def test_an_oversized_response_is_cut_off(tmp_path):
    client = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'db'}", fhir_max_response_bytes=5_000)
    ).test_client()
    serve_everything_but_conditions(responses)
    responses.get(f"{BASE}/Condition?patient=sle-baseline", json=bundle([str(n) for n in range(1000)]))
    assert "larger than 5000 bytes" in quality_detail(client.post(ORDER_SELECT, json=order_select()))


# --- real sockets --------------------------------------------------------------------------------


def test_connection_refused_on_a_real_closed_port_is_412_at_once(client):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    response = client.post(ORDER_SELECT, json=order_select(f"http://127.0.0.1:{port}/fhir"))
    assert response.status_code == 412  # prefetch lacks the data and the server cannot be reached at all
    assert "could not be reached" in response.get_json()["issue"][0]["diagnostics"]
    assert time.monotonic() - started < 10


@pytest.fixture
def slow_fhir_server():
    """A real FHIR server on 127.0.0.1 (random port) answering after 5 s, far past the read timeout."""
    release = threading.Event()
    seen: list[str] = []

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            seen.append(self.path)
            release.wait(timeout=5)
            body = json.dumps({"resourceType": "Bundle", "type": "searchset"}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the service gave up and closed the connection, as it should

        def log_message(self, *args) -> None:  # keep the test output (and its log check) clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir", seen
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_server_slower_than_the_read_timeout_ends_in_time_with_a_data_quality_card(
    tmp_path, slow_fhir_server
):
    base, seen = slow_fhir_server
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db'}", fhir_read_timeout=0.5)
    client = create_app(settings).test_client()
    started = time.monotonic()
    response = client.post(ORDER_SELECT, json=order_select(base))
    elapsed = time.monotonic() - started
    assert elapsed < 10  # five queries at 0.5 s each, concurrently; generous so it never flakes
    detail = quality_detail(response)
    for key, kind in (
        ("conditions", "Condition"),
        ("observations", "Observation"),
        ("medications", "MedicationRequest"),
    ):
        assert f"**Unavailable: {key}**: {kind} query: the server did not answer in time" in detail
    assert "encounters" not in detail  # a key the COVID-19 check reports itself, only when it matters
    assert len(seen) == 5 and all(path.startswith("/fhir/") for path in seen)


def test_requests_timeouts_are_what_the_settings_say(client, monkeypatch):
    """The (connect, read) pair reaches every FHIR call: without it a slow server would hold a worker."""
    sent: list[object] = []

    def fake_get(self, url, **kwargs):
        sent.append(kwargs.get("timeout"))
        raise requests.ConnectTimeout()

    monkeypatch.setattr(requests.Session, "get", fake_get)
    client.post(ORDER_SELECT, json=order_select())
    assert sent and set(sent) == {(3.05, 2.0)}  # conftest's settings: read timeout 2 s
