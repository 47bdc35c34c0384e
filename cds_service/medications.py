"""Recognising baricitinib and co-medications in MedicationRequests, and deriving the daily dose.

A dose that cannot be derived is ``None`` with the reason, never a guess: the cards say it is unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from . import codes
from .content import Content, MedicationGroup
from .fhir_read import Json, as_list, codings, concept_label, concept_words, parse_date, reference

_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*mg\b", re.IGNORECASE)
_PER_DAY = {"d": 1.0, "h": 24.0, "min": 1440.0, "wk": 1 / 7, "mo": 1 / 30, "a": 1 / 365}


@dataclass(frozen=True)
class BaricitinibOrder:
    resource: str
    name: str
    status: str
    is_draft: bool
    authored_on: date | None
    recognised_by: str
    strength_mg: float | None
    daily_dose_mg: float | None
    dose_problem: str | None
    ingredient_code: str  # RxNorm, from the content, for suggested orders
    source_json: Json  # the request as sent, so a suggestion can update or hold it; opaque to rules

    @property
    def dose_text(self) -> str:
        if self.daily_dose_mg is None:
            return f"unknown ({self.dose_problem})"
        return f"{self.daily_dose_mg:g} mg/day"


@dataclass(frozen=True)
class CoMedication:
    group: str
    group_label: str
    basis: str
    name: str
    resource: str
    is_draft: bool


def medication_concept(request: Json, contained_or_included: dict[str, Json]) -> Json | None:
    """The medication concept of a MedicationRequest: inline, contained (#id) or referenced (Medication/id)."""
    inline = request.get("medicationCodeableConcept")
    if isinstance(inline, dict):
        return inline
    ref = request.get("medicationReference")
    target = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(target, str):
        return None
    if target.startswith("#"):
        for contained in as_list(request.get("contained")):
            if isinstance(contained, dict) and contained.get("id") == target[1:]:
                return contained.get("code") if isinstance(contained.get("code"), dict) else None
        return None
    medication = contained_or_included.get(target.split("/_history")[0].removeprefix("/"))
    if medication is None and isinstance(ref.get("display"), str):
        return {"text": ref["display"]}
    return medication.get("code") if medication and isinstance(medication.get("code"), dict) else None


def recognise_baricitinib(concept: Json, content: Content) -> tuple[str, bool] | None:
    """How baricitinib was recognised (and whether only by an unverified code), or None."""
    spec = content.medications.baricitinib
    valueset = content.valueset(spec.valueset)
    unverified: str | None = None
    for system, code, _ in codings(concept):
        entry = valueset.matches(system, code)
        if entry and entry.verified:
            return f"RxNorm {code} ({entry.display})", False
        if entry:
            unverified = f"RxNorm {code} ({entry.display}, UNVERIFIED code)"
    name = content.baricitinib_names.find(concept_words(concept)).get("baricitinib")
    if name:
        return f"name '{name}'", False
    if unverified:
        return unverified, True
    return None


def strength_mg(concept: Json, content: Content) -> tuple[float | None, str | None]:
    by_code = content.medications.baricitinib.strength_by_code
    coded = {by_code[c] for s, c, _ in codings(concept) if s == codes.RXNORM and c in by_code}
    written = {float(m.group(1)) for w in concept_words(concept) for m in _STRENGTH.finditer(w)}
    found = coded | written
    if len(found) == 1:
        return found.pop(), None
    if not found:
        return None, "no tablet strength in the order's code or text"
    listed = ", ".join(f"{s:g} mg" for s in sorted(found))
    return None, f"the order names conflicting strengths ({listed})"


def daily_dose_mg(request: Json, strength: float | None, content: Content) -> tuple[float | None, str | None]:
    """Daily dose from dosageInstruction: R4 doseAndRate[].doseQuantity or STU3 doseQuantity."""
    spec = content.medications.baricitinib
    dosages = [d for d in as_list(request.get("dosageInstruction")) if isinstance(d, dict)]
    if len(dosages) != 1:
        return None, "no dosage instruction" if not dosages else "more than one dosage instruction"
    dosage = dosages[0]
    quantity = dosage.get("doseQuantity")
    rates = [r for r in as_list(dosage.get("doseAndRate")) if isinstance(r, dict)]
    if quantity is None and len(rates) == 1:
        quantity = rates[0].get("doseQuantity")
    if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), int | float):
        return None, "no dose quantity"
    unit = quantity.get("code") or quantity.get("unit")
    if unit is not None and not isinstance(unit, str):
        return None, "the dose unit is not text"
    if unit in spec.mass_units:
        per_dose = quantity["value"] * spec.mass_units[unit]
    elif unit in spec.tablet_units or unit is None:
        if strength is None:
            return None, "dose is in tablets and the tablet strength is unknown"
        per_dose = quantity["value"] * strength
    else:
        return None, f"dose unit '{unit}' is not a tablet or mass unit"
    repeat = (dosage.get("timing") or {}).get("repeat") if isinstance(dosage.get("timing"), dict) else None
    if not isinstance(repeat, dict):
        return None, "no timing (frequency and period)"
    frequency = repeat.get("frequency", 1)
    period, period_unit = repeat.get("period"), repeat.get("periodUnit")
    if not isinstance(frequency, int | float) or not isinstance(period, int | float) or period <= 0:
        return None, "timing has no usable frequency and period"
    if not isinstance(period_unit, str) or period_unit not in _PER_DAY:
        return None, f"timing period unit '{period_unit}' is not understood"
    return round(per_dose * frequency * _PER_DAY[period_unit] / period, 3), None


def read_baricitinib_order(
    request: Json, concept: Json, recognised: tuple[str, bool], is_draft: bool, content: Content
) -> BaricitinibOrder:
    strength, strength_problem = strength_mg(concept, content)
    dose, dose_problem = daily_dose_mg(request, strength, content)
    if dose is None and strength is None and dose_problem and "strength" in dose_problem:
        dose_problem = f"{dose_problem}: {strength_problem}"
    how, _ = recognised
    return BaricitinibOrder(
        resource=reference(request),
        name=concept_label(concept),
        status=str(request.get("status", "unknown")),
        is_draft=is_draft,
        authored_on=parse_date(request.get("authoredOn")),
        recognised_by=how,
        strength_mg=strength,
        daily_dose_mg=dose,
        dose_problem=dose_problem,
        ingredient_code=content.medications.baricitinib.ingredient,
        source_json=request,
    )


def co_medication_groups(concept: Json, content: Content) -> list[tuple[str, MedicationGroup, str]]:
    """(group key, group, drug name) for each co-medication group the concept belongs to."""
    hits: dict[str, str] = {}
    for system, code, _ in codings(concept):
        for key, entry in content.medication_groups.find(system, code):
            hits.setdefault(key, entry.display)
    for key, name in content.medication_names.find(concept_words(concept)).items():
        hits.setdefault(key, name)
    return [(key, content.medications.groups[key], name) for key, name in hits.items()]
