"""The hook services, each declared once. Discovery, routing and prefetch all derive from SERVICES.

The ``observations`` prefetch asks only for the LOINC codes the clinical content uses, so adding a lab to
``cards/labs.toml`` widens the query without touching this file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from . import codes
from .content import Content

PATIENT = "{{context.patientId}}"


@dataclass(frozen=True)
class PrefetchKey:
    key: str
    template: str
    kinds: frozenset[str]  # the resource types the key holds; other entries are set aside and counted
    required: bool = False  # True: without it the service answers 412 (nothing useful can be said)
    purpose: str = ""
    # False: a rule that needs it says so when it matters; its absence is not a data-quality line of its own
    reported: bool = True


def prefetch_keys(content: Content) -> tuple[PrefetchKey, ...]:
    return _prefetch_keys(content.observation_codes())


@functools.lru_cache(maxsize=8)
def _prefetch_keys(observation_codes: tuple[str, ...]) -> tuple[PrefetchKey, ...]:
    """Built once per content: every call derives its queries, kinds and required keys from these."""
    loinc = ",".join(f"{codes.LOINC}|{code}" for code in observation_codes)
    return (
        PrefetchKey("patient", f"Patient/{PATIENT}", frozenset({"Patient"}), required=True, purpose="age and sex"),
        PrefetchKey("conditions", f"Condition?patient={PATIENT}", frozenset({"Condition"}),
                    purpose="indications, infections, thrombosis"),
        PrefetchKey(
            "observations",
            f"Observation?patient={PATIENT}&code={loinc}&_sort=-date&_count=200",
            frozenset({"Observation"}),
            purpose="the lab results the rules use, newest first",
        ),
        PrefetchKey("immunizations", f"Immunization?patient={PATIENT}", frozenset({"Immunization"}),
                    purpose="vaccination history"),
        PrefetchKey(
            "medications",
            f"MedicationRequest?patient={PATIENT}&status=active&_include=MedicationRequest:medication",
            frozenset({"MedicationRequest", "Medication"}),
            purpose="current therapy and co-medications",
        ),
        PrefetchKey("encounters", f"Encounter?patient={PATIENT}&status=in-progress", frozenset({"Encounter"}),
                    purpose="whether the patient is in hospital (COVID-19 is an indication only then)",
                    reported=False),
    )


@dataclass(frozen=True)
class ServiceDeclaration:
    id: str
    hook: str
    title: str
    description: str

    def discovery(self, content: Content) -> dict[str, Any]:
        keys = prefetch_keys(content)
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": {k.key: k.template for k in keys},
            "usageRequirements": (
                "Send the prefetch keys or a fhirServer (with fhirAuthorization when it is secured) from which "
                "they can be read; 'patient' is required. Missing data is named in a data-quality card."
            ),
        }

    def queries(self, content: Content, patient_id: str) -> dict[str, str]:
        """Each prefetch key's query for this patient (the id URL-encoded: it comes from the caller)."""
        return {k.key: k.template.replace(PATIENT, quote(patient_id, safe="")) for k in prefetch_keys(content)}

    def kinds(self, content: Content) -> dict[str, frozenset[str]]:
        return {k.key: k.kinds for k in prefetch_keys(content)}

    def unreported_keys(self, content: Content) -> frozenset[str]:
        return frozenset(k.key for k in prefetch_keys(content) if not k.reported)

    def required_keys(self, content: Content) -> frozenset[str]:
        return frozenset(k.key for k in prefetch_keys(content) if k.required)


SERVICES: tuple[ServiceDeclaration, ...] = (
    ServiceDeclaration(
        id="baricitinib-order-select",
        hook="order-select",
        title="Baricitinib in SLE: order check",
        description=(
            "When baricitinib is selected: off-label status in SLE, lab and infection holds, baseline tests, "
            "renal and interaction dosing, combinations, vaccines and thrombosis risk."
        ),
    ),
    ServiceDeclaration(
        id="baricitinib-order-sign",
        hook="order-sign",
        title="Baricitinib in SLE: signing check",
        description="The baricitinib order checks again at signing, on the final draft orders.",
    ),
    ServiceDeclaration(
        id="baricitinib-prescribe",
        hook="medication-prescribe",
        title="Baricitinib in SLE: prescribing check (legacy hook)",
        description="The baricitinib order checks for EHRs that still call the medication-prescribe hook.",
    ),
    ServiceDeclaration(
        id="baricitinib-patient-view",
        hook="patient-view",
        title="Baricitinib in SLE: patient on therapy",
        description=(
            "For a patient on baricitinib: lab and infection holds, overdue monitoring, lipids, vaccines, "
            "combinations and off-label status."
        ),
    ),
)
SERVICES_BY_ID = {s.id: s for s in SERVICES}
