"""Step 4: patient facts, typed and unit-normalised, one module per family of data.

- ``patient``: age, sex, and which resources are about the context patient.
- ``labs``: the newest result of each lab, its unit and comparator; derived counts.
- ``renal``: the eGFR the renal checks use (the lab's, or CKD-EPI 2021 from a newer creatinine).
- ``conditions``, ``medications``, ``immunizations``: what the problem list, the medication list and the
  vaccination record say, by value set.
- ``model``: the typed facts the rules read; ``build``: ``build_facts``, which puts them together.

Facts are pure: no HTTP, no content loading, no clock (``as_of`` is given). The FHIR reading they stand on
is ``cds_service/fhir/``.
"""

from .build import build_facts, utc_today
from .model import (
    BaricitinibOrder,
    CodedResult,
    CoMedication,
    ConditionFact,
    DataIssue,
    Egfr,
    LabReading,
    LabResult,
    NotRun,
    PatientFacts,
    VaccineDose,
    VaccineOrder,
)

__all__ = [
    "BaricitinibOrder", "CoMedication", "CodedResult", "ConditionFact", "DataIssue", "Egfr", "LabReading",
    "LabResult", "NotRun", "PatientFacts", "VaccineDose", "VaccineOrder", "build_facts", "utc_today",
]  # fmt: skip
