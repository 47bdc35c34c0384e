"""Step 4: PatientFacts, typed and unit-normalised, built from the gathered FHIR data.

Only the resources the rules read are validated (the newest result of each lab, the conditions and
immunizations that match a value set, the Patient), on the elements the rules read (fhir/elements.py);
the rest stay JSON. Resources about another patient are set aside and counted. Rules never see raw FHIR
JSON and never read the clock: ``as_of`` is given.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from ..content import Content
from ..fhir import Json
from ..gather import Gathered
from .conditions import read_conditions
from .encounters import in_hospital
from .immunizations import read_vaccine_doses
from .labs import read_labs
from .medications import active_medications, draft_orders
from .model import PatientFacts
from .notes import Notes
from .patient import demographics, theirs
from .renal import estimate_egfr


def build_facts(
    hook: str,
    patient_id: str,
    drafts: list[Json],
    gathered: Gathered,
    content: Content,
    as_of: date,
    unreported: frozenset[str] = frozenset(),
) -> PatientFacts:
    """``unreported``: prefetch keys whose absence a rule reports itself, when it matters."""
    notes = Notes()
    for key, count in gathered.set_aside().items():
        notes.count(f"entries of another resource type under '{key}'", count)
    patient = gathered.resources("patient")
    age, sex, age_problem = demographics(patient[0] if patient else None, as_of, notes)
    conditions = read_conditions(theirs(gathered.resources("conditions"), patient_id, notes), content, notes)
    labs = read_labs(theirs(gathered.resources("observations"), patient_id, notes), content, as_of, notes)
    medications = theirs(gathered.resources("medications"), patient_id, notes)
    active, co_meds, completed = active_medications(medications or [], content, notes)
    draft_baricitinib, draft_co_meds, vaccine_orders = draft_orders(
        theirs(drafts, patient_id, notes) or [], content, notes
    )
    doses = read_vaccine_doses(
        theirs(gathered.resources("immunizations"), patient_id, notes) or [], content, notes
    )
    hospitalised, hospital_encounter = in_hospital(
        theirs(gathered.resources("encounters"), patient_id, notes), content, as_of
    )
    egfr, egfr_problem = estimate_egfr(labs["egfr"], labs["creatinine"], age, sex, content.labs.egfr_equation)
    for key, why in gathered.partial().items():
        notes.add(key, why)
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
        baricitinib_drafts=draft_baricitinib,
        baricitinib_active=active,
        co_medications=co_meds + draft_co_meds,
        completed_medications=completed,
        vaccine_doses=doses,
        vaccine_orders=vaccine_orders,
        draft_order_count=len(drafts),
        unavailable=gathered.unavailable(unreported),
        data_issues=notes.all(),
        age_problem=age_problem,
        in_hospital=hospitalised,
        hospital_encounter=hospital_encounter,
    )


def utc_today() -> date:
    return datetime.now(UTC).date()
