"""The patient: age and sex, and which resources are about them.

A Patient without birthDate or gender leaves the checks that need them (the age-based dose, the CKD-EPI
equation) to say they were not done; ``other`` and ``unknown`` genders are not guessed either way.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from ..fhir import Json
from ..fhir.dates import parse_date
from ..fhir.elements import Patient, readable
from ..fhir.references import PATIENT_ELEMENT, about_patient
from .notes import Notes

Sex = Literal["female", "male"]


def demographics(
    patient: Json | None, as_of: date, notes: Notes
) -> tuple[int | None, Sex | None, str | None]:
    """(age, sex, why the age is unknown)."""
    if patient is None:
        return None, None, "the patient's record could not be read"
    lenient = readable(Patient, patient)
    if lenient is None:
        notes.skip(patient, "the Patient resource is malformed; age and sex are unknown")
        return None, None, "the patient's record is malformed"
    born = parse_date(lenient.get("birthDate"))
    age, problem = None, None
    if born:
        age = as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))
    else:
        problem = "the patient's birth date is not recorded"
        notes.skip(patient, "no birth date: the age-based checks were not done")
    gender = lenient.get("gender")  # a check that needs it says so (renal.py)
    return age, gender if gender in ("female", "male") else None, problem


def theirs(resources: list[Json] | None, patient_id: str, notes: Notes) -> list[Json] | None:
    """The resources about the patient; those naming another patient are counted and set aside."""
    if resources is None:
        return None
    written_as_usual = {f"Patient/{patient_id}", f"urn:uuid:{patient_id}"}
    kept = []
    for resource in resources:
        try:  # the common case, without parsing the reference: this runs for every resource of a call
            target = resource[PATIENT_ELEMENT[resource["resourceType"]]]["reference"]
            if target.__class__ is str and target in written_as_usual:
                kept.append(resource)
                continue
        except (KeyError, TypeError):
            pass
        if about_patient(resource, patient_id) == "other":
            notes.count(f"{resource.get('resourceType')} resource(s) naming another patient")
        else:
            kept.append(resource)
    return kept
