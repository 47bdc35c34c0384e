"""The typed facts the rules read. Every value keeps its unit, date and resource so a card can say what
fired it; a value bounded by a comparator (``<0.5``) keeps it, and answers threshold questions with
True, False or None (undetermined), never with a guess."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from ..content import Situation
from ..fhir import Json
from ..fhir.quantities import above, below, to_precision

ORDER_HOOKS = {"order-select", "order-sign", "medication-prescribe"}


@dataclass(frozen=True)
class DataIssue:
    """Something the service could not read or had to ignore; shown in the data-quality card."""

    what: str
    why: str


@dataclass(frozen=True)
class BaricitinibOrder:
    resource: str
    name: str
    status: str
    is_draft: bool
    authored_on: date | None
    recognised_by: str
    strength_mg: float | None
    daily_dose_mg: float | None  # the most the sig allows a day (the high end of a range)
    dose_problem: str | None
    ingredient_code: str  # RxNorm, from the content, for suggested orders
    source_json: Json  # the request as sent, so a suggestion can update or hold it; opaque to rules
    daily_dose_low_mg: float | None = None  # the least the sig allows a day, when it gives a range

    @property
    def dose_text(self) -> str:
        if self.daily_dose_mg is None:
            return f"unknown ({self.dose_problem})"
        low = self.daily_dose_low_mg
        if low is not None and low != self.daily_dose_mg:
            return f"{low:g} to {self.daily_dose_mg:g} mg/day"
        return f"{self.daily_dose_mg:g} mg/day"


@dataclass(frozen=True)
class CoMedication:
    group: str
    group_label: str
    basis: str
    name: str
    resource: str
    is_draft: bool
    started: date | None = None  # authoredOn
    completed: bool = False  # a MedicationRequest marked completed: a course that ended


@dataclass(frozen=True)
class LabResult:
    lab: str
    label: str
    value: float
    unit: str  # the lab's canonical unit (cards/labs.toml)
    reported: str  # as the lab wrote it
    effective: datetime
    resource: str
    reference_high: float | None = None
    shown_unit: str = ""  # the canonical unit as clinicians write it
    comparator: str | None = None  # "<", "<=", ">", ">=": the true value is only bounded
    how: str | None = None  # how it was read when not simply as written (derived, or the unit as coded)
    digits: int = 3  # significant digits to show: as many as the lab wrote, and at least 3

    @property
    def shown_value(self) -> str:
        """The value as a card shows it: converted, then rounded to the precision the lab reported."""
        return f"{self.comparator or ''}{to_precision(self.value, self.digits)}"

    @property
    def day(self) -> date:
        return self.effective.date()

    @property
    def shown(self) -> str:
        return f"{self.shown_value} {self.shown_unit or self.unit}"

    def below(self, limit: float) -> bool | None:
        return below(self.value, self.comparator, limit)

    def above(self, limit: float) -> bool | None:
        return above(self.value, self.comparator, limit)

    def describe(self) -> str:
        same = self.reported == self.shown
        text = f"{self.label} {self.shown}{'' if same else f' (reported {self.reported})'} on {self.day.isoformat()}"
        return f"{text}, {self.how}" if self.how else text


@dataclass(frozen=True)
class CodedResult:
    lab: str
    label: str
    result: str  # positive, negative or indeterminate; for a category lab, its category (current, former...)
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
    """The newest result of one lab and what it means today.

    ``unreadable`` is the newest result when it cannot be read: an older result never stands in for it.
    """

    lab: str
    label: str
    status: Literal["current", "stale", "missing", "unreadable", "unavailable"]
    result: LabResult | CodedResult | None = None
    problem: str | None = None
    lookback_days: int | None = None  # the lab's look-back window (cards/labs.toml), for current/stale
    taken: date | None = None  # when the newest result (readable or not) was taken
    positive_ever: CodedResult | None = None  # a coded lab's newest positive result: a later negative does not erase it

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
    comparator: str | None = None

    def below(self, limit: float) -> bool | None:
        return below(self.value, self.comparator, limit)

    def describe(self) -> str:
        return f"eGFR {self.comparator or ''}{self.value:g} mL/min/1.73 m2 ({self.how})"


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
    """A check that could not run. ``safety``: a hold or dose check, said as a warning; ``labs``: the labs
    whose results it needed, so that no card names the same result twice."""

    check: str
    reason: str
    safety: bool = False
    labs: tuple[str, ...] = ()
    brief: str = ""  # a few words for the card's summary ("ANC of 2026-11-30 unreadable")
    folded: bool = False  # said by a card that lists its labs as due, not by the data-quality card


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
    co_medications: list[CoMedication] = field(default_factory=list)  # active or ordered now
    completed_medications: list[CoMedication] = field(default_factory=list)  # completed courses sent
    vaccine_doses: list[VaccineDose] = field(default_factory=list)
    vaccine_orders: list[VaccineOrder] = field(default_factory=list)
    draft_order_count: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)
    data_issues: list[DataIssue] = field(default_factory=list)
    checks_not_run: list[NotRun] = field(default_factory=list)
    age_problem: str | None = None  # why age is unknown, when it is
    in_hospital: bool | None = None  # an inpatient encounter now; None: encounters could not be had
    hospital_encounter: str | None = None  # which one, for the card

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
            if not self.on_baricitinib:
                found.add("new-start")
        if self.is_order_hook and self.draft_order_count and self.on_baricitinib:
            found.add("order-while-on-baricitinib")
        if self.hook == "patient-view" and self.on_baricitinib:
            found.add("patient-view-on-baricitinib")
        return frozenset(found)

    def has(self, group: str) -> bool:
        return bool(self.conditions.get(group))

    def lab(self, key: str) -> LabReading:
        return self.labs.get(key) or LabReading(key, key, "missing")
