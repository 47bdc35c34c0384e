"""The naive way, for comparison only (never used by the service): parse every prefetched resource with
its fhir.resources R4B model before doing anything else.

- ``validate_everything(body)`` is the benchmark's baseline (b): ``json.loads`` of the request body, then
  every resource of every prefetch key validated with its R4B model.
- ``fully_parsed(prefetch)`` is the reference path of ``tests/test_selective_parsing.py``: each prefetched
  resource is validated, the invalid ones are dropped and the valid ones are replaced by what their model
  serialises, so the rules see only fully parsed data.
"""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

Json = dict[str, Any]


def _resources(value: Any) -> list[Json]:
    """The resources of one prefetch value: a Bundle's entries, or the resource itself."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return []
    if value["resourceType"] != "Bundle":
        return [value]
    return [
        e["resource"]
        for e in value.get("entry") or ()
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def parse(resource: Json) -> Any | None:
    """The R4B model of ``resource``, or None when it is not valid R4B."""
    try:
        return get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception:  # fhir.resources raises pydantic errors, KeyError for an unknown type, ValueError...
        return None


def validate_everything(body: bytes) -> tuple[int, int]:
    """(valid, invalid) resource counts after validating every prefetched resource of a hook request."""
    request = json.loads(body)
    valid = invalid = 0
    for value in (request.get("prefetch") or {}).values():
        for resource in _resources(value):
            if parse(resource) is None:
                invalid += 1
            else:
                valid += 1
    return valid, invalid


def fully_parsed(prefetch: Json | None) -> tuple[Json | None, list[str]]:
    """``prefetch`` with every resource validated: invalid ones dropped (their ``Type/id`` returned),
    valid ones as their R4B model serialises them."""
    if prefetch is None:
        return None, []
    dropped: list[str] = []
    result: Json = {}
    for key, value in prefetch.items():
        if not isinstance(value, dict) or value.get("resourceType") == "OperationOutcome":
            result[key] = value
            continue
        if value.get("resourceType") != "Bundle":
            model = parse(value)
            if model is None:
                dropped.append(f"{value.get('resourceType')}/{value.get('id')}")
                result[key] = None  # nothing usable was prefetched
            else:
                result[key] = _as_json(model)
            continue
        entries = []
        for entry in value.get("entry") or ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            model = parse(resource)
            if model is None:
                dropped.append(f"{resource.get('resourceType')}/{resource.get('id')}")
            else:
                entries.append({**entry, "resource": _as_json(model)})
        result[key] = {**value, "entry": entries}
    return result, dropped


def _as_json(model: Any) -> Json:
    return json.loads(model.model_dump_json(by_alias=True, exclude_none=True))
