"""Medications: baricitinib and co-medications in MedicationRequests, and the daily dose of a sig.

A dose that cannot be derived is ``None`` with the reason, never a guess: the cards say it is unknown.
"""

from __future__ import annotations

import re
from dataclasses import replace

from .. import codes
from ..content import Content, MedicationGroup
from ..fhir import Json
from ..fhir.codings import as_list, codings, concept_label, concept_words
from ..fhir.dates import parse_date
from ..fhir.references import reference
from ..fhir.timing import TimesPerDay, times_per_day
from .immunizations import vaccine
from .model import BaricitinibOrder, CoMedication, VaccineOrder
from .notes import Notes

_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*mg\b", re.IGNORECASE)


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
            unverified = f"product code RxNorm {code} ({entry.display})"
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


def _dose_per_intake(dosage: Json) -> tuple[Json, Json] | str:
    """(low, high) dose Quantities of one intake: doseQuantity, or doseRange's low and high (R4 in
    doseAndRate, STU3 directly on the Dosage)."""
    rates = [r for r in as_list(dosage.get("doseAndRate")) if isinstance(r, dict)]
    holder = dosage if "doseQuantity" in dosage or "doseRange" in dosage or not rates else rates[0]
    if len(rates) > 1 and holder is not dosage:
        return "more than one dose in the dosage instruction"
    quantity, dose_range = holder.get("doseQuantity"), holder.get("doseRange")
    if isinstance(quantity, dict):
        return quantity, quantity
    if isinstance(dose_range, dict) and isinstance(dose_range.get("high"), dict):
        high = dose_range["high"]
        low = dose_range.get("low") if isinstance(dose_range.get("low"), dict) else high
        return low, high
    return "no dose quantity"


def _mg(quantity: Json, strength: float | None, content: Content) -> float | str:
    spec = content.medications.baricitinib
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return "no dose quantity"
    unit = quantity.get("code") or quantity.get("unit")
    if unit is not None and not isinstance(unit, str):
        return "the dose unit is not text"
    if unit in spec.mass_units:
        return value * spec.mass_units[unit]
    if unit in spec.tablet_units or unit is None:
        if strength is None:
            return "dose is in tablets and the tablet strength is unknown"
        return value * strength
    return f"dose unit '{unit}' is not a tablet or mass unit"


def daily_dose_mg(
    request: Json, strength: float | None, content: Content
) -> tuple[tuple[float, float] | None, str | None]:
    """(least, most) mg a day from dosageInstruction, or None and why; never a guess."""
    dosages = [d for d in as_list(request.get("dosageInstruction")) if isinstance(d, dict)]
    if len(dosages) != 1:
        return None, "no dosage instruction" if not dosages else "more than one dosage instruction"
    dosage = dosages[0]
    per_intake = _dose_per_intake(dosage)
    if isinstance(per_intake, str):
        return None, per_intake
    low_mg, high_mg = (_mg(q, strength, content) for q in per_intake)
    for problem in (low_mg, high_mg):
        if isinstance(problem, str):
            return None, problem
    dosing = content.medications.dosing
    times = times_per_day(dosage.get("timing"), dosing.timing_codes, dosing.timing_events)
    if not isinstance(times, TimesPerDay):
        return None, times
    assert isinstance(low_mg, float | int) and isinstance(high_mg, float | int)
    return (round(low_mg * times.low, 3), round(high_mg * times.high, 3)), None


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
        daily_dose_mg=dose[1] if dose else None,
        daily_dose_low_mg=dose[0] if dose else None,
        dose_problem=dose_problem,
        ingredient_code=content.medications.baricitinib.ingredient,
        source_json=request,
    )


def co_medication_groups(concept: Json, request: Json, content: Content) -> list[tuple[str, MedicationGroup, str]]:
    """(group key, group, drug name) for each co-medication group the ordered product belongs to; a product
    for local use (an eye drop, a skin ointment) is not a member of a group of systemic drugs."""
    hits: dict[str, str] = {}
    for system, code, _ in codings(concept):
        for key, entry in content.medication_groups.find(system, code):
            hits.setdefault(key, entry.display)
    for key, name in content.medication_names.find(concept_words(concept)).items():
        hits.setdefault(key, name)
    groups = content.medications.groups
    local = bool(hits) and _local_use(concept, request, content)
    return [(key, groups[key], name) for key, name in hits.items() if not (local and groups[key].systemic_only)]


def _local_use(concept: Json, request: Json, content: Content) -> bool:
    routes = [d.get("route") for d in as_list(request.get("dosageInstruction")) if isinstance(d, dict)]
    words = concept_words(concept) + [w for route in routes for w in concept_words(route)]
    return bool(content.local_use_words.find(words))


def active_medications(
    resources: list[Json], content: Content, notes: Notes
) -> tuple[list[BaricitinibOrder], list[CoMedication], list[CoMedication]]:
    """Baricitinib and co-medications among the patient's active MedicationRequests, and the co-medication
    courses marked completed (an EHR may send them; a completed latent-TB course matters)."""
    medications = {reference(r): r for r in resources if r.get("resourceType") == "Medication"}
    baricitinib: list[BaricitinibOrder] = []
    co_meds: list[CoMedication] = []
    completed: list[CoMedication] = []
    for request in resources:
        if request.get("resourceType") != "MedicationRequest":
            continue
        if request.get("status") == "active":
            _sort(request, medications, False, content, notes, baricitinib, co_meds)
        elif request.get("status") == "completed" and (concept := medication_concept(request, medications)):
            completed += [replace(_co_medication(key, group, name, request, False), completed=True)
                          for key, group, name in co_medication_groups(concept, request, content)]  # fmt: skip
    return baricitinib, co_meds, completed


def draft_orders(
    orders: list[Json], content: Content, notes: Notes
) -> tuple[list[BaricitinibOrder], list[CoMedication], list[VaccineOrder]]:
    """Baricitinib, co-medications and vaccines among the draft orders of an order hook."""
    baricitinib: list[BaricitinibOrder] = []
    co_meds: list[CoMedication] = []
    vaccines: list[VaccineOrder] = []
    for order in orders:
        kind = order.get("resourceType")
        concept = {"MedicationRequest": None, "ServiceRequest": "code", "Immunization": "vaccineCode"}.get(
            kind or "", ""
        )
        if concept == "":
            continue
        concept_json = medication_concept(order, {}) if concept is None else order.get(concept)
        ordered_vaccine = vaccine(concept_json, content)
        if ordered_vaccine:
            cvx, display, groups = ordered_vaccine
            vaccines.append(VaccineOrder(groups, cvx, display, reference(order)))
        elif kind == "MedicationRequest":
            _sort(order, {}, True, content, notes, baricitinib, co_meds)
    return baricitinib, co_meds, vaccines


def _sort(
    request: Json, medications: dict[str, Json], is_draft: bool, content: Content, notes: Notes,
    baricitinib: list[BaricitinibOrder], co_meds: list[CoMedication],
) -> None:  # fmt: skip
    concept = medication_concept(request, medications)
    if concept is None:
        notes.skip(request, "the medication could not be identified (no code, text or readable Medication)")
        return
    recognised = recognise_baricitinib(concept, content)
    if recognised:
        order = read_baricitinib_order(request, concept, recognised, is_draft, content)
        baricitinib.append(order)
        if recognised[1]:
            notes.skip(request, f"baricitinib recognised only by {order.recognised_by}; confirm the product")
        if order.daily_dose_mg is None and is_draft:
            notes.skip(request, f"the daily dose of {order.name} cannot be derived: {order.dose_problem}")
        return
    for key, group, name in co_medication_groups(concept, request, content):
        co_meds.append(_co_medication(key, group, name, request, is_draft))


def _co_medication(key: str, group: MedicationGroup, name: str, request: Json, is_draft: bool) -> CoMedication:
    started = parse_date(request.get("authoredOn"))
    return CoMedication(key, group.label, group.basis, name, reference(request), is_draft, started)
