"""Thrombosis risk: a history of DVT or PE, or antiphospholipid syndrome, when baricitinib is ordered. The
card states the boxed warning only as far as the label text read supports it."""

from __future__ import annotations

from pydantic import Field

from ..cards import SUMMARY_MAX, Card
from ..content import ContentModel, RuleContent
from ..facts import ConditionFact, PatientFacts
from . import card, rule


class RiskGroup(ContentModel):
    group: str  # a condition group counted whatever its clinicalStatus
    short: str  # how the summary names it


class ThrombosisRisk(RuleContent):
    placeholders = frozenset({"conditions"})

    groups: list[RiskGroup] = Field(min_length=1)
    summary: str
    boxed_warning_text: str
    then_text: str

    def check_against(self, facts_content) -> None:
        for name in (g.group for g in self.groups):
            group = facts_content.conditions.groups.get(name)
            if group is None:
                raise ValueError(f"condition group {name!r} is not in conditions.toml")
            if group.counts != "history":
                raise ValueError(f"condition group {name!r} must count as history (any clinicalStatus)")


@rule("thrombosis_risk", ThrombosisRisk)
def thrombosis_risk(facts: PatientFacts, content: ThrombosisRisk) -> list[Card]:
    if "conditions" in facts.unavailable:
        return []  # the data-quality card says the check did not run
    fired: dict[str, ConditionFact] = {}
    shorts = []
    for risk in content.groups:
        conditions = facts.conditions.get(risk.group, [])
        if conditions:
            shorts.append(risk.short)
        for c in conditions:  # one line per Condition, even one coded in both groups
            fired.setdefault(c.resource if "(no id)" not in c.resource else f"{c.resource} {c.code}", c)
    if not fired:
        return []
    recorded = "\n".join(f"- {c.describe()}, {c.resource}" for c in fired.values())
    detail = f"**Recorded:**\n{recorded}\n\n{content.boxed_warning_text}\n\n{content.then_text}"
    summary = content.summary.format(conditions=" and ".join(shorts))
    return [card(content, summary=summary[:SUMMARY_MAX], detail=detail)]
