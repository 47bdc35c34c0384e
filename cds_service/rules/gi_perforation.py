"""Gastrointestinal perforation risk: the label says to use baricitinib with caution in patients at risk.
A prior GI perforation is a risk on its own; diverticulitis is one together with an NSAID or a systemic
corticosteroid, active or ordered now (which risks count is practice, said so on the card)."""

from __future__ import annotations

from pydantic import Field

from ..cards import Card
from ..content import RuleContent
from ..facts import PatientFacts
from . import card, check_groups, fit_list, medication_state, recorded, rule, with_records


class GiPerforation(RuleContent):
    placeholders = frozenset({"risks", "count"})

    risk_alone_groups: list[str] = Field(min_length=1)  # a risk on their own (a prior perforation)
    risk_with_drugs_groups: list[str] = Field(min_length=1)  # a risk with one of the drugs (diverticulitis)
    drug_groups: list[str] = Field(min_length=1)  # medications.toml groups (NSAIDs, systemic corticosteroids)
    summary: str
    caution_text: str
    detail_words_at_most: int = Field(gt=0)  # the detail's words before its basis line

    def check_against(self, facts_content) -> None:
        check_groups(facts_content, conditions=[*self.risk_alone_groups, *self.risk_with_drugs_groups],
                     medications=self.drug_groups)


@rule("gi_perforation", GiPerforation)
def gi_perforation(facts: PatientFacts, content: GiPerforation) -> list[Card]:
    drugs = [m for m in facts.co_medications if m.group in content.drug_groups]
    alone = [c for g in content.risk_alone_groups for c in facts.conditions.get(g, [])]
    with_drugs = [c for g in content.risk_with_drugs_groups for c in facts.conditions.get(g, [])] if drugs else []
    if not alone and not with_drugs:
        return []
    conditions = alone + with_drugs
    risks = list(dict.fromkeys([c.label.lower() for c in conditions] + [m.name for m in drugs]))
    lines = [f"- {recorded(c)}" for c in conditions]
    lines += [f"- {m.name} ({medication_state(content, m)})" for m in drugs]
    detail = with_records(content, lines, [content.caution_text], content.detail_words_at_most)
    return [card(content, summary=fit_list(content.summary, "risks", risks), detail=detail)]
