"""Prefetch, else the FHIR server: success, bearer token, pagination, failures, 412 vs partial answers."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from cds_service.facts import utc_today
from cds_service.fhir_client import Deadline, FhirClient, FhirTruncated, FhirUnavailable
from cds_service.fixtures import hook_request, rolled_to
from cds_service.gather import from_prefetch

BASE = "http://127.0.0.1:8090/fhir"
TOKEN = {"access_token": "tok-abc", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cds"}


def order_select(prefetch_keys: set[str] | None = None, token: bool = True) -> dict:
    body = rolled_to(hook_request("order-select", "sle-baseline", ["baricitinib-4mg"], prefetch_keys), utc_today())
    if prefetch_keys == set():
        body.pop("prefetch")
    body["fhirServer"] = BASE
    if token:
        body["fhirAuthorization"] = TOKEN
    return body


def call(client, body):
    return client.post("/cds-services/baricitinib-order-select", json=body)


def quality_detail(response) -> str:
    cards = [c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "data-quality"]
    assert len(cards) == 1, response.get_json()
    return cards[0]["detail"]


def test_when_everything_is_prefetched_the_fhir_server_is_not_called(client, fhir_server):
    fhir_server.serve_patient(BASE, "sle-baseline")
    assert call(client, order_select()).status_code == 200
    assert fhir_server.calls == []


def test_when_prefetch_is_absent_every_key_is_fetched_with_the_bearer_token(client, fhir_server):
    fhir_server.serve_patient(BASE, "sle-baseline", anc=0.5)
    response = call(client, order_select(prefetch_keys=set()))
    assert response.status_code == 200
    paths = sorted(c.path_url.split("?")[0] for c in fhir_server.calls)
    assert paths == ["/fhir/Condition", "/fhir/Encounter", "/fhir/Immunization", "/fhir/MedicationRequest",
                     "/fhir/Observation", "/fhir/Patient/sle-baseline"]  # fmt: skip
    assert {c.headers["Authorization"] for c in fhir_server.calls} == {"Bearer tok-abc"}
    assert "lab-hold" in {c["source"]["topic"]["code"] for c in response.get_json()["cards"]}


def test_without_fhir_authorization_no_authorization_header_is_sent(client, fhir_server):
    fhir_server.serve_patient(BASE, "sle-baseline")
    call(client, order_select(prefetch_keys={"patient"}, token=False))
    assert fhir_server.calls and all("Authorization" not in c.headers for c in fhir_server.calls)


@pytest.mark.parametrize("value", [None, {"resourceType": "OperationOutcome", "issue": []}], ids=["null", "outcome"])
def test_a_null_or_failed_prefetch_key_is_fetched(client, fhir_server, value):
    fhir_server.serve_patient(BASE, "sle-baseline")
    body = order_select()
    body["prefetch"]["conditions"] = value
    call(client, body)
    assert [c.path_url.split("?")[0] for c in fhir_server.calls] == ["/fhir/Condition"]


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (401, "the server answered HTTP 401"),
        (500, "the server answered HTTP 500"),
        (requests.exceptions.ReadTimeout(), "the server did not answer in time"),
        ("{truncated", "the response is not JSON"),
        ('"a string"', "the response is not a FHIR resource"),
    ],
    ids=["401", "500", "timeout", "malformed-json", "not-a-resource"],
)
def test_one_failing_query_gives_the_other_cards_and_a_data_quality_card(client, fhir_server, failure, reason):
    fhir_server.serve_patient(BASE, "sle-baseline", anc=0.5, fail={"Condition": failure})
    response = call(client, order_select(prefetch_keys={"patient"}))
    assert response.status_code == 200
    topics = {c["source"]["topic"]["code"] for c in response.get_json()["cards"]}
    assert "lab-hold" in topics  # observations were fetched fine
    detail = quality_detail(response)
    assert f"**Unavailable: conditions**: Condition query: {reason}" in detail
    assert "tok-abc" not in json.dumps(response.get_json())


def test_an_unreachable_fhir_server_is_412(client, fhir_server):
    fhir_server.serve_patient(BASE, "sle-baseline", fail={k: requests.exceptions.ConnectionError() for k in
                                                          ("Patient", "Condition", "Observation", "Immunization", "MedicationRequest")})  # fmt: skip
    response = call(client, order_select(prefetch_keys=set()))
    assert response.status_code == 412
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_a_failing_required_key_is_412(client, fhir_server):
    fhir_server.serve_patient(BASE, "sle-baseline", fail={"Patient": 404})
    response = call(client, order_select(prefetch_keys={"conditions", "observations", "immunizations", "medications"}))
    assert response.status_code == 412
    assert "patient" in response.get_json()["issue"][0]["diagnostics"]


# --- FhirClient on its own ----------------------------------------------------------------------


def client_for(max_pages: int = 3, max_bytes: int = 1_000_000, token: str | None = "t") -> FhirClient:
    return FhirClient(
        requests.Session(), BASE, token, timeout=(1, 1), max_pages=max_pages, max_bytes=max_bytes,
        deadline=Deadline.after(30),
    )  # fmt: skip


def page(ids: list[str], next_url: str | None = None) -> dict:
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Condition", "id": i}} for i in ids]}
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


@responses.activate
def test_search_follows_next_links():
    responses.get(f"{BASE}/Condition?patient=1", json=page(["a", "b"], f"{BASE}/Condition?page=2"))
    responses.get(f"{BASE}/Condition?page=2", json=page(["c"]))
    assert [r["id"] for r in client_for().search("Condition?patient=1")] == ["a", "b", "c"]


@responses.activate
def test_search_stops_at_the_page_bound():
    for n in range(1, 5):
        responses.get(f"{BASE}/Condition?page={n}", json=page([str(n)], f"{BASE}/Condition?page={n + 1}"))
    with pytest.raises(FhirUnavailable, match="more than 3 pages"):
        client_for(max_pages=3).search("Condition?page=1")


@responses.activate
def test_a_newest_first_search_at_the_page_bound_keeps_the_newest_results():
    for n in range(1, 5):
        responses.get(f"{BASE}/Observation?_sort=-date&page={n}", json=page([str(n)], f"{BASE}/Observation?_sort=-date&page={n + 1}"))
    with pytest.raises(FhirTruncated) as truncated:
        client_for(max_pages=3).search("Observation?_sort=-date&page=1")
    assert [r["id"] for r in truncated.value.resources] == ["1", "2", "3"]
    assert truncated.value.reason == "Observation query: only the newest 3 results were read (3 pages); older ones were not"


def test_a_patient_with_more_lab_pages_than_the_bound_is_checked_on_the_newest_and_told(client, fhir_server):
    fhir_server.serve_patient(BASE, "sle-baseline", anc=0.5, extra_pages={"Observation": 12})
    response = call(client, order_select(prefetch_keys={"patient", "conditions", "immunizations", "medications"}))
    assert response.status_code == 200
    assert "lab-hold" in {c["source"]["topic"]["code"] for c in response.get_json()["cards"]}
    assert "observations: Observation query: only the newest" in quality_detail(response)


@responses.activate
def test_search_detects_a_paging_loop():
    responses.get(f"{BASE}/Condition?page=1", json=page(["a"], f"{BASE}/Condition?page=2"))
    responses.get(f"{BASE}/Condition?page=2", json=page(["b"], f"{BASE}/Condition?page=1"))
    with pytest.raises(FhirUnavailable, match="loop"):
        client_for(max_pages=10).search("Condition?page=1")


@responses.activate
def test_search_never_follows_a_next_link_to_another_host():
    responses.get(f"{BASE}/Condition?page=1", json=page(["a"], "http://attacker.example/steal"))
    with pytest.raises(FhirUnavailable, match="away from the FHIR server"):
        client_for().search("Condition?page=1")
    assert len(responses.calls) == 1


@responses.activate
def test_redirects_are_not_followed():
    responses.get(f"{BASE}/Patient/1", status=302, headers={"Location": "http://attacker.example/"})
    with pytest.raises(FhirUnavailable, match="redirected"):
        client_for().search("Patient/1")


@responses.activate
def test_an_oversized_response_is_cut_off():
    responses.get(f"{BASE}/Condition", body=json.dumps(page([str(i) for i in range(500)])))
    with pytest.raises(FhirUnavailable, match="larger than"):
        client_for(max_bytes=1000).search("Condition")


@responses.activate
def test_failure_reasons_never_name_the_query_parameters():
    responses.get(f"{BASE}/Condition?patient=sally-erythem", status=500)
    with pytest.raises(FhirUnavailable) as failure:
        client_for().search("Condition?patient=sally-erythem")
    assert "sally" not in failure.value.reason


@responses.activate
def test_search_outcome_entries_are_dropped():
    bundle = page(["a"])
    bundle["entry"].append({"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}})
    responses.get(f"{BASE}/Condition", json=bundle)
    assert [r["resourceType"] for r in client_for().search("Condition")] == ["Condition"]


def test_from_prefetch_reads_bundles_and_single_resources():
    assert from_prefetch({"resourceType": "Patient", "id": "1"}) == [{"resourceType": "Patient", "id": "1"}]
    assert from_prefetch(page(["a"])) == [{"resourceType": "Condition", "id": "a"}]
    assert from_prefetch(None) is None
    assert from_prefetch({"resourceType": "OperationOutcome"}) is None
    assert from_prefetch("junk") is None
