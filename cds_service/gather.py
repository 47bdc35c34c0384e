"""Step 3: the data each prefetch key stands for: from prefetch when the EHR sent it, else fetched.

Every key ends with a status, ``prefetched``, ``fetched`` or ``unavailable`` (with the reason), never a
silently empty list. Missing keys are fetched concurrently, within the call's deadline: a query without
an answer by then is given up (cancelled if it has not started) and reported as late. Entries of a
resource type the key does not hold (a Condition under ``observations``) are set aside and counted; a
required key left with nothing of its own (a ``patient`` prefetch with no Patient, or another
patient's) counts as not prefetched. Where the CDS Hooks 2.0 spec says the service SHALL answer 412
(required data neither prefetched nor obtainable), ``PreconditionFailed`` is raised; partial failures
are carried to the data-quality card instead.
"""

from __future__ import annotations

from concurrent.futures import Executor, wait
from dataclasses import dataclass
from typing import Any, Literal

from .fhir_client import Deadline, FhirClient, FhirTruncated, FhirUnavailable

Json = dict[str, Any]


class PreconditionFailed(Exception):
    """Required data is missing from prefetch and cannot be fetched (HTTP 412)."""


@dataclass(frozen=True)
class KeyData:
    status: Literal["prefetched", "fetched", "unavailable"]
    resources: list[Json]
    reason: str | None = None
    set_aside: int = 0  # entries of another resource type, or another Patient


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

    def unavailable(self, unreported: frozenset[str] = frozenset()) -> dict[str, str]:
        """Keys that could not be had, with why (``unreported``: keys a rule reports itself when it matters)."""
        return {
            k: d.reason or "unavailable"
            for k, d in self.keys.items()
            if d.status == "unavailable" and k not in unreported
        }

    def set_aside(self) -> dict[str, int]:
        return {k: d.set_aside for k, d in self.keys.items() if d.set_aside}


def own_entries(resources: list[Json], kinds: frozenset[str], patient_id: str) -> tuple[list[Json], int]:
    """The entries of the key's resource types (a Patient only when it is the context patient), and how
    many others there were."""
    kept = [
        r for r in resources
        if r["resourceType"] in kinds and not (r["resourceType"] == "Patient" and r.get("id") not in (None, "", patient_id))
    ]  # fmt: skip
    return kept, len(resources) - len(kept)


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
    kinds: dict[str, frozenset[str]],
    required: frozenset[str],
    patient_id: str,
    prefetch: dict[str, Any] | None,
    client: FhirClient | None,
    executor: Executor,
    deadline: Deadline,
) -> Gathered:
    """``queries`` maps each prefetch key to its query with the context already filled in; ``kinds``
    each key to the resource types it holds."""
    keys: dict[str, KeyData] = {}
    to_fetch: list[str] = []
    for key in queries:
        resources = from_prefetch((prefetch or {}).get(key))
        if resources is not None:
            own, others = own_entries(resources, kinds[key], patient_id)
            if own or key not in required:
                keys[key] = KeyData("prefetched", own, set_aside=others)
                continue
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
        wait(futures.values(), timeout=max(deadline.remaining(), 0))
        outcomes: dict[str, list[Json] | FhirUnavailable | FhirTruncated] = {}
        for key, future in futures.items():
            if not future.done():
                # A query still queued never starts; a running one stops at its next socket read, which
                # FhirClient bounds by the same deadline.
                future.cancel()
                outcomes[key] = deadline.missed(queries[key])
                continue
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
                continue
            fetched = outcome.resources if isinstance(outcome, FhirTruncated) else outcome
            own, others = own_entries(fetched, kinds[key], patient_id)
            if not own and key in required:
                raise PreconditionFailed(f"{key}: the FHIR server returned none for this patient")
            reason = outcome.reason if isinstance(outcome, FhirTruncated) else None
            keys[key] = KeyData("fetched", own, reason, set_aside=others)
    return Gathered(keys)
