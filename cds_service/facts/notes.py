"""What the facts step could not read or had to set aside, collected while it reads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..fhir import Json
from ..fhir.references import reference
from .model import DataIssue


@dataclass
class Notes:
    issues: list[DataIssue] = field(default_factory=list)
    # Counted, not listed: a prefetch of 50,000 wrong entries is one line of the card, not 50,000.
    counted: Counter[str] = field(default_factory=Counter)

    def skip(self, resource: Json, why: str) -> None:
        self.issues.append(DataIssue(reference(resource), why))

    def add(self, what: str, why: str) -> None:
        self.issues.append(DataIssue(what, why))

    def count(self, what: str, n: int = 1) -> None:
        self.counted[what] += n

    def all(self) -> list[DataIssue]:
        counted = [DataIssue(f"{n} {what}", "not used") for what, n in sorted(self.counted.items())]
        return self.issues + counted
