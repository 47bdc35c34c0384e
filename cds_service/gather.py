"""Step 3: the data each prefetch key stands for: from prefetch when the EHR sent it, else fetched.

Every key ends with a status, ``prefetched``, ``fetched`` or ``unavailable`` (with the reason), never a
silently empty list. Missing keys are fetched concurrently. Where the CDS Hooks 2.0 spec says the
service SHALL answer 412 (required data neither prefetched nor obtainable), ``PreconditionFailed`` is
raised; partial failures are carried to the data-quality card instead.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal

from .fhir_client import FhirClient, FhirTruncated, FhirUnavailable

Json = dict[str, Any]


class PreconditionFailed(Exception):
    """Required data is missing from prefetch and cannot be fetched (HTTP 412)."""


@dataclass(frozen=True)
class KeyData:
    status: Literal["prefetched", "fetched", "unavailable"]
    resources: list[Json]
    reason: str | None = None


@dataclass(frozen=True)
class Gathered:
    keys: dict[str, KeyData]

    def resources(self, key: str) -> list[Json] | None:
        """The key's resources, or None when they could not be had (which is not the same as none)."""
        data = self.keys.get(key)
        return None if data is None or data.status == "unavailable" else data.resources

    def partial(self) -> dict[str, str]:
        """Keys fetched only in part (the newest results), with what was left out."""
        return {k: d.reason for k, d in self.keys.items() if d.status == "fetched" and d.reason}

    def unavailable(self) -> dict[str, str]:
        return {k: d.reason or "unavailable" for k, d in self.keys.items() if d.status == "unavailable"}


def from_prefetch(value: Any) -> list[Json] | None:
    """Resources of a prefetch value, or None when the EHR did not (or could not) prefetch it.

    A resource stands for itself; a Bundle for its entries. A null value, an OperationOutcome (how some
    EHRs report a failed prefetch) or anything that is not a FHIR resource means "not prefetched".
    """
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return None
    if value["resourceType"] == "OperationOutcome":
        return None
    if value["resourceType"] != "Bundle":
        return [value]
    return [
        e["resource"]
        for e in (value.get("entry") if isinstance(value.get("entry"), list) else ())
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and isinstance(e["resource"].get("resourceType"), str)
        and e["resource"]["resourceType"] != "OperationOutcome"
    ]


def gather(
    queries: dict[str, str],
    required: frozenset[str],
    prefetch: dict[str, Any] | None,
    client: FhirClient | None,
    executor: Executor,
) -> Gathered:
    """``queries`` maps each prefetch key to its query with the context already filled in."""
    keys: dict[str, KeyData] = {}
    to_fetch: list[str] = []
    for key in queries:
        resources = from_prefetch((prefetch or {}).get(key))
        if resources is not None:
            keys[key] = KeyData("prefetched", resources)
        else:
            to_fetch.append(key)

    if to_fetch and client is None:
        missing_required = sorted(k for k in to_fetch if k in required)
        if missing_required:
            raise PreconditionFailed(
                f"prefetch lacks {', '.join(missing_required)} and the request names no fhirServer to fetch it from"
            )
        for key in to_fetch:
            keys[key] = KeyData("unavailable", [], "not prefetched and no FHIR server was given")
        return Gathered(keys)

    if to_fetch and client is not None:
        futures = {key: executor.submit(client.search, queries[key]) for key in to_fetch}
        outcomes: dict[str, list[Json] | FhirUnavailable | FhirTruncated] = {}
        for key, future in futures.items():
            try:
                outcomes[key] = future.result()
            except (FhirUnavailable, FhirTruncated) as exc:
                outcomes[key] = exc
        failures = {k: v for k, v in outcomes.items() if isinstance(v, FhirUnavailable)}
        if failures and all(f.unreachable for f in failures.values()) and len(failures) == len(outcomes):
            raise PreconditionFailed("the FHIR server could not be reached and prefetch lacks the data")
        for key, outcome in outcomes.items():
            if isinstance(outcome, FhirUnavailable):
                if key in required:
                    raise PreconditionFailed(f"{key}: {outcome.reason}")
                keys[key] = KeyData("unavailable", [], outcome.reason)
            elif isinstance(outcome, FhirTruncated):
                keys[key] = KeyData("fetched", outcome.resources, outcome.reason)
            else:
                keys[key] = KeyData("fetched", outcome)
    return Gathered(keys)
