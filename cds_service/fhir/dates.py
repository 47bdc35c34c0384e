"""FHIR date, dateTime and instant values, and when an Observation was taken.

Results are ordered by instant, not by string: ``2026-11-10T23:30:00-05:00`` is after
``2026-11-11T01:00:00Z``. A partial date (``2026``, ``2026-11``) stands for its first day, and a time
without an offset (not valid R4, but sent) is read as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from . import EMPTY, Json

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


class TakenAt(NamedTuple):  # a tuple: one is made for every lab result of every call
    """When an Observation was taken, which element said so, and what could not be read."""

    when: datetime | None
    element: str | None
    problem: str | None = None


_new_taken_at = tuple.__new__  # one C call, not NamedTuple's Python-level __new__


def observation_time(resource: Json) -> TakenAt:
    """effectiveDateTime, effectivePeriod (start, else end), effectiveInstant, else ``issued``.

    An effective[x] that is there but cannot be read is not replaced by ``issued``: the result is then
    ordered by ``issued`` (so a newer result is still known to be newer) and reported as undated.
    """
    value = resource.get("effectiveDateTime")
    if value.__class__ is str and value:  # the common case, first and cheaply (a plain tuple.__new__)
        when = parse_datetime(value)
        if when is not None:
            return _new_taken_at(TakenAt, (when, "effectiveDateTime", None))
    period = resource.get("effectivePeriod")
    candidates: list[tuple[str, Any]] = [("effectiveDateTime", resource.get("effectiveDateTime"))]
    if isinstance(period, dict):
        candidates += [
            ("effectivePeriod.start", period.get("start")),
            ("effectivePeriod.end", period.get("end")),
        ]
    elif period not in EMPTY:
        candidates.append(("effectivePeriod", period))
    candidates.append(("effectiveInstant", resource.get("effectiveInstant")))
    for element, value in candidates:
        if value in EMPTY:
            continue
        when = parse_datetime(value) if isinstance(value, str) else None
        if when is not None:
            return TakenAt(when, element)
        issued = parse_datetime(resource.get("issued"))
        return TakenAt(
            issued, "issued" if issued else None, f"its {element} {str(value)[:40]!r} cannot be read"
        )
    issued = parse_datetime(resource.get("issued"))
    return TakenAt(issued, "issued" if issued else None)
