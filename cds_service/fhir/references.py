"""References between resources: a label for cards, and whether a resource is about the context patient.

EHRs write the same patient as ``Patient/123``, ``https://ehr.example/fhir/Patient/123``,
``Patient/123/_history/4`` and, in Bundles such as Synthea's, ``urn:uuid:<id>``. All of them name the
patient whose id is ``123`` (or ``<id>``).
"""

from __future__ import annotations

from typing import Any, Literal

from . import Json

# The element that names the patient a resource is about.
PATIENT_ELEMENT = {"Observation": "subject", "Condition": "subject", "MedicationRequest": "subject",
                   "Immunization": "patient", "ServiceRequest": "subject"}  # fmt: skip


def reference(resource: Json) -> str:
    """``Type/id`` of a resource, or ``Type (no id)``."""
    kind = resource.get("resourceType", "Resource")
    rid = resource.get("id")
    return f"{kind}/{rid}" if isinstance(rid, str) and rid else f"{kind} (no id)"


def referenced_patient_id(value: Any) -> str | None:
    """The patient id a Reference's ``reference`` names, or None when it names none that can be read."""
    target = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(target, str) or not target:
        return None
    if target.startswith("urn:uuid:"):
        return target.removeprefix("urn:uuid:")
    parts = target.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return parts[-1]
    return None


def about_patient(resource: Json, patient_id: str) -> Literal["yes", "other", "unstated"]:
    """Whether ``resource`` is about the patient: its subject/patient names them, another patient, or no one.

    A resource that names no patient came from a query scoped to the patient (or the EHR's own draft
    orders) and is read as theirs; one that names someone else never is.
    """
    element = PATIENT_ELEMENT.get(str(resource.get("resourceType")))
    value = resource.get(element) if element else None
    if value in (None, "", {}):
        return "unstated"
    named = referenced_patient_id(value)
    if named is None:
        target = value.get("reference") if isinstance(value, dict) else value
        return "unstated" if not target else "other"
    return "yes" if named == patient_id else "other"
