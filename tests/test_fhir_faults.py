"""The FHIR fallback under faults: the call ends in its time budget with the cards the data still allows
and a data-quality card naming what could not be had (or 412 where required data is missing).

test_gather.py covers 401, 500, a timeout, malformed JSON and a bare string on one query; here are the
other statuses, broken bodies, paging loops and redirects through the whole app, connection refused on
a real closed port, and one real HTTP server on 127.0.0.1 that answers after the read timeout.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import requests
import responses
import urllib3.exceptions

from bench.fallback import slow_fhir_server
from cds_service import Settings, create_app
from cds_service.facts import utc_today
from cds_service.fhir_client import Deadline, FhirClient
from cds_service.fixtures import hook_request, rolled_to
from cds_service.gather import gather
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


def test_connection_refused_on_a_real_closed_port_is_412(client):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    response = client.post(ORDER_SELECT, json=order_select(f"http://127.0.0.1:{port}/fhir"))
    assert response.status_code == 412  # prefetch lacks the data and the server cannot be reached at all
    assert "could not be reached" in response.get_json()["issue"][0]["diagnostics"]


@pytest.fixture
def faulty_fhir_server():
    """``serve(faults, host)``: a real FHIR server on 127.0.0.1 serving sle-baseline, misbehaving on the
    queries for the resource types in ``faults`` (bench/fallback.py's FAULTS); stopped after the test."""
    with contextlib.ExitStack() as servers:

        def serve(faults: dict[str, str], host: str = "127.0.0.1"):
            request = hook_request("order-select", "sle-baseline", ["baricitinib-4mg"])
            prefetch = rolled_to(request, utc_today())["prefetch"]
            return servers.enter_context(slow_fhir_server(prefetch, 0, faults, host, trickle_interval=0.05))

        yield serve


def app_client(tmp_path, **settings):
    return create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db'}", **settings)).test_client()


def hung_up_on(server, kind: str) -> bool:
    """Whether the service closed the connection of a faulty ``kind`` answer (waiting up to 5 s for the
    server to notice)."""
    for _ in range(250):
        if kind in server.hung_up:
            return True
        time.sleep(0.02)
    return False


def test_a_server_slower_than_the_read_timeout_gives_a_data_quality_card(tmp_path, faulty_fhir_server):
    kinds = ("Condition", "Observation", "Immunization", "MedicationRequest", "Encounter")
    server = faulty_fhir_server(dict.fromkeys(kinds, "silent"))
    client = app_client(tmp_path, fhir_read_timeout=0.5)  # well inside the call deadline (4 s)
    detail = quality_detail(client.post(ORDER_SELECT, json=order_select(server.base_url)))
    for key, kind in (
        ("conditions", "Condition"),
        ("observations", "Observation"),
        ("medications", "MedicationRequest"),
    ):
        assert f"**Unavailable: {key}**: {kind} query: the server did not answer in time" in detail
    assert "encounters" not in detail  # a key the COVID-19 check reports itself, only when it matters
    assert sorted(server.requested) == sorted(kinds)


# --- the call deadline (issue 13): real sockets, short deadlines, the read timeout longer ----------


@pytest.mark.parametrize("fault", ["trickle", "trickle_headers", "silent"])
def test_labs_that_do_not_arrive_by_the_deadline_are_named_late_and_the_other_cards_still_come(
    tmp_path, faulty_fhir_server, fault
):
    """A trickle sends a byte every 50 ms (of the body, or of the headers), well inside the 2 s read
    timeout (and the silent server's wait is longer than the deadline): only the deadline ends them."""
    server = faulty_fhir_server({"Observation": fault})
    # 1.5 s: long enough for the sound queries to arrive on a busy CI machine, as the test requires
    client = app_client(tmp_path, call_deadline=1.5, fhir_read_timeout=2.0)
    response = client.post(ORDER_SELECT, json=order_select(server.base_url))
    detail = quality_detail(response)
    late = "**Unavailable: observations**: Observation query: no answer within the 1.5 s call deadline"
    assert late in detail
    assert "conditions" not in detail and "medications" not in detail  # these answered in time
    assert "off-label-use" in topics(response)  # the conditions arrived: the SLE card is given
    assert "lab-hold" not in topics(response)
    if fault != "silent":
        assert hung_up_on(server, "Observation")  # the service stopped reading: no thread left behind


def test_a_patient_that_does_not_arrive_by_the_deadline_is_412(tmp_path, faulty_fhir_server):
    server = faulty_fhir_server({"Patient": "trickle"})
    client = app_client(tmp_path, call_deadline=0.5)
    response = client.post(ORDER_SELECT, json=order_select(server.base_url, prefetch_keys=set()))
    assert response.status_code == 412
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert response.get_json()["issue"][0]["diagnostics"] == (
        "patient: Patient query: no answer within the 0.5 s call deadline"
    )


@pytest.fixture
def slow_name_server(monkeypatch):
    """Name resolution of ``localhost`` that takes 5 s (or until the test ends); other names resolve."""
    resolve, released = socket.getaddrinfo, threading.Event()

    def slow(host, *args, **kwargs):
        if host == "localhost":
            released.wait(5)
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    yield
    released.set()


@pytest.mark.parametrize("prefetched", [{"patient"}, set()], ids=["patient-prefetched", "nothing-prefetched"])
def test_slow_name_resolution_counts_against_the_deadline(
    tmp_path, faulty_fhir_server, slow_name_server, prefetched
):
    server = faulty_fhir_server({}, host="localhost")
    client = app_client(tmp_path, call_deadline=0.5)
    response = client.post(ORDER_SELECT, json=order_select(server.base_url, prefetch_keys=prefetched))
    if prefetched:
        detail = quality_detail(response)
        for key, kind in (("conditions", "Condition"), ("observations", "Observation")):
            assert f"**Unavailable: {key}**: {kind} query: no answer within the 0.5 s call deadline" in detail
    else:
        assert response.status_code == 412
        assert response.get_json()["issue"][0]["diagnostics"] == (
            "patient: Patient query: no answer within the 0.5 s call deadline"
        )
    # The fetch threads are free again although the names are still being resolved: none got through.
    client.application.extensions["cds_runtime"].executor.shutdown(wait=True)
    assert server.requested == []


def test_name_resolution_in_time_reaches_the_server(tmp_path, faulty_fhir_server):
    server = faulty_fhir_server({}, host="localhost")
    client = app_client(tmp_path, call_deadline=5)
    response = client.post(ORDER_SELECT, json=order_select(server.base_url))
    assert response.status_code == 200 and "data-quality" not in topics(response)
    assert len(server.requested) == 5


def test_queries_still_queued_at_the_deadline_never_start(faulty_fhir_server, runtime):
    """One fetch thread, five silent queries: the first runs out the deadline, the others are cancelled."""
    kinds = ("Condition", "Observation", "Immunization", "MedicationRequest", "Encounter")
    server = faulty_fhir_server(dict.fromkeys(kinds, "silent"))
    deadline = Deadline.after(0.3)
    client = FhirClient(requests.Session(), server.base_url, None, timeout=(1, 2), max_pages=1,
                        max_bytes=1000, deadline=deadline)  # fmt: skip
    queries = {k.lower(): f"{k}?patient=p" for k in kinds}
    with ThreadPoolExecutor(max_workers=1) as executor:
        gathered = gather(queries, {k: frozenset([v.split("?")[0]]) for k, v in queries.items()},
                          frozenset(), "p", None, client, executor, deadline)  # fmt: skip
    assert gathered.unavailable() == {
        k: f"{v.split('?')[0]} query: no answer within the 0.3 s call deadline" for k, v in queries.items()
    }
    assert len(server.requested) == 1  # the executor has finished: nothing queued ran after the deadline


# --- hostile bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["endless", "gzip", "huge"])
def test_an_endless_body_is_cut_at_the_byte_cap(tmp_path, faulty_fhir_server, fault):
    """Plain or gzip (the cap counts decompressed bytes), chunked or announced as 2 GB."""
    server = faulty_fhir_server({"Observation": fault})
    client = app_client(tmp_path, fhir_max_response_bytes=200_000)
    detail = quality_detail(client.post(ORDER_SELECT, json=order_select(server.base_url)))
    assert "**Unavailable: observations**: Observation query: the response is larger than 200000 bytes" in (
        detail
    )
    assert hung_up_on(server, "Observation")


def condition_nested(levels: int) -> str:
    """A searchset with one Condition whose extensions nest so that the JSON text is ``levels`` deep
    (written out by hand: Python's own json.dumps recurses, and fails, long before)."""
    wrappers = (levels - 6) // 2  # Bundle, entry list, entry, resource, extension list, and the innermost
    return (
        '{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": '
        '{"resourceType": "Condition", "id": "a", "extension": ['
        + '{"url": "urn:x", "extension": [' * wrappers
        + '{"url": "urn:x", "valueString": "deep"}'
        + "]}" * wrappers
        + "]}}]}"
    )


@responses.activate
def test_json_nested_beyond_1024_levels_is_refused_as_too_deeply_nested(client):
    serve_everything_but_conditions(responses)
    depth = 2000
    responses.get(f"{BASE}/Condition", body="[" * depth + "]" * depth)
    detail = quality_detail(client.post(ORDER_SELECT, json=order_select()))
    assert "**Unavailable: conditions**: Condition query: the response is too deeply nested" in detail


@responses.activate
def test_a_resource_nested_as_deep_as_the_parser_allows_is_still_read(client):
    serve_everything_but_conditions(responses)
    body = condition_nested(1024)
    assert orjson.loads(body)  # as deep as the parser goes: one level more is refused
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads("[" + body + "]")
    responses.get(f"{BASE}/Condition", body=body)
    response = client.post(ORDER_SELECT, json=order_select())
    assert response.status_code == 200
    assert not any("Unavailable: conditions" in c["detail"] for c in response.get_json()["cards"])


def test_requests_timeouts_are_what_the_settings_say(client, monkeypatch):
    """The (connect, read) pair reaches every FHIR call: without it a slow server would hold a worker."""
    sent: list[object] = []

    def fake_get(self, url, **kwargs):
        sent.append(kwargs.get("timeout"))
        raise requests.ConnectTimeout()

    monkeypatch.setattr(requests.Session, "get", fake_get)
    client.post(ORDER_SELECT, json=order_select())
    assert sent and set(sent) == {(3.05, 2.0)}  # conftest's settings: read timeout 2 s
