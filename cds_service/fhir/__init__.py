"""Reading FHIR R4 JSON as EHRs and lab feeds really send it: the small core the facts step stands on.

- ``codings``: codes, displays and texts of CodeableConcepts (and STU3's plain-string statuses).
- ``dates``: partial dates, offsets, and when an Observation was taken.
- ``references``: ``Type/id`` labels and whether a resource is about the context patient.
- ``quantities``: a measured value with its comparator (``<0.5``) and the unit as written, from
  valueQuantity or valueString; what a comparator allows one to conclude against a threshold.
- ``timing``: how many times a day a Dosage's Timing says to take a dose.
- ``elements``: the R4 elements the rules read, as typed models, and the lenient reading of
  the rest (an empty string, object or array is absent, as HAPI FHIR's lenient parser reads it).

Nothing here knows a clinical rule or the content in ``cards/``; tables it needs are passed in.
"""

from typing import Any

Json = dict[str, Any]
# What FHIR JSON means by "absent", read leniently: no value, or an empty string, object or array.
EMPTY: tuple[Any, ...] = (None, "", {}, [])
