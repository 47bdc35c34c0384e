"""Selective parsing gives exactly the cards full parsing gives.

The service validates with fhir.resources only the resources its rules read (the newest usable result of
each lab, the conditions and immunizations that match a value set, the Patient) and reads the rest as
JSON. The reference path, ``bench/full_parse.py``, validates every prefetched resource with its R4B model
first, drops the invalid ones and hands the rules what the models serialise.

Every fixture is valid R4B, so on the fixtures as they are both paths would see the same data. Each
prefetch therefore also carries malformed resources that no rule needs: an older, malformed copy of
every lab result, a malformed result of a lab no rule reads, a malformed Condition in no value set, a
malformed Immunization without a CVX code and a malformed active order for an unrelated drug. Full
parsing drops them all (the test checks it does); the service must not notice them. For every patient
fixture, each hook (a baricitinib draft for the order hooks) and two generated patients with years of
labs, both paths go through the real app, and the cards must agree in everything but their uuids.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from bench.full_parse import fully_parsed
from bench.patients import hook_request as generated_request
from cds_service import Settings, create_app
from cds_service.facts import utc_today
from cds_service.facts.labs import IGNORED_OBSERVATION_STATUS
from cds_service.fhir.dates import parse_datetime
from cds_service.fixtures import FIXTURES, hook_request, rolled_to
from cds_service.services import SERVICES

PATIENTS = sorted(p.stem for p in (FIXTURES / "patients").glob("*.json"))
HOOKS = [s.hook for s in SERVICES]
SERVICE_FOR_HOOK = {s.hook: s.id for s in SERVICES}
NOT_R4B = {"malformedElement": "R4B models forbid unknown elements"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    database = tmp_path_factory.mktemp("selective") / "cds.sqlite3"
    return create_app(Settings(database_url=f"sqlite:///{database}")).test_client()


def _entries(prefetch: dict[str, Any], key: str) -> list[dict[str, Any]]:
    bundle = prefetch.setdefault(key, {"resourceType": "Bundle", "type": "searchset", "entry": []})
    return bundle.setdefault("entry", [])


def with_malformed_resources_no_rule_needs(prefetch: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A copy of ``prefetch`` with malformed resources added that no rule reads; how many were added."""
    prefetch = copy.deepcopy(prefetch)
    patient = {"reference": f"Patient/{prefetch['patient']['id']}"}
    added: list[dict[str, Any]] = []
    for entry in list(_entries(prefetch, "observations")):
        result = entry["resource"]
        effective = parse_datetime(result.get("effectiveDateTime"))
        if result.get("resourceType") != "Observation" or effective is None:
            continue
        if result.get("status") in IGNORED_OBSERVATION_STATUS:
            continue  # the service looks past these; an older copy could be the one it reads
        older = {**copy.deepcopy(result), **NOT_R4B, "id": f"{result.get('id')}-older-malformed"}
        older["effectiveDateTime"] = (effective - timedelta(days=3650)).isoformat()
        added.append(older)
        _entries(prefetch, "observations").append({"resource": older})
    unused = [
        (
            "observations",
            {
                "resourceType": "Observation",
                "id": "glucose-malformed",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                "subject": patient,
                "effectiveDateTime": "2026-11-01",
                "valueQuantity": {"value": 5.4, "unit": "mmol/L"},
            },
        ),
        (
            "conditions",
            {
                "resourceType": "Condition",
                "id": "hypertension-malformed",
                "subject": patient,
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
            },
        ),
        (
            "immunizations",
            {
                "resourceType": "Immunization",
                "id": "uncoded-malformed",
                "status": "completed",
                "patient": patient,
                "occurrenceDateTime": "2026-01-01",
                "vaccineCode": {"text": "a vaccine named in text only"},
            },
        ),
        (
            "medications",
            {
                "resourceType": "MedicationRequest",
                "id": "paracetamol-malformed",
                "status": "active",
                "intent": "order",
                "subject": patient,
                "medicationCodeableConcept": {"text": "paracetamol 500 mg tablet"},
            },
        ),
    ]
    for key, resource in unused:
        resource.update(NOT_R4B)
        added.append(resource)
        _entries(prefetch, key).append({"resource": resource})
    return prefetch, len(added)


def without_uuids(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_uuids(v) for k, v in node.items() if k != "uuid"}
    if isinstance(node, list):
        return [without_uuids(v) for v in node]
    return node


def cards(client, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(f"/cds-services/{SERVICE_FOR_HOOK[request['hook']]}", json=request)
    assert response.status_code == 200, response.get_json()
    return without_uuids(response.get_json()["cards"])


def assert_same_cards(client, requests: list[dict[str, Any]], what: str) -> None:
    """``requests``: one per hook, all with the same prefetch."""
    prefetch, added = with_malformed_resources_no_rule_needs(requests[0]["prefetch"])
    parsed, dropped = fully_parsed(prefetch)
    assert len(dropped) == added, f"{what}: full parsing dropped {dropped}, expected the {added} added"
    for request in requests:
        assert request["prefetch"] == requests[0]["prefetch"]
        selective = cards(client, {**request, "prefetch": prefetch})
        full = cards(client, {**request, "prefetch": parsed})
        assert selective == full, (
            f"{what}, {request['hook']}: selective and full parsing give different cards"
        )


@pytest.mark.parametrize("patient", PATIENTS)
def test_selective_parsing_gives_the_cards_of_full_parsing(client, patient: str):
    today = utc_today()
    requests = [
        rolled_to(hook_request(hook, patient, [] if hook == "patient-view" else ["baricitinib-4mg"]), today)
        for hook in HOOKS
    ]
    assert_same_cards(client, requests, patient)


@pytest.mark.parametrize("observations", [100, 1_000])
def test_selective_parsing_gives_the_cards_of_full_parsing_for_years_of_labs(client, observations: int):
    content = client.application.extensions["cds_runtime"].content
    requests = [generated_request(observations, content, utc_today(), hook=hook) for hook in HOOKS]
    assert_same_cards(client, requests, f"{observations} generated Observations")


def test_the_malformed_additions_match_no_value_set(client):
    """What makes them unneeded: no lab, condition group or vaccine group of the content matches them."""
    content = client.application.extensions["cds_runtime"].content
    assert "2345-7" not in content.observation_codes()
    for group in content.conditions.groups.values():
        assert not content.valueset(group.valueset).matches("http://snomed.info/sct", "38341003")


def test_every_patient_fixture_is_compared():
    assert len(PATIENTS) >= 20
