"""Whether the patient is in hospital now, from their Encounters: in progress, or with a period that has
begun and not ended, of an inpatient class or type (``cards/encounters.toml``)."""

from __future__ import annotations

from datetime import date

from ..content import Content
from ..fhir import Json
from ..fhir.codings import as_list, codings
from ..fhir.dates import parse_date
from ..fhir.references import reference


def in_hospital(encounters: list[Json] | None, content: Content, as_of: date) -> tuple[bool | None, str | None]:
    """(True and the encounter, False, or None when the encounters could not be had)."""
    if encounters is None:
        return None, None
    inpatient = content.valueset(content.encounters.inpatient_valueset)
    for encounter in encounters:
        period = encounter.get("period") if isinstance(encounter.get("period"), dict) else {}
        started, ended = parse_date(period.get("start")), parse_date(period.get("end"))
        ongoing = encounter.get("status") == "in-progress" or (
            started is not None and started <= as_of and (ended is None or ended >= as_of)
        )
        if encounter.get("status") in ("finished", "cancelled", "entered-in-error") or not ongoing:
            continue
        klass = encounter.get("class")
        coded = [(klass.get("system"), klass.get("code"))] if isinstance(klass, dict) else []
        coded += [(s, c) for t in as_list(encounter.get("type")) for s, c, _ in codings(t)]
        if any(inpatient.matches(s, c) for s, c in coded):
            since = f" since {started.isoformat()}" if started else ""
            return True, f"inpatient encounter{since}, {reference(encounter)}"
    return False, None
