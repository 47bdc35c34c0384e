"""Step 4: PatientFacts, typed and unit-normalised, built from the gathered FHIR data.

Every value keeps its unit, date and resource so a card can say what fired it. Only the resources the
rules read are validated (the newest valid result of each lab, the conditions and immunizations that
match a value set, the Patient), on the elements the rules read (fhir_elements.py); the rest stay JSON.
A resource that fails validation is skipped and reported, never allowed to sink the call. Rules never
see raw FHIR JSON and never read the clock: ``as_of`` is given.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from . import codes
from .content import Content, LabDefinition, Situation
from .fhir_elements import Condition, Immunization, Observation, Patient, well_formed
from .fhir_read import (
    Json,
    as_list,
    codings,
    concept_label,
    concept_words,
    parse_date,
    parse_datetime,
    reference,
    status_code,
)
from .gather import Gathered
from .medications import (
    BaricitinibOrder,
    CoMedication,
    co_medication_groups,
    medication_concept,
    read_baricitinib_order,
    recognise_baricitinib,
)

IGNORED_OBSERVATION_STATUS = {"entered-in-error", "cancelled", "registered"}
CURRENT_CLINICAL_STATUS = {"active", "recurrence", "relapse"}
NEVER_COUNTS_VERIFICATION = {"refuted", "entered-in-error"}
ORDER_HOOKS = {"order-select", "order-sign", "medication-prescribe"}


@dataclass(frozen=True)
class DataIssue:
    """Something the service could not read or had to ignore; shown in the data-quality card."""

    what: str
    why: str


@dataclass(frozen=True)
class LabResult:
    lab: str
    label: str
    value: float
    unit: str
    reported: str
    effective: datetime
    resource: str
    reference_high: float | None = None
    shown_unit: str = ""  # the canonical unit as clinicians write it

    @property
    def day(self) -> date:
        return self.effective.date()

    def describe(self) -> str:
        shown = f"{self.value:g} {self.shown_unit or self.unit}"
        same = self.reported == shown
        return f"{self.label} {shown}{'' if same else f' (reported {self.reported})'} on {self.day.isoformat()}"


@dataclass(frozen=True)
class CodedResult:
    lab: str
    label: str
    result: Literal["positive", "negative", "indeterminate"]
    reported: str
    effective: datetime
    resource: str

    @property
    def day(self) -> date:
        return self.effective.date()

    def describe(self) -> str:
        return f"{self.label} {self.result} (reported '{self.reported}') on {self.day.isoformat()}"


@dataclass(frozen=True)
class LabReading:
    """The latest valid result of one lab and what it means today."""

    lab: str
    label: str
    status: Literal["current", "stale", "missing", "unreadable", "unavailable"]
    result: LabResult | CodedResult | None = None
    problem: str | None = None
    lookback_days: int | None = None  # the lab's look-back window (cards/labs.toml), for current/stale

    @property
    def current(self) -> LabResult | CodedResult | None:
        return self.result if self.status == "current" else None

    def describe(self) -> str:
        if self.status == "current" and self.result:
            return self.result.describe()
        if self.status == "stale" and self.result:
            return f"{self.result.describe()} (out of date)"
        if self.status == "unreadable":
            return f"{self.label}: {self.problem}"
        if self.status == "unavailable":
            return f"{self.label}: lab results could not be retrieved"
        return f"{self.label}: no result on record"


@dataclass(frozen=True)
class Egfr:
    value: float
    day: date
    how: str  # what the value is and where it came from, for the card

    def describe(self) -> str:
        return f"eGFR {self.value:g} mL/min/1.73 m2 ({self.how})"


@dataclass(frozen=True)
class ConditionFact:
    group: str
    label: str
    code: str
    display: str
    resource: str
    recorded: date | None

    def describe(self) -> str:
        when = f", recorded {self.recorded.isoformat()}" if self.recorded else ""
        return f"{self.display} ({self.code}{when})"


@dataclass(frozen=True)
class VaccineDose:
    groups: frozenset[str]
    cvx: str
    display: str
    day: date
    resource: str


@dataclass(frozen=True)
class VaccineOrder:
    groups: frozenset[str]
    cvx: str
    display: str
    resource: str


@dataclass(frozen=True)
class NotRun:
    check: str
    reason: str


@dataclass(frozen=True)
class PatientFacts:
    as_of: date
    hook: str
    patient_id: str
    age: int | None = None
    sex: Literal["female", "male"] | None = None
    conditions: dict[str, list[ConditionFact]] = field(default_factory=dict)
    labs: dict[str, LabReading] = field(default_factory=dict)
    egfr: Egfr | None = None
    egfr_problem: str | None = None
    baricitinib_drafts: list[BaricitinibOrder] = field(default_factory=list)
    baricitinib_active: list[BaricitinibOrder] = field(default_factory=list)
    co_medications: list[CoMedication] = field(default_factory=list)
    vaccine_doses: list[VaccineDose] = field(default_factory=list)
    vaccine_orders: list[VaccineOrder] = field(default_factory=list)
    draft_order_count: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)
    data_issues: list[DataIssue] = field(default_factory=list)
    checks_not_run: list[NotRun] = field(default_factory=list)

    @property
    def on_baricitinib(self) -> bool:
        return bool(self.baricitinib_active)

    @property
    def therapy_start(self) -> date | None:
        days = [o.authored_on for o in self.baricitinib_active if o.authored_on]
        return min(days) if days else None

    @property
    def is_order_hook(self) -> bool:
        return self.hook in ORDER_HOOKS

    @property
    def situations(self) -> frozenset[Situation]:
        found: set[Situation] = set()
        if self.is_order_hook and self.baricitinib_drafts:
            found.add("baricitinib-ordered")
        if self.is_order_hook and self.draft_order_count and self.on_baricitinib:
            found.add("order-while-on-baricitinib")
        if self.hook == "patient-view" and self.on_baricitinib:
            found.add("patient-view-on-baricitinib")
        return frozenset(found)

    def has(self, group: str) -> bool:
        return bool(self.conditions.get(group))

    def lab(self, key: str) -> LabReading:
        return self.labs.get(key) or LabReading(key, key, "missing")


def build_facts(
    hook: str, patient_id: str, draft_orders: list[Json], gathered: Gathered, content: Content, as_of: date
) -> PatientFacts:
    builder = _Builder(content, as_of)
    patient = gathered.resources("patient")
    age, sex = builder.demographics(patient[0] if patient else None)
    conditions = builder.conditions(gathered.resources("conditions"))
    labs = builder.labs(gathered.resources("observations"))
    medications = gathered.resources("medications")
    active, co_meds = builder.active_medications(medications or [])
    drafts, draft_co_meds, vaccine_orders = builder.draft_orders(draft_orders)
    doses = builder.vaccine_doses(gathered.resources("immunizations") or [])
    egfr, egfr_problem = builder.egfr(labs, age, sex)
    builder.issues += [DataIssue(key, why) for key, why in gathered.partial().items()]
    if egfr is None and drafts and gathered.resources("observations") is not None:
        builder.issues.append(DataIssue("eGFR", f"{egfr_problem}: the renal dose check was not done"))
    return PatientFacts(
        as_of=as_of,
        hook=hook,
        patient_id=patient_id,
        age=age,
        sex=sex,
        conditions=conditions,
        labs=labs,
        egfr=egfr,
        egfr_problem=egfr_problem,
        baricitinib_drafts=drafts,
        baricitinib_active=active,
        co_medications=co_meds + draft_co_meds,
        vaccine_doses=doses,
        vaccine_orders=vaccine_orders,
        draft_order_count=len(draft_orders),
        unavailable=gathered.unavailable(),
        data_issues=builder.issues,
    )


class _Builder:
    def __init__(self, content: Content, as_of: date):
        self.content = content
        self.as_of = as_of
        self.issues: list[DataIssue] = []

    def skip(self, resource: Json, why: str) -> None:
        self.issues.append(DataIssue(reference(resource), why))

    # --- patient ----------------------------------------------------------------------------------
    def demographics(self, patient: Json | None) -> tuple[int | None, Literal["female", "male"] | None]:
        if patient is None:
            return None, None
        if not well_formed(Patient, patient):
            self.skip(patient, "the Patient resource is malformed; age and sex are unknown")
            return None, None
        born = parse_date(patient.get("birthDate"))
        age = None
        if born:
            age = self.as_of.year - born.year - ((self.as_of.month, self.as_of.day) < (born.month, born.day))
        gender = patient.get("gender")
        return age, gender if gender in ("female", "male") else None

    # --- conditions -------------------------------------------------------------------------------
    def conditions(self, resources: list[Json] | None) -> dict[str, list[ConditionFact]]:
        found: dict[str, list[ConditionFact]] = defaultdict(list)
        groups = self.content.conditions.groups
        for resource in resources or ():
            if resource.get("resourceType") != "Condition":
                continue
            matches, matched = [], set()
            for system, code, display in codings(resource.get("code")):
                for key, entry in self.content.condition_groups.find(system, code):
                    if key not in matched:  # a group's first matching coding names it
                        matched.add(key)
                        matches.append((key, groups[key], code, display or entry.display))
            if not matches:
                continue
            if not well_formed(Condition, resource):
                self.skip(resource, "malformed Condition skipped")
                continue
            if status_code(resource.get("verificationStatus")) in NEVER_COUNTS_VERIFICATION:
                continue
            clinical = status_code(resource.get("clinicalStatus"))
            recorded = parse_date(resource.get("onsetDateTime")) or parse_date(resource.get("recordedDate"))
            for key, group, code, display in matches:
                if group.counts == "current" and clinical is not None and clinical not in CURRENT_CLINICAL_STATUS:
                    continue
                found[key].append(ConditionFact(key, group.label, str(code), str(display), reference(resource), recorded))
        return dict(found)

    # --- labs -------------------------------------------------------------------------------------
    def labs(self, resources: list[Json] | None) -> dict[str, LabReading]:
        definitions = self.content.labs.labs
        if resources is None:
            return {k: LabReading(k, d.label, "unavailable") for k, d in definitions.items()}
        candidates: dict[str, list[tuple[datetime, Json]]] = defaultdict(list)
        for resource in resources:
            if resource.get("resourceType") != "Observation":
                continue
            key = _lab_key(resource.get("code"), self.content.lab_by_loinc)
            if key is None:
                continue
            effective = _effective(resource)
            if effective is None:
                self.skip(resource, f"{definitions[key].label} result has no usable date and was ignored")
                continue
            candidates[key].append((effective, resource))
        return {key: self._latest(key, definition, candidates.get(key, [])) for key, definition in definitions.items()}

    def _latest(self, key: str, lab: LabDefinition, found: list[tuple[datetime, Json]]) -> LabReading:
        found.sort(key=lambda pair: pair[0], reverse=True)
        for effective, resource in found:
            status = resource.get("status")
            if isinstance(status, str) and status in IGNORED_OBSERVATION_STATUS:
                if status == "entered-in-error":
                    self.skip(resource, f"{lab.label} result of {effective.date()} is marked entered-in-error and was ignored")
                continue
            if not well_formed(Observation, resource):
                self.skip(resource, f"malformed {lab.label} Observation skipped")
                continue
            reading = self._read(key, lab, effective, resource)
            if reading.status == "unreadable":
                self.skip(resource, f"{reading.problem}; the checks that use {lab.label} were not done")
                return reading
            stale = effective.date() < self.as_of - timedelta(days=lab.lookback_days)
            return LabReading(key, lab.label, "stale" if stale else "current", reading.result,
                              lookback_days=lab.lookback_days)
        return LabReading(key, lab.label, "missing")

    def _read(self, key: str, lab: LabDefinition, effective: datetime, resource: Json) -> LabReading:
        where = reference(resource)
        if lab.kind == "coded":
            result, reported = self._coded_result(resource)
            if result is None:
                problem = f"{lab.label} result '{reported}' of {effective.date()} cannot be interpreted"
                return LabReading(key, lab.label, "unreadable", problem=problem)
            return LabReading(key, lab.label, "current", CodedResult(key, lab.label, result, reported, effective, where))
        quantity = resource.get("valueQuantity")
        if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), int | float):
            return LabReading(key, lab.label, "unreadable", problem=f"{lab.label} result of {effective.date()} has no numeric value")
        unit_key = _unit_key(quantity, lab)
        reported = f"{quantity['value']:g} {quantity.get('unit') or quantity.get('code') or '(no unit)'}"
        if unit_key is None:
            problem = f"{lab.label} {reported} of {effective.date()}: unit cannot be converted to {lab.canonical_unit}"
            return LabReading(key, lab.label, "unreadable", problem=problem)
        if quantity.get("comparator"):
            problem = f"{lab.label} {quantity['comparator']}{reported} of {effective.date()} is not an exact value"
            return LabReading(key, lab.label, "unreadable", problem=problem)
        value = round(quantity["value"] * lab.units[unit_key], 6)
        if lab.plausible and not lab.plausible[0] <= value <= lab.plausible[1]:
            problem = f"{lab.label} {reported} of {effective.date()} is implausible ({value:g} {lab.canonical_unit}); the unit may be wrong"
            return LabReading(key, lab.label, "unreadable", problem=problem)
        high = _reference_high(resource, lab)
        assert lab.canonical_unit is not None
        shown = lab.display_unit or lab.canonical_unit
        result = LabResult(key, lab.label, value, lab.canonical_unit, reported, effective, where, high, shown)
        return LabReading(key, lab.label, "current", result)

    def _coded_result(self, resource: Json) -> tuple[Literal["positive", "negative", "indeterminate"] | None, str]:
        answers = self.content.labs.coded_answers
        concept = resource.get("valueCodeableConcept")
        for meaning, valueset_name in (("positive", answers.positive), ("negative", answers.negative), ("indeterminate", answers.indeterminate)):
            valueset = self.content.valueset(valueset_name)
            if any(valueset.matches(s, c) for s, c, _ in codings(concept)):
                return meaning, concept_label(concept)  # type: ignore[return-value]
        words = [resource["valueString"]] if isinstance(resource.get("valueString"), str) else []
        words += concept_words(concept)
        for interpretation in as_list(resource.get("interpretation")):
            words += concept_words(interpretation) + [c for _, c, _ in codings(interpretation) if c]
        normalised = {w.strip().lower() for w in words}
        for meaning, vocabulary in answers.words_by_meaning:
            if normalised & vocabulary:
                return meaning, words[0]  # type: ignore[return-value]
        return None, words[0] if words else concept_label(concept) if concept else "no value"

    # --- eGFR -------------------------------------------------------------------------------------
    def egfr(self, labs: dict[str, LabReading], age: int | None, sex: str | None) -> tuple[Egfr | None, str | None]:
        reading = labs.get("egfr")
        if reading and isinstance(reading.current, LabResult):
            result = reading.current
            return Egfr(result.value, result.day, f"reported on {result.day.isoformat()}, {result.resource}"), None
        creatinine = labs.get("creatinine")
        if not creatinine or not isinstance(creatinine.current, LabResult):
            return None, "no current eGFR or serum creatinine result"
        if age is None or sex is None:
            return None, "eGFR cannot be computed from creatinine without the patient's age and sex"
        eq = self.content.labs.egfr_equation
        scr = creatinine.current.value
        kappa, alpha = (eq.kappa_female, eq.alpha_female) if sex == "female" else (eq.kappa_male, eq.alpha_male)
        ratio = scr / kappa
        value = eq.constant * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** eq.exponent_above_kappa * eq.age_base**age
        if sex == "female":
            value *= eq.female_factor
        how = (
            f"computed with the race-free CKD-EPI 2021 equation from creatinine {scr:g} mg/dL of "
            f"{creatinine.current.day.isoformat()}, age {age}, {sex}"
        )
        if creatinine.current.reported != f"{scr:g} mg/dL":
            how += f" (creatinine reported as {creatinine.current.reported}, {creatinine.current.resource})"
        else:
            how += f" ({creatinine.current.resource})"
        return Egfr(round(value, 1), creatinine.current.day, how), None

    # --- medications ------------------------------------------------------------------------------
    def active_medications(self, resources: list[Json]) -> tuple[list[BaricitinibOrder], list[CoMedication]]:
        medications = {reference(r): r for r in resources if r.get("resourceType") == "Medication"}
        baricitinib: list[BaricitinibOrder] = []
        co_meds: list[CoMedication] = []
        for request in resources:
            if request.get("resourceType") != "MedicationRequest" or request.get("status") != "active":
                continue
            self._sort_medication(request, medications, False, baricitinib, co_meds)
        return baricitinib, co_meds

    def draft_orders(self, orders: list[Json]) -> tuple[list[BaricitinibOrder], list[CoMedication], list[VaccineOrder]]:
        baricitinib: list[BaricitinibOrder] = []
        co_meds: list[CoMedication] = []
        vaccines: list[VaccineOrder] = []
        for order in orders:
            kind = order.get("resourceType")
            concept = {"MedicationRequest": None, "ServiceRequest": "code", "Immunization": "vaccineCode"}.get(kind or "", "")
            if concept == "":
                continue
            concept_json = medication_concept(order, {}) if concept is None else order.get(concept)
            vaccine = self._vaccine(concept_json)
            if vaccine:
                cvx, display, groups = vaccine
                vaccines.append(VaccineOrder(groups, cvx, display, reference(order)))
            elif kind == "MedicationRequest":
                self._sort_medication(order, {}, True, baricitinib, co_meds)
        return baricitinib, co_meds, vaccines

    def _sort_medication(
        self, request: Json, medications: dict[str, Json], is_draft: bool,
        baricitinib: list[BaricitinibOrder], co_meds: list[CoMedication],
    ) -> None:  # fmt: skip
        concept = medication_concept(request, medications)
        if concept is None:
            self.skip(request, "the medication could not be identified (no code, text or readable Medication)")
            return
        recognised = recognise_baricitinib(concept, self.content)
        if recognised:
            order = read_baricitinib_order(request, concept, recognised, is_draft, self.content)
            baricitinib.append(order)
            if recognised[1]:
                self.skip(request, f"baricitinib recognised only by {order.recognised_by}; confirm the product")
            if order.daily_dose_mg is None and is_draft:
                self.skip(request, f"the daily dose of {order.name} cannot be derived: {order.dose_problem}")
            return
        for key, group, name in co_medication_groups(concept, self.content):
            co_meds.append(CoMedication(key, group.label, group.basis, name, reference(request), is_draft))

    # --- vaccines ---------------------------------------------------------------------------------
    def _vaccine(self, concept: Json | None) -> tuple[str, str, frozenset[str]] | None:
        for system, code, display in codings(concept):
            if system != codes.CVX or not code:
                continue
            groups = frozenset(key for key, _ in self.content.vaccine_groups.find(system, code))
            return code, display or concept_label(concept), groups
        return None

    def vaccine_doses(self, resources: list[Json]) -> list[VaccineDose]:
        doses = []
        for resource in resources:
            if resource.get("resourceType") != "Immunization" or resource.get("status") != "completed":
                continue
            vaccine = self._vaccine(resource.get("vaccineCode"))
            if vaccine is None:
                continue
            if not well_formed(Immunization, resource):
                self.skip(resource, "malformed Immunization skipped")
                continue
            day = parse_date(resource.get("occurrenceDateTime"))
            if day is None:
                self.skip(resource, "Immunization has no date and was ignored")
                continue
            cvx, display, groups = vaccine
            doses.append(VaccineDose(groups, cvx, display, day, reference(resource)))
        return sorted(doses, key=lambda d: d.day)


def _lab_key(concept: Any, lab_by_code: dict[str, str]) -> str | None:
    """The lab of a concept's first LOINC coding the content knows. Reads the concept as ``codings`` does,
    inline: this runs once per Observation, for tens of thousands of them."""
    if not isinstance(concept, dict):
        return None
    for coding in as_list(concept.get("coding")):
        if isinstance(coding, dict) and coding.get("system") == codes.LOINC:
            code = coding.get("code")
            if isinstance(code, str) and code in lab_by_code:
                return lab_by_code[code]
    return None


def _effective(resource: Json) -> datetime | None:
    period = resource.get("effectivePeriod")
    return (
        parse_datetime(resource.get("effectiveDateTime"))
        or parse_datetime(resource.get("effectiveInstant"))
        or (parse_datetime(period.get("end") or period.get("start")) if isinstance(period, dict) else None)
        or parse_datetime(resource.get("issued"))
    )


def _unit_key(quantity: Json, lab: LabDefinition) -> str | None:
    code, unit, system = quantity.get("code"), quantity.get("unit"), quantity.get("system")
    if isinstance(code, str) and code in lab.units and system in (None, codes.UCUM):
        return code
    if isinstance(unit, str) and unit in lab.units:
        return unit
    return None


def _reference_high(resource: Json, lab: LabDefinition) -> float | None:
    for ranges in as_list(resource.get("referenceRange")):
        high = ranges.get("high") if isinstance(ranges, dict) else None
        if isinstance(high, dict) and isinstance(high.get("value"), int | float):
            unit_key = _unit_key(high, lab)
            if unit_key and math.isfinite(high["value"]):
                return round(high["value"] * lab.units[unit_key], 6)
    return None


def utc_today() -> date:
    return datetime.now(UTC).date()
