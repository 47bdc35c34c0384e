"""The HTTP layer against the CDS Hooks 2.0 field rules: discovery, each hook, feedback, errors, health."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from cds_service import Settings, create_app
from cds_service.facts import utc_today
from cds_service.feedback_store import get_store
from cds_service.fixtures import hook_request, request_file, rolled_to
from cds_service.services import SERVICES
from tests.db_helpers import read_only, sqlite_write_lock

HOOK_FIELDS = {
    "patient-view": {"userId", "patientId"},
    "order-select": {"userId", "patientId", "selections", "draftOrders"},
    "order-sign": {"userId", "patientId", "draftOrders"},
    "medication-prescribe": {"userId", "patientId", "medications"},
}


def request_for(hook: str, patient: str = "sle-baseline", orders: list[str] | None = None) -> dict:
    if orders is None:
        orders = [] if hook == "patient-view" else ["baricitinib-4mg"]
    return rolled_to(hook_request(hook, patient, orders), utc_today())


def no_nulls(node) -> bool:
    if isinstance(node, dict):
        return all(v is not None and no_nulls(v) for v in node.values())
    if isinstance(node, list):
        return all(no_nulls(v) for v in node)
    return True


# --- discovery ----------------------------------------------------------------------------------


def test_discovery_lists_each_declared_service_once(client):
    body = client.get("/cds-services").get_json()
    assert [s["id"] for s in body["services"]] == [s.id for s in SERVICES]
    assert {s["hook"] for s in body["services"]} == set(HOOK_FIELDS)
    for service in body["services"]:
        assert {"hook", "description", "id"} <= service.keys()
        assert set(service["prefetch"]) == {"patient", "conditions", "observations", "immunizations", "medications", "encounters"}
        assert all("{{context.patientId}}" in template for template in service["prefetch"].values())
        assert no_nulls(service)


def test_observations_prefetch_asks_only_for_the_labs_the_rules_use(client, content):
    template = client.get("/cds-services").get_json()["services"][0]["prefetch"]["observations"]
    asked = {c.split("|")[1] for c in template.split("code=")[1].split("&")[0].split(",")}
    assert asked == set(content.observation_codes())
    assert "751-8" in asked and "71774-4" not in asked  # ANC yes; the QFT mitogen control never
    assert "_sort=-date" in template


# --- hook calls ---------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.id)
def test_each_hook_answers_with_valid_cards(client, service):
    patient = "sle-on-baricitinib" if service.hook == "patient-view" else "sle-baseline"
    response = client.post(f"/cds-services/{service.id}", json=request_for(service.hook, patient))
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body["cards"], list) and no_nulls(body)
    for card in body["cards"]:
        uuid.UUID(card["uuid"])
        assert len(card["summary"]) < 140
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"]["label"] and card["source"]["url"].startswith("http")
        assert card["source"]["topic"]["code"]
        if card.get("suggestions"):
            assert card["selectionBehavior"] in {"at-most-one", "any"}
            for suggestion in card["suggestions"]:
                uuid.UUID(suggestion["uuid"])


def test_medication_prescribe_accepts_a_plain_list_of_stu3_medication_requests(client):
    body = request_for("medication-prescribe", orders=["baricitinib-4mg"])
    draft = body["context"]["medications"]["entry"][0]["resource"]
    dosage = draft["dosageInstruction"][0]
    dosage["doseQuantity"] = dosage.pop("doseAndRate")[0]["doseQuantity"]  # STU3 shape
    body["context"]["medications"] = [draft]
    body["prefetch"]["observations"]["entry"][0]["resource"]["valueQuantity"]["value"] = 0.5  # ANC 500
    response = client.post("/cds-services/baricitinib-prescribe", json=body)
    assert response.status_code == 200
    holds = [c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "lab-hold"]
    assert len(holds) == 1
    assert holds[0]["suggestions"][0]["actions"] == [
        {"type": "delete", "description": "Remove the draft order for baricitinib 4 MG Oral Tablet",
         "resourceId": "MedicationRequest/draft-baricitinib"}
    ]  # fmt: skip


def test_patient_not_on_baricitinib_gets_no_cards_on_patient_view(client):
    response = client.post("/cds-services/baricitinib-patient-view", json=request_for("patient-view", "sle-baseline"))
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_an_order_for_another_drug_gets_no_cards(client):
    body = request_for("order-sign", orders=["hydroxychloroquine"])
    assert client.post("/cds-services/baricitinib-order-sign", json=body).get_json() == {"cards": []}


# --- the sandbox's real requests ----------------------------------------------------------------


# Verbatim copies of ../shared/spec/sandbox/*-request.json: what the public sandbox really sends.
SANDBOX_REQUESTS = ["order-select/sandbox-hydroxychloroquine", "order-sign/sandbox-methotrexate"]


@pytest.mark.parametrize("name", SANDBOX_REQUESTS)
def test_sandbox_requests_are_accepted(client, fhir_server, name):
    body = request_file(name)
    body.pop("prefetch", None)  # the sandbox sometimes sends only `patient`, sometimes nothing
    fhir_server.serve_patient("http://127.0.0.1:8090/fhir", "sle-1")
    service = {"order-select": "baricitinib-order-select", "order-sign": "baricitinib-order-sign"}[body["hook"]]
    response = client.post(f"/cds-services/{service}", json=body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"cards": []}  # the sandbox orders hydroxychloroquine or methotrexate


def test_sandbox_category_object_and_untyped_bundle_do_not_break_a_baricitinib_order(client, fhir_server):
    body = request_file(SANDBOX_REQUESTS[0])
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {"text": "Olumiant 4 mg tablet"}
    fhir_server.serve_patient("http://127.0.0.1:8090/fhir", "sle-1", anc=0.4)
    response = client.post("/cds-services/baricitinib-order-select", json=body)
    assert response.status_code == 200
    topics = {c["source"]["topic"]["code"] for c in response.get_json()["cards"]}
    assert "lab-hold" in topics


# --- errors -------------------------------------------------------------------------------------


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == code and body["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_malformed_json_is_400(client):
    response = client.post("/cds-services/baricitinib-order-select", data="{not json", content_type="application/json")
    error(response, 400, "malformed-json")


def test_json_that_is_not_an_object_is_400(client):
    error(client.post("/cds-services/baricitinib-order-select", json=[1, 2]), 400, "malformed-json")


def test_wrong_content_type_is_415(client):
    response = client.post("/cds-services/baricitinib-order-select", data="hook=x", content_type="text/plain")
    error(response, 415, "unsupported-media-type")


def test_unknown_service_is_404(client):
    error(client.post("/cds-services/nope", json=request_for("order-select")), 404, "unknown-service")
    error(client.post("/cds-services/nope/feedback", json={"feedback": []}), 404, "unknown-service")


def test_hook_mismatch_is_400(client):
    body = request_for("order-sign")
    error(client.post("/cds-services/baricitinib-order-select", json=body), 400, "hook-mismatch")


@pytest.mark.parametrize(
    ("hook", "field"),
    [(hook, field) for hook, fields in HOOK_FIELDS.items() for field in sorted(fields)],
)
def test_missing_required_context_field_is_400_and_named(client, hook, field):
    body = request_for(hook)
    del body["context"][field]
    service = next(s.id for s in SERVICES if s.hook == hook)
    details = error(client.post(f"/cds-services/{service}", json=body), 400, "invalid-request")["details"]
    assert any(d["location"].endswith(field) for d in details), details


@pytest.mark.parametrize(
    ("change", "location"),
    [
        (lambda b: b.update(hookInstance="not-a-uuid"), "hookInstance"),
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b.update(fhirServer="ftp://example.org"), "fhirServer"),
        (lambda b: b.update(fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                                               "scope": "patient/*.read", "subject": "cds"}), ""),
        (lambda b: b["context"].update(selections=[]), "selections"),
        (lambda b: b["context"]["draftOrders"].update(resourceType="Patient"), "resourceType"),
    ],
    ids=["hookInstance-not-uuid", "hookInstance-missing", "fhirServer-not-http", "token-without-server",
         "selections-empty", "draftOrders-not-bundle"],
)  # fmt: skip
def test_invalid_request_fields_are_400(client, change, location):
    body = request_for("order-select")
    change(body)
    details = error(client.post("/cds-services/baricitinib-order-select", json=body), 400, "invalid-request")["details"]
    assert any(location in d["location"] for d in details), details


def test_validation_errors_never_echo_request_values(client):
    body = request_for("order-select")
    body["hookInstance"] = "Sally-Erythem-MRN-12345"
    response = client.post("/cds-services/baricitinib-order-select", json=body)
    assert response.status_code == 400 and "Sally" not in response.get_data(as_text=True)


def test_body_over_the_limit_is_413(tmp_path):
    small = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", max_body_bytes=2000))
    body = request_for("order-select")
    response = small.test_client().post("/cds-services/baricitinib-order-select", json=body)
    error(response, 413, "request-entity-too-large")


def chunked_post(client, body: bytes):
    """A POST framed as a chunked body: no Content-Length, the server marks where the body ends."""
    return client.post(
        "/cds-services/baricitinib-order-select",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_limit_is_413_not_cut_at_the_limit(tmp_path):
    small = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", max_body_bytes=2000))
    body = json.dumps(request_for("order-select")).encode()
    error(chunked_post(small.test_client(), body), 413, "request-entity-too-large")
    error(chunked_post(small.test_client(), b" " * 2001), 413, "request-entity-too-large")
    error(chunked_post(small.test_client(), b" " * 2000), 400, "malformed-json")  # exactly the limit is read


def test_a_chunked_body_within_the_limit_is_read_whole(client):
    response = chunked_post(client, json.dumps(request_for("order-select")).encode())
    assert response.status_code == 200 and response.get_json()["cards"]


def test_wrong_method_is_json_405(client):
    error(client.get("/cds-services/baricitinib-order-select"), 405, "method-not-allowed")


def test_unexpected_failure_is_json_500_without_a_stack_trace(client, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("patient Sally Erythem broke it")

    monkeypatch.setattr("cds_service.routes.run", explode)
    response = client.post("/cds-services/baricitinib-order-select", json=request_for("order-select"))
    body = error(response, 500, "internal-error")
    assert "Sally" not in json.dumps(body)


def test_no_prefetch_and_no_fhir_server_is_412_with_an_operation_outcome(client):
    body = request_for("order-select")
    del body["prefetch"]
    response = client.post("/cds-services/baricitinib-order-select", json=body)
    assert response.status_code == 412
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error" and "patient" in outcome["issue"][0]["diagnostics"]


def test_partial_prefetch_without_fhir_server_answers_with_a_data_quality_card(client):
    body = request_for("order-select")
    del body["prefetch"]["observations"]
    cards = client.post("/cds-services/baricitinib-order-select", json=body).get_json()["cards"]
    quality = [c for c in cards if c["source"]["topic"]["code"] == "data-quality"]
    assert len(quality) == 1
    assert "**Unavailable: observations**: not prefetched and no FHIR server was given" in quality[0]["detail"]
    assert "**Not checked: Lab hold**: needs observations, which could not be had" in quality[0]["detail"]


# --- feedback -----------------------------------------------------------------------------------


def test_feedback_is_stored_and_reported(client, app):
    body = request_for("order-select")
    body["prefetch"]["observations"]["entry"][0]["resource"]["valueQuantity"]["value"] = 0.5
    card = next(
        c for c in client.post("/cds-services/baricitinib-order-select", json=body).get_json()["cards"]
        if c["source"]["topic"]["code"] == "lab-hold"
    )
    feedback = {"feedback": [{
        "card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-25T10:00:00Z",
        "overrideReason": {"reason": {"code": "x", "system": "http://example.org", "display": "Benefit outweighs risk"},
                           "userComment": "discussed with rheumatology"},
    }]}  # fmt: skip
    response = client.post("/cds-services/baricitinib-order-select/feedback", json=feedback)
    assert response.status_code == 200 and response.get_json() == {"received": 1}
    get_store(app).card_log.close()  # the shown cards are logged behind the call: wait for them

    lab_hold = next(r for r in get_store(app).report(None, None) if r.topic == "lab-hold")
    assert (lab_hold.shown, lab_hold.overridden, lab_hold.override_rate) == (1, 1, 1.0)


def test_malformed_feedback_is_400(client):
    bad = {"feedback": [{"card": "abc", "outcome": "ignored", "outcomeTimestamp": "2026-11-25T10:00:00Z"}]}
    error(client.post("/cds-services/baricitinib-order-select/feedback", json=bad), 400, "invalid-feedback")


# --- health -------------------------------------------------------------------------------------


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"] == {"content": "loaded", "database": "writable"}


# --- the store down: cards keep coming, feedback is refused with Retry-After, readiness says so ---------


FEEDBACK_URL = "/cds-services/baricitinib-order-select/feedback"


def one_feedback(card: str = "9368d37b-283f-44a0-93ea-547cebab93ed") -> dict:
    return {"feedback": [{"card": card, "outcome": "accepted", "outcomeTimestamp": "2026-11-25T10:00:00Z"}]}


def store_unavailable(response) -> None:
    error(response, 503, "store-unavailable")
    assert response.headers["Retry-After"] == "5"


@pytest.fixture
def locked_app(tmp_path):
    """An open-mode app whose SQLite file another writer holds locked: the store times out."""
    path = tmp_path / "cds.sqlite3"
    app = create_app(Settings(database_url=f"sqlite:///{path}", store_timeout=0.3))
    yield app, path
    get_store(app).dispose()


def test_a_locked_store_costs_no_card_and_feedback_is_503_with_retry_after(locked_app):
    app, path = locked_app
    client = app.test_client()
    with sqlite_write_lock(path):
        cards = client.post("/cds-services/baricitinib-order-select", json=request_for("order-select"))
        store_unavailable(client.post(FEEDBACK_URL, json=one_feedback()))
        not_ready = client.get("/readyz")
        healthy = client.get("/healthz")
    assert cards.status_code == 200 and cards.get_json()["cards"]
    assert not_ready.status_code == 503
    checks = {"content": "loaded", "database": "not-writable"}
    assert not_ready.get_json() == {"status": "not-ready", "checks": checks}
    assert healthy.status_code == 200
    assert client.post(FEEDBACK_URL, json=one_feedback()).get_json() == {"received": 1}
    assert client.get("/readyz").status_code == 200


def test_a_read_only_database_file_is_not_ready_until_it_is_writable_again_without_a_restart(tmp_path):
    path = tmp_path / "cds.sqlite3"
    get_store(create_app(Settings(database_url=f"sqlite:///{path}"))).dispose()
    with read_only(path):
        app = create_app(Settings(database_url=f"sqlite:///{path}"))  # it starts: cards need no store
        client = app.test_client()
        assert client.get("/readyz").get_json()["checks"]["database"] == "not-writable"
        store_unavailable(client.post(FEEDBACK_URL, json=one_feedback()))
        cards = client.post("/cds-services/baricitinib-order-select", json=request_for("order-select"))
        assert cards.status_code == 200
    try:
        assert client.get("/readyz").status_code == 200
        assert client.post(FEEDBACK_URL, json=one_feedback()).status_code == 200
    finally:
        get_store(app).dispose()


@pytest.mark.parametrize(
    ("feedback", "location", "problem"),
    [
        (one_feedback("c" * 10_000_000), "feedback.0.card", "String should have at most 255 characters"),
        ({"feedback": one_feedback()["feedback"] * 101}, "feedback",
         "Value error, at most 100 items per request, not 101"),
    ],
    ids=["ten-megabyte-card", "too-many-items"],
)
def test_feedback_over_its_bounds_is_400_and_says_which_bound(client, feedback, location, problem):
    body = error(client.post(FEEDBACK_URL, json=feedback), 400, "invalid-feedback")
    assert {"location": location, "problem": problem} in body["details"]


# --- logs ---------------------------------------------------------------------------------------


def test_access_log_has_one_line_per_call_without_phi_or_token(client, fhir_server, caplog):
    body = request_for("order-select")
    del body["prefetch"]["conditions"]
    body["fhirServer"] = "http://127.0.0.1:8090/fhir"
    body["fhirAuthorization"] = {"access_token": "SECRET-TOKEN-123", "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "cds-service"}  # fmt: skip
    fhir_server.serve_patient("http://127.0.0.1:8090/fhir", "sle-baseline")
    with caplog.at_level(logging.DEBUG):
        client.post("/cds-services/baricitinib-order-select", json=body)
    access = [r for r in caplog.records if r.name == "cds_service.access"]
    assert len(access) == 1
    fields = access[0].fields
    assert fields["service"] == "baricitinib-order-select" and fields["status"] == 200
    assert fields["hookInstance"] == body["hookInstance"] and isinstance(fields["cards"], list)
    everything = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    for secret in ("SECRET-TOKEN-123", "sle-baseline", "1990-01-01", "Erythem"):
        assert secret not in everything


@pytest.mark.parametrize(
    "name",
    ["order-select/low-anc-new-start", "order-sign/new-start-4mg", "medication-prescribe/stu3-list-new-start",
     "patient-view/on-baricitinib"],
)  # fmt: skip
def test_ready_made_requests_work(client, name):
    body = rolled_to(request_file(name), utc_today())
    service = next(s.id for s in SERVICES if s.hook == body["hook"])
    response = client.post(f"/cds-services/{service}", json=body)
    assert response.status_code == 200
    if name == "order-select/low-anc-new-start":
        assert "lab-hold" in {c["source"]["topic"]["code"] for c in response.get_json()["cards"]}
