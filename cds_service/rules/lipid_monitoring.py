"""Lipid monitoring for a patient on baricitinib: lipids due (label: about 12 weeks after the start, and no
lipid result since the start), and a current LDL above a practice threshold (consider a statin; the label
gives no LDL target, and the card says so). A new start has no therapy yet, so nothing is due.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from .. import orders
from ..cards import Card, Suggestion
from ..content import Quantity, RuleContent
from ..facts import LabResult, PatientFacts
from . import card, rule
from .baseline_labs import OrderCode


class LipidMonitoring(RuleContent):
    placeholders = frozenset({"weeks", "start", "value", "unit", "date", "limit"})

    due_after: Quantity
    lipid_labs: list[str] = Field(min_length=1)
    ldl_lab: str
    ldl_above: Quantity
    panel: OrderCode
    due_summary: str
    ldl_summary: str
    due_text: str
    ldl_text: str
    unreadable_text: str
    order_label: str
    order_reason: str
    basis_label_note: str
    basis_practice_note: str

    def check_against(self, facts_content) -> None:
        if self.due_after.unit != "wk":
            raise ValueError("due_after: unit must be 'wk'")
        for key in [*self.lipid_labs, self.ldl_lab]:
            if key not in facts_content.labs.labs:
                raise ValueError(f"unknown lab {key!r}")
        if self.ldl_above.unit != facts_content.labs.labs[self.ldl_lab].canonical_unit:
            raise ValueError("ldl_above: unit must be the LDL lab's canonical unit")


@rule("lipid_monitoring", LipidMonitoring)
def lipid_monitoring(facts: PatientFacts, content: LipidMonitoring) -> list[Card]:
    start = facts.therapy_start
    if not facts.on_baricitinib or start is None:
        return []  # a new start (nothing due yet), or no start date to count from
    readings = [facts.lab(key) for key in content.lipid_labs]
    if any(r.status == "unavailable" for r in readings):
        return []  # lab results could not be fetched: the data-quality card says so

    weeks = (facts.as_of - start).days // 7
    due_from = start + timedelta(weeks=content.due_after.value)
    since_start = [r.result for r in readings if r.result is not None and r.result.day >= start]
    due = facts.as_of >= due_from and not since_start

    ldl = facts.lab(content.ldl_lab).current
    high_ldl = ldl if isinstance(ldl, LabResult) and ldl.above(content.ldl_above.value) else None
    if not due and high_ldl is None:
        return []

    limit = f"{content.ldl_above.value:g} {content.ldl_above.unit}"
    lines: list[str] = []
    suggestions: list[Suggestion] = []
    if due:
        summary = content.due_summary.format(weeks=weeks, start=start.isoformat())
        lines.append(content.due_text.format(weeks=weeks, start=start.isoformat()))
        unreadable = [r for r in readings if r.status == "unreadable"]
        lines += [f"- {content.unreadable_text}: {r.problem}" for r in unreadable]
        actions = orders.order_tests(
            facts.patient_id, [(content.panel.code, content.panel.display)], content.order_reason
        )
        suggestions.append(Suggestion(label=content.order_label, is_recommended=True, actions=actions))
    if high_ldl is not None:
        fields = {
            "value": f"{high_ldl.value:.4g}",
            "unit": high_ldl.shown_unit,
            "date": high_ldl.day.isoformat(),
            "limit": limit,
        }
        if not due:
            summary = content.ldl_summary.format(**fields)
        lines.append(f"**{high_ldl.describe()}** ({high_ldl.resource}). " + content.ldl_text.format(**fields))
    return [
        card(
            content,
            summary=summary,
            detail="\n\n".join(lines),
            suggestions=suggestions,
            selection_behavior="at-most-one",
            basis_note=None
            if due and high_ldl
            else content.basis_label_note
            if due
            else content.basis_practice_note,
        )
    ]
