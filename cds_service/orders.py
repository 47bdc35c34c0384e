"""FHIR resources behind one-click suggestions: remove or hold an order, order tests and vaccines,
change a dose. The rules name what to do; this module writes the FHIR, so rules never touch JSON.
"""

from __future__ import annotations

import copy

from . import codes
from .cards import Action
from .facts import BaricitinibOrder


def _has_id(reference: str) -> bool:
    return "(no id)" not in reference


def remove_order(reference: str, what: str) -> Action | None:
    """Delete a draft order; None when the draft has no id the EHR could act on."""
    if not _has_id(reference):
        return None
    return Action(type="delete", description=f"Remove the draft order for {what}", resource_id=reference)


def hold_therapy(order: BaricitinibOrder, reason: str) -> Action | None:
    """Put an active MedicationRequest on hold (status on-hold), with the reason in statusReason."""
    if not _has_id(order.resource):
        return None
    held = copy.deepcopy(order.source_json)
    held["status"] = "on-hold"
    held["statusReason"] = {"text": reason}
    return Action(type="update", description=f"Put {order.name} on hold: {reason}", resource=held)


def _draft_order(kind: str, concept_field: str, system: str, code: str, display: str, patient_id: str,
                 reason: str) -> Action:  # fmt: skip
    """A draft order of ``kind`` for one coded thing, with the reason the card gives."""
    return Action(
        type="create",
        description=f"Order {display}",
        resource={
            "resourceType": kind,
            "status": "draft",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient_id}"},
            concept_field: {"coding": [{"system": system, "code": code, "display": display}], "text": display},
            "reasonCode": [{"text": reason}],
        },
    )


def order_tests(patient_id: str, tests: list[tuple[str, str]], reason: str) -> list[Action]:
    """One draft ServiceRequest per LOINC-coded test."""
    return [_draft_order("ServiceRequest", "code", codes.LOINC, loinc, display, patient_id, reason) for loinc, display in tests]


def order_vaccine(patient_id: str, cvx: str, display: str, reason: str) -> Action:
    """A draft MedicationRequest for a CVX-coded vaccine."""
    return _draft_order("MedicationRequest", "medicationCodeableConcept", codes.CVX, cvx, display, patient_id, reason)


def change_dose(order: BaricitinibOrder, strength_mg: float, reason: str) -> Action | None:
    """The draft baricitinib order rewritten to one ``strength_mg`` tablet once daily."""
    if not _has_id(order.resource):
        return None
    updated = copy.deepcopy(order.source_json)
    name = f"baricitinib {strength_mg:g} MG Oral Tablet"
    updated.pop("medicationReference", None)
    updated["medicationCodeableConcept"] = {
        "coding": [{"system": codes.RXNORM, "code": order.ingredient_code, "display": "baricitinib"}],
        "text": name,
    }
    updated["dosageInstruction"] = [
        {
            "text": f"{strength_mg:g} mg by mouth once daily",
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [
                {"doseQuantity": {"value": 1, "unit": "tablet", "system": codes.UCUM, "code": "{tablet}"}}
            ],
        }
    ]
    return Action(type="update", description=f"Change the order to {name}, once daily: {reason}", resource=updated)
