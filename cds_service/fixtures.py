"""Named FHIR fixtures: patients, draft orders and ready-made hook requests, for tests and demos.

- ``fhir_fixtures/patients/<name>.json`` is a FHIR Bundle. A *collection* Bundle is a whole patient; a
  *transaction* Bundle tagged ``extends:<base>`` is that base patient with the transaction applied (PUT
  replaces or adds a resource by type and id, DELETE removes one), so a boundary case is a few lines.
- ``fhir_fixtures/orders/<name>.json`` is one draft order resource.
- ``fhir_fixtures/requests/<hook>/<name>.json`` is a complete hook request.
- ``fhir_fixtures/synthea/<id>.json``: public Synthea sample patients, data nobody on this project wrote.
  They are derived from the public repository by ``fhir_fixtures/synthea/derive.py`` and not committed;
  ``synthea_request`` gives one SLE and a baricitinib order (or six months of therapy, on patient-view).

Fixture dates are written as of ``FIXTURE_DATE``. ``roll_dates`` shifts every date by the same number of
days so a fixture evaluated on a later day means what it meant then (the opioid CDS "date roller").
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from .settings import PROJECT_ROOT

FIXTURES = PROJECT_ROOT / "fhir_fixtures"
SYNTHEA = FIXTURES / "synthea"
FIXTURE_DATE = date(2026, 11, 25)
EXTENDS_SYSTEM = "urn:cds-fixture"
PREFETCH_OF_TYPE = {
    "Patient": "patient",
    "Condition": "conditions",
    "Observation": "observations",
    "Immunization": "immunizations",
    "MedicationRequest": "medications",
    "Medication": "medications",
    "Encounter": "encounters",
}
_DATE_KEYS = {
    "birthDate", "effectiveDateTime", "effectiveInstant", "issued", "authoredOn", "occurrenceDateTime",
    "recordedDate", "onsetDateTime", "abatementDateTime", "start", "end", "date", "lastUpdated",
}  # fmt: skip
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")

Json = dict[str, Any]


def _read(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def patient_resources(name: str) -> list[Json]:
    """The resources of a named patient fixture, with any ``extends`` chain applied."""
    bundle = _read(FIXTURES / "patients" / f"{name}.json")
    tags = [t.get("code", "") for t in (bundle.get("meta") or {}).get("tag", []) if t.get("system") == EXTENDS_SYSTEM]
    base = next((t.removeprefix("extends:") for t in tags if t.startswith("extends:")), None)
    if base is None:
        return [e["resource"] for e in bundle.get("entry", [])]
    resources = {(r["resourceType"], r.get("id")): r for r in patient_resources(base)}
    for entry in bundle.get("entry", []):
        method = (entry.get("request") or {}).get("method", "PUT")
        if method == "DELETE":
            kind, _, rid = entry["request"]["url"].partition("/")
            if resources.pop((kind, rid), None) is None:
                raise KeyError(f"{name}: DELETE {kind}/{rid}: not in {base}")
        else:
            resource = entry["resource"]
            resources[(resource["resourceType"], resource.get("id"))] = resource
    return list(resources.values())


def prefetch_for(resources: list[Json], keys: set[str] | None = None) -> dict[str, Json]:
    """Split a patient's resources into the service's prefetch keys (searchset Bundles, Patient bare)."""
    prefetch: dict[str, Json] = {}
    for resource in resources:
        key = PREFETCH_OF_TYPE.get(resource["resourceType"])
        if key is None or (keys is not None and key not in keys):
            continue
        if key == "patient":
            prefetch[key] = resource
            continue
        bundle = prefetch.setdefault(key, {"resourceType": "Bundle", "type": "searchset", "entry": []})
        bundle["entry"].append({"resource": resource})
    for key in keys or set(PREFETCH_OF_TYPE.values()):
        if key != "patient":
            prefetch.setdefault(key, {"resourceType": "Bundle", "type": "searchset", "entry": []})
    return prefetch


def order(name: str) -> Json:
    return _read(FIXTURES / "orders" / f"{name}.json")


def hook_request(hook: str, patient: str, orders: list[str] | None = None, prefetch_keys: set[str] | None = None) -> Json:
    """A complete hook request for a named patient and named draft orders, everything prefetched."""
    resources = patient_resources(patient)
    patient_id = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    drafts = [order(n) for n in orders or []]
    for draft in drafts:
        draft["subject"] = {"reference": f"Patient/{patient_id}"}
    return wrap_request(hook, patient_id, drafts, prefetch_for(resources, prefetch_keys))


def wrap_request(
    hook: str, patient_id: str, drafts: list[Json], prefetch: Json, hook_instance: str | None = None
) -> Json:
    """A hook request carrying ``drafts`` in the context field the hook uses for them."""
    context: Json = {"userId": "Practitioner/example", "patientId": patient_id}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": d} for d in drafts]}
    if hook == "order-select":
        context |= {"draftOrders": bundle, "selections": [f"{d['resourceType']}/{d['id']}" for d in drafts[:1]]}
    elif hook == "order-sign":
        context["draftOrders"] = bundle
    elif hook == "medication-prescribe":
        context["medications"] = bundle
    return {
        "hook": hook,
        "hookInstance": hook_instance or str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch,
    }


def request_file(name: str) -> Json:
    """A ready-made request, ``<hook>/<name>``."""
    return _read(FIXTURES / "requests" / f"{name}.json")


def roll_dates(document: Any, days: int) -> Any:
    """A copy of ``document`` with every FHIR date under a date-valued key moved by ``days``."""
    document = copy.deepcopy(document)
    if days == 0:
        return document

    def shift(value: str) -> str:
        if not _DATE.match(value):
            return value
        if len(value) == 10:
            return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
        moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + timedelta(days=days)
        text = moved.isoformat()
        return text.replace("+00:00", "Z") if value.endswith("Z") else text

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _DATE_KEYS and isinstance(value, str):
                    node[key] = shift(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return document


def rolled_to(document: Any, today: date) -> Any:
    return roll_dates(document, (today - FIXTURE_DATE).days)


def synthea_corpus() -> list[Path]:
    """The Synthea patients present (none until ``fhir_fixtures/synthea/derive.py`` has been run)."""
    return sorted(SYNTHEA.glob("*.json"))


def synthea_request(path: Path, hook: str, today: date) -> Json:
    """A hook request for a Synthea patient given SLE and baricitinib: a new start on the order hooks, six
    months on therapy on patient-view; its dates moved so that its newest result is from yesterday."""
    resources = [e["resource"] for e in _read(path)["entry"]]
    patient_id = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    taken = [r.get("effectiveDateTime", "")[:10] for r in resources if r["resourceType"] == "Observation"]
    as_of = date.fromisoformat(max(taken)) + timedelta(days=1) if taken else today
    subject = {"reference": f"Patient/{patient_id}"}
    sle = {
        "resourceType": "Condition", "id": "sle", "subject": subject,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "55464009",
                             "display": "Systemic lupus erythematosus"}]},
        "onsetDateTime": (as_of - timedelta(days=730)).isoformat(),
    }  # fmt: skip
    baricitinib = order("baricitinib-2mg") | {"subject": subject, "authoredOn": as_of.isoformat()}
    drafts = [baricitinib]
    if hook == "patient-view":
        started = (as_of - timedelta(days=182)).isoformat()
        resources = [*resources, baricitinib | {"id": "baricitinib", "status": "active", "authoredOn": started}]
        drafts = []
    body = wrap_request(hook, patient_id, drafts, prefetch_for([*resources, sle]))
    return roll_dates(body, (today - as_of).days)
