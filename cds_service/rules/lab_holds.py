"""Lab hold: the latest ANC, lymphocyte count or hemoglobin below the label's threshold, or ALT/AST above
a multiple of the upper limit of normal (a practice threshold, said so on the card)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..cards import Card
from ..content import ContentModel, Quantity, RuleContent
from ..facts import LabResult, PatientFacts
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
    remove_label: str
    hold_label: str

    def check_against(self, facts_content) -> None:
        for threshold in self.thresholds:
            lab = facts_content.labs.labs.get(threshold.lab)
            if lab is None:
                raise ValueError(f"threshold for unknown lab {threshold.lab!r}")
            for q in (threshold.below, threshold.default_uln):
                if q is not None and q.unit != lab.canonical_unit:
                    raise ValueError(f"{threshold.lab}: unit {q.unit!r} must be the lab's unit {lab.canonical_unit!r}")
            if (threshold.below is None) == (threshold.above_uln_times is None):
                raise ValueError(f"{threshold.lab}: give either below or above_uln_times")
            if threshold.above_uln_times is not None and threshold.default_uln is None:
                raise ValueError(f"{threshold.lab}: above_uln_times needs a default_uln")


@rule("lab_holds", LabHolds)
def lab_holds(facts: PatientFacts, content: LabHolds) -> list[Card]:
    cards = []
    for threshold in content.thresholds:
        result = facts.lab(threshold.lab).current
        if not isinstance(result, LabResult):
            continue  # missing, stale and unreadable results are the data-quality card's and baseline's job
        if threshold.below is not None:
            if result.value >= threshold.below.value:
                continue
            limit = f"{threshold.below.value:g} {result.shown_unit}"
            summary = content.below_summary
            why = f"below the hold threshold of {limit}"
        else:
            assert threshold.above_uln_times is not None and threshold.default_uln is not None
            uln = result.reference_high or threshold.default_uln.value
            uln_source = "the result's reference range" if result.reference_high else "the default in cards/"
            if result.value <= threshold.above_uln_times * uln:
                continue
            limit = f"{threshold.above_uln_times:g}x ULN ({threshold.above_uln_times * uln:g} {result.shown_unit})"
            summary = content.above_summary
            why = f"above {limit}; upper limit of normal {uln:g} {result.shown_unit} from {uln_source}"
        fields = {"lab": result.label, "value": f"{result.value:g}", "unit": result.shown_unit,
                  "date": result.day.isoformat(), "limit": limit}  # fmt: skip
        basis = "US Olumiant label threshold." if threshold.basis == "label" else "Practice threshold, not in the US label."
        detail = (
            f"**{result.describe()}** ({result.resource}) is {why}.\n\n{threshold.action_text}"
        )
        cards.append(
            card(
                content,
                summary=summary.format(**fields),
                detail=detail,
                basis_note=f"Basis: {basis}",
                suggestions=stop_baricitinib(
                    facts,
                    remove_label=content.remove_label,
                    hold_label=content.hold_label,
                    reason=f"{result.label} {result.value:g} {result.shown_unit} on {result.day.isoformat()}",
                ),
                selection_behavior="at-most-one",
            )
        )
    return cards

