"""Severe hepatic impairment: baricitinib is not recommended (label, RA). Hepatic failure recorded is read as
severe (critical); cirrhosis recorded, whose severity the chart does not code, asks for it to be assessed
(warning)."""

from __future__ import annotations

from pydantic import Field

from ..cards import Card
from ..content import ContentModel, Indicator, RuleContent
from ..facts import PatientFacts
from . import card, check_groups, recorded, rule, stop_baricitinib, with_records


class HepaticFinding(ContentModel):
    group: str
    indicator: Indicator
    summary: str
    text: str


class HepaticImpairment(RuleContent):
    placeholders = frozenset({"condition"})

    findings: list[HepaticFinding] = Field(min_length=1)  # the first that the chart shows makes the card
    remove_label: str
    hold_label: str

    def indicators(self) -> set[str]:
        return {f.indicator for f in self.findings}

    def check_against(self, facts_content) -> None:
        check_groups(facts_content, conditions=[f.group for f in self.findings])


@rule("hepatic_impairment", HepaticImpairment)
def hepatic_impairment(facts: PatientFacts, content: HepaticImpairment) -> list[Card]:
    for finding in content.findings:
        conditions = facts.conditions.get(finding.group, [])
        if not conditions:
            continue
        critical = finding.indicator == "critical"
        suggestions = stop_baricitinib(facts, remove_label=content.remove_label, hold_label=content.hold_label,
                                       reason=f"{conditions[0].display}") if critical else []  # fmt: skip
        return [
            card(
                content,
                summary=finding.summary.format(condition=conditions[0].display),
                detail=with_records(content, [f"- {recorded(c)}" for c in conditions], [finding.text]),
                indicator=finding.indicator,
                suggestions=suggestions,
                selection_behavior="at-most-one",
            )
        ]
    return []
