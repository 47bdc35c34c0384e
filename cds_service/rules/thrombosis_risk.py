"""Thrombosis on therapy: on a chart open of a patient on baricitinib, a thrombosis or an arterial event
(myocardial infarction, ischemic stroke) dated since therapy started. The card states the boxed warning only
as far as the label text read supports it. (At a new start, a history of thrombosis is one of the
boxed-warning risks: boxed_warning.py.)"""

from __future__ import annotations

from datetime import date

from pydantic import Field

from ..cards import Card
from ..content import ContentModel, RuleContent
from ..facts import ConditionFact, PatientFacts
from . import card, check_groups, fit_list, rule, unique_conditions, with_records


class RiskGroup(ContentModel):
    group: str  # a condition group counted whatever its clinicalStatus
    short: str  # how the summary names it


class ThrombosisRisk(RuleContent):
    placeholders = frozenset({"conditions", "date"})

    on_therapy_groups: list[RiskGroup] = Field(min_length=1)
    on_therapy_summary: str
    on_therapy_boxed_warning_text: str
    on_therapy_then_text: str

    def check_against(self, facts_content) -> None:
        check_groups(facts_content, conditions=[g.group for g in self.on_therapy_groups])
        for group in self.on_therapy_groups:
            if facts_content.conditions.groups[group.group].counts != "history":
                raise ValueError(f"condition group {group.group!r} must count as history (any clinicalStatus)")


@rule("thrombosis_risk", ThrombosisRisk)
def thrombosis_risk(facts: PatientFacts, content: ThrombosisRisk) -> list[Card]:
    start = facts.therapy_start
    if "conditions" in facts.unavailable or start is None:
        return []  # the data-quality card says the check did not run; or no start to count from
    found = _recorded(facts, content.on_therapy_groups, since=start)
    if not found:
        return []
    newest = max(c.recorded for cs in found.values() for c in cs if c.recorded)
    summary = fit_list(content.on_therapy_summary, "conditions", list(found), date=newest.isoformat())
    fired = unique_conditions([c for conditions in found.values() for c in conditions])  # one coded in two groups: once
    records = [f"- {c.describe()}, {c.resource}" for c in fired]
    detail = with_records(content, records, [content.on_therapy_boxed_warning_text, content.on_therapy_then_text])
    return [card(content, summary=summary, detail=detail)]


def _recorded(facts: PatientFacts, groups: list[RiskGroup], since: date) -> dict[str, list[ConditionFact]]:
    """Each group's short name -> its conditions dated on or after ``since``."""
    found = {}
    for risk in groups:
        conditions = [c for c in facts.conditions.get(risk.group, []) if c.recorded is not None and c.recorded >= since]
        if conditions:
            found[risk.short] = conditions
    return found
