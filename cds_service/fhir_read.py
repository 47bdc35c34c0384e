"""Small readers of raw FHIR JSON (R4, with STU3 shapes where the legacy hook sends them).

The facts step reads codes and dates straight from JSON so that it can pick the few resources the rules
need before paying for full model validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

Json = dict[str, Any]

_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def parse_datetime(value: Any) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime (partial dates at their first day, UTC)."""
    if not isinstance(value, str) or not value:
        return None
    # Only a string of 4, 7 or 10 characters (or one more: `$` matches before a final newline) can be a
    # partial date; skipping the regex for the rest (every dateTime) halves the cost per Observation.
    match = _PARTIAL_DATE.match(value) if len(value) <= 11 else None
    try:
        if match:
            year, month, day = match.groups()
            return datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: Any) -> date | None:
    parsed = parse_datetime(value)
    return parsed.date() if parsed else None


def as_list(value: Any) -> list[Any]:
    """A FHIR array element, or [] when it is absent or, in malformed input, not an array."""
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def codings(concept: Any) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(system, code, display) of each coding in a CodeableConcept; a value that is not a string is None."""
    if not isinstance(concept, dict):
        return
    for coding in as_list(concept.get("coding")):
        if isinstance(coding, dict):
            yield _text(coding.get("system")), _text(coding.get("code")), _text(coding.get("display"))


def concept_words(concept: Any) -> list[str]:
    """The human-readable strings of a concept: its text and each coding's display."""
    if not isinstance(concept, dict):
        return []
    words = [concept["text"]] if isinstance(concept.get("text"), str) else []
    words += [d for _, _, d in codings(concept) if isinstance(d, str)]
    return words


def concept_label(concept: Any) -> str:
    words = concept_words(concept)
    if words:
        return words[0]
    for _, code, _ in codings(concept):
        if code:
            return code
    return "unnamed"


def reference(resource: Json) -> str:
    """``Type/id`` of a resource, or ``Type (no id)``."""
    kind = resource.get("resourceType", "Resource")
    rid = resource.get("id")
    return f"{kind}/{rid}" if isinstance(rid, str) and rid else f"{kind} (no id)"


def status_code(concept: Any) -> str | None:
    """The code of a status CodeableConcept such as Condition.clinicalStatus (R4), or a plain string (STU3)."""
    if isinstance(concept, str):
        return concept
    for _, code, _ in codings(concept):
        if code:
            return code
    return None
