"""Problems and diagnoses: the Conditions that match a condition group of ``cards/conditions.toml``."""

from __future__ import annotations

from collections import defaultdict

from ..content import Content
from ..fhir import Json
from ..fhir.codings import codings, status_code
from ..fhir.dates import parse_date
from ..fhir.elements import Condition, readable
from ..fhir.references import reference
from .model import ConditionFact
from .notes import Notes

CURRENT_CLINICAL_STATUS = {"active", "recurrence", "relapse"}
NEVER_COUNTS_VERIFICATION = {"refuted", "entered-in-error"}


def read_conditions(
    resources: list[Json] | None, content: Content, notes: Notes
) -> dict[str, list[ConditionFact]]:
    found: dict[str, list[ConditionFact]] = defaultdict(list)
    groups = content.conditions.groups
    for resource in resources or ():
        matches, matched = [], set()
        for system, code, display in codings(resource.get("code")):
            for key, entry in content.condition_groups.find(system, code):
                if key not in matched:  # a group's first matching coding names it
                    matched.add(key)
                    matches.append((key, groups[key], code, display or entry.display))
        if not matches:
            continue
        lenient = readable(Condition, resource)
        if lenient is None:
            notes.skip(resource, "malformed Condition skipped")
            continue
        if status_code(lenient.get("verificationStatus")) in NEVER_COUNTS_VERIFICATION:
            continue
        clinical = status_code(lenient.get("clinicalStatus"))
        recorded = parse_date(lenient.get("onsetDateTime")) or parse_date(lenient.get("recordedDate"))
        for key, group, code, display in matches:
            if group.counts == "current" and clinical is not None and clinical not in CURRENT_CLINICAL_STATUS:
                continue
            found[key].append(
                ConditionFact(key, group.label, str(code), str(display), reference(resource), recorded)
            )
    return dict(found)
