"""Vaccines given (Immunizations) and vaccines ordered (draft Immunization, MedicationRequest or
ServiceRequest), recognised by CVX code."""

from __future__ import annotations

from .. import codes
from ..content import Content
from ..fhir import Json
from ..fhir.codings import codings, concept_label
from ..fhir.dates import parse_date
from ..fhir.elements import Immunization, readable
from ..fhir.references import reference
from .model import VaccineDose
from .notes import Notes


def vaccine(concept: Json | None, content: Content) -> tuple[str, str, frozenset[str]] | None:
    """(CVX code, display, vaccine groups) of a concept's first CVX coding, or None."""
    for system, code, display in codings(concept):
        if system != codes.CVX or not code:
            continue
        groups = frozenset(key for key, _ in content.vaccine_groups.find(system, code))
        return code, display or concept_label(concept), groups
    return None


def read_vaccine_doses(resources: list[Json], content: Content, notes: Notes) -> list[VaccineDose]:
    doses = []
    for resource in resources:
        if resource.get("status") != "completed":
            continue
        given = vaccine(resource.get("vaccineCode"), content)
        if given is None:
            continue
        lenient = readable(Immunization, resource)
        if lenient is None:
            notes.skip(resource, "malformed Immunization skipped")
            continue
        day = parse_date(lenient.get("occurrenceDateTime"))
        if day is None:
            notes.skip(resource, "Immunization has no date and was ignored")
            continue
        cvx, display, groups = given
        doses.append(VaccineDose(groups, cvx, display, day, reference(resource)))
    return sorted(doses, key=lambda d: d.day)
