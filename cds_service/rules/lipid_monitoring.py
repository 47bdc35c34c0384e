"""Lipid monitoring for a patient on baricitinib (label: assess lipids about 12 weeks after the start).

Due from week 12 of therapy while no LDL or total cholesterol has been taken since the assessment window
opened (a few weeks before week 12, a practice choice in cards/): a panel from the first days of therapy is
a baseline, not the week-12 assessment, and HDL or triglycerides alone are not a lipid assessment. The
label gives no LDL target or statin threshold, so the card makes no statin prompt. A new start has no
therapy yet, so nothing is due.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from .. import orders
from ..cards import Card, Suggestion
from ..content import Quantity, RuleContent
from ..facts import PatientFacts
from . import card, rule
from .baseline_labs import OrderCode


class LipidMonitoring(RuleContent):
    placeholders = frozenset({"weeks", "start", "window"})

    due_after: Quantity
    counts_from: Quantity  # the start of the assessment window, in weeks of therapy
    assessment_labs: list[str] = Field(min_length=1)
    panel: OrderCode
    due_summary: str
    due_text: str
    unreadable_text: str
    order_label: str
    order_reason: str

    def check_against(self, facts_content) -> None:
        if self.due_after.unit != "wk" or self.counts_from.unit != "wk":
            raise ValueError("due_after and counts_from: unit must be 'wk'")
        if self.counts_from.value > self.due_after.value:
            raise ValueError("counts_from must not be after due_after")
        for key in self.assessment_labs:
            if key not in facts_content.labs.labs:
                raise ValueError(f"unknown lab {key!r}")


@rule("lipid_monitoring", LipidMonitoring)
def lipid_monitoring(facts: PatientFacts, content: LipidMonitoring) -> list[Card]:
    start = facts.therapy_start
    if not facts.on_baricitinib or start is None:
        return []  # a new start (nothing due yet), or no start date to count from
    readings = [facts.lab(key) for key in content.assessment_labs]
    if any(r.status == "unavailable" for r in readings):
        return []  # lab results could not be fetched: the data-quality card says so
    window = start + timedelta(weeks=content.counts_from.value)
    if facts.as_of < start + timedelta(weeks=content.due_after.value):
        return []
    if any(r.result is not None and r.result.day >= window for r in readings):
        return []

    weeks = (facts.as_of - start).days // 7
    fields = {"weeks": weeks, "start": start.isoformat(), "window": window.isoformat()}
    lines = [content.due_text.format(**fields)]
    lines += [f"- {content.unreadable_text}: {r.problem}" for r in readings if r.status == "unreadable"]
    actions = orders.order_tests(facts.patient_id, [(content.panel.code, content.panel.display)], content.order_reason)
    return [
        card(
            content,
            summary=content.due_summary.format(**fields),
            detail="\n\n".join(lines),
            suggestions=[Suggestion(label=content.order_label, is_recommended=True, actions=actions)],
            selection_behavior="at-most-one",
        )
    ]
