"""Codes and words of CodeableConcepts, R4 (with STU3's plain-string statuses where the legacy hook sends them).

The facts step reads codes straight from JSON so that it can pick the few resources the rules need before
paying for validation. A value of the wrong JSON type is read as absent, never raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def as_list(value: Any) -> list[Any]:
    """A FHIR array element, or [] when it is absent or, in malformed input, not an array."""
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def codings(concept: Any) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(system, code, display) of each coding in a CodeableConcept; an empty or non-string value is None."""
    if not isinstance(concept, dict):
        return
    for coding in as_list(concept.get("coding")):
        if isinstance(coding, dict):
            yield _text(coding.get("system")), _text(coding.get("code")), _text(coding.get("display"))


def concept_words(concept: Any) -> list[str]:
    """The human-readable strings of a concept: its text and each coding's display."""
    if not isinstance(concept, dict):
        return []
    words = [concept["text"]] if _text(concept.get("text")) else []
    words += [d for _, _, d in codings(concept) if d]
    return words


def concept_label(concept: Any) -> str:
    words = concept_words(concept)
    if words:
        return words[0]
    for _, code, _ in codings(concept):
        if code:
            return code
    return "unnamed"


def status_code(concept: Any) -> str | None:
    """The code of a status CodeableConcept such as Condition.clinicalStatus (R4), or a plain string (STU3)."""
    if isinstance(concept, str):
        return concept or None
    for _, code, _ in codings(concept):
        if code:
            return code
    return None
