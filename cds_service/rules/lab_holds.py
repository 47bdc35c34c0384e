"""Lab hold: the latest ANC, lymphocyte count or hemoglobin below the label's threshold, or ALT/AST above
a multiple of the upper limit of normal (a practice threshold, said so on the card).

A result the check cannot decide is never read as normal: an unreadable newest result, or one whose
comparator leaves the threshold open (ANC ``<1500`` against 1000), is a hold check not done; so is a
missing or out-of-date result for a patient already on baricitinib (at a new start the baseline-labs card
asks for it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..cards import Card
from ..content import ContentModel, Quantity, RuleContent
from ..facts import LabReading, LabResult, NotRun, PatientFacts
from . import card, rule, stop_baricitinib


class LabThreshold(ContentModel):
    lab: str
    basis: Literal["label", "practice"]
    below: Quantity | None = None
    above_uln_times: float | None = Field(default=None, gt=1)
    default_uln: Quantity | None = None
    action_text: str


class LabHolds(RuleContent):
    placeholders = frozenset({"lab", "value", "unit", "date", "limit"})

    thresholds: list[LabThreshold] = Field(min_length=1)
    below_summary: str
    above_summary: str
    practice_summary: str  # a practice threshold: a warning to review, not a label hold
    check_name: str  # how the data-quality card names this check when it could not run
    # Each threshold's own basis, not the rule's mixed one: a label hold and a practice warning say which.
    label_basis_text: str
    practice_basis_text: str
    uln_from_range_text: str  # where the upper limit of normal came from
    uln_default_text: str
    remove_label: str
    hold_label: str

    def indicators(self) -> set[str]:
        return {"critical" if t.basis == "label" else "warning" for t in self.thresholds}

    def check_against(self, facts_content) -> None:
        for threshold in self.thresholds:
            lab = facts_content.labs.labs.get(threshold.lab)
            if lab is None:
                raise ValueError(f"threshold for unknown lab {threshold.lab!r}")
            for q in (threshold.below, threshold.default_uln):
                if q is not None and q.unit != lab.canonical_unit:
                    raise ValueError(
                        f"{threshold.lab}: unit {q.unit!r} must be the lab's unit {lab.canonical_unit!r}"
                    )
            if (threshold.below is None) == (threshold.above_uln_times is None):
                raise ValueError(f"{threshold.lab}: give either below or above_uln_times")
            if threshold.above_uln_times is not None and threshold.default_uln is None:
                raise ValueError(f"{threshold.lab}: above_uln_times needs a default_uln")


@rule("lab_holds", LabHolds)
def lab_holds(facts: PatientFacts, content: LabHolds) -> list[Card | NotRun]:
    found: list[Card | NotRun] = []
    never_done: list[LabReading] = []  # on therapy, labs with no result at all: said together, in one line
    for threshold in content.thresholds:
        reading = facts.lab(threshold.lab)
        result = reading.current
        if not isinstance(result, LabResult):
            if facts.on_baricitinib and reading.status == "missing":
                never_done.append(reading)
            elif gap := _not_decided(facts, reading, content.check_name):
                found.append(gap)
            continue
        if threshold.below is not None:
            limit = f"{threshold.below.value:g} {result.shown_unit}"
            held = result.below(threshold.below.value)
            summary = content.below_summary
            why = f"below the hold threshold of {limit}"
        else:
            assert threshold.above_uln_times is not None and threshold.default_uln is not None
            uln = result.reference_high or threshold.default_uln.value
            uln_source = content.uln_from_range_text if result.reference_high else content.uln_default_text
            limit = f"{threshold.above_uln_times:g}x ULN ({threshold.above_uln_times * uln:g} {result.shown_unit})"
            held = result.above(threshold.above_uln_times * uln)
            summary = content.above_summary
            why = f"above {limit}; upper limit of normal {uln:g} {result.shown_unit} from {uln_source}"
        if held is None:
            why = f"{result.label} {result.shown} on {result.day.isoformat()} does not show whether it is past {limit}"
            found.append(NotRun(content.check_name, why, True, (threshold.lab,), f"{result.label} {result.shown} undecided"))
            continue
        if not held:
            continue
        fields = {"lab": result.label, "value": result.shown_value, "unit": result.shown_unit,
                  "date": result.day.isoformat(), "limit": limit}  # fmt: skip
        # The threshold's own basis, not the rule's mixed one: a label hold and a practice warning say which.
        label_hold = threshold.basis == "label"
        basis = content.label_basis_text if label_hold else content.practice_basis_text
        detail = f"**{result.describe()}** ({result.resource}) is {why}.\n\n{threshold.action_text}"
        found.append(
            card(
                content,
                summary=(summary if label_hold else content.practice_summary).format(**fields),
                indicator="critical" if label_hold else "warning",
                detail=detail,
                basis_line=basis,
                suggestions=stop_baricitinib(
                    facts,
                    remove_label=content.remove_label,
                    hold_label=content.hold_label,
                    reason=f"{result.label} {result.shown} on {result.day.isoformat()}",
                ),
                selection_behavior="at-most-one",
            )
        )
    if never_done:
        names = [r.label for r in never_done]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        labs = tuple(r.lab for r in never_done)
        found.append(NotRun(content.check_name, f"no {listed} on record", True, labs, f"no {listed} on record"))
    return found


def _not_decided(facts: PatientFacts, reading: LabReading, check: str) -> NotRun | None:
    """Why the hold check of a lab with an unreadable or out-of-date result was not done (None: it is not
    this rule's to say: the lab results are unavailable, or a new start's baseline card asks for them)."""
    label = reading.label
    if reading.status == "unreadable":
        brief = f"{label} of {reading.taken} unreadable" if reading.taken else f"{label} unreadable"
        return NotRun(
            check, f"the newest {label} cannot be read: {reading.problem}", True, (reading.lab,), brief
        )
    if facts.on_baricitinib and reading.status == "stale" and reading.result is not None:
        last = reading.result.day.isoformat()
        why = f"no current {label}; the last, of {last}, is out of date"
        return NotRun(check, why, True, (reading.lab,), f"no {label} since {last}")
    return None
