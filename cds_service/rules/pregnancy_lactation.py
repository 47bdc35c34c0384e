"""Pregnancy and breastfeeding: a current pregnancy (a condition, or a positive pregnancy test of the last
month) or breastfeeding recorded, when baricitinib is ordered or a patient on it opens. The card names what
the chart shows and points to the label's section on use in pregnancy and lactation; it quotes no advice the
label text read does not give."""

from __future__ import annotations

from pydantic import Field

from ..cards import Card
from ..content import RuleContent
from ..facts import CodedResult, PatientFacts
from . import card, check_groups, recorded, rule, with_records


class PregnancyLactation(RuleContent):
    placeholders = frozenset({"what"})

    pregnancy_groups: list[str] = Field(min_length=1)
    pregnancy_test_lab: str
    lactation_groups: list[str] = Field(min_length=1)
    summary: str
    pregnancy_short: str
    lactation_short: str
    pregnancy_text: str
    lactation_text: str

    def check_against(self, facts_content) -> None:
        check_groups(facts_content, conditions=[*self.pregnancy_groups, *self.lactation_groups])
        lab = facts_content.labs.labs.get(self.pregnancy_test_lab)
        if lab is None or lab.kind != "coded":
            raise ValueError(f"pregnancy_test_lab {self.pregnancy_test_lab!r} must be a coded lab")


@rule("pregnancy_lactation", PregnancyLactation)
def pregnancy_lactation(facts: PatientFacts, content: PregnancyLactation) -> list[Card]:
    test = facts.lab(content.pregnancy_test_lab).current
    positive_test = test if isinstance(test, CodedResult) and test.result == "positive" else None
    pregnant = [c for g in content.pregnancy_groups for c in facts.conditions.get(g, [])]
    breastfeeding = [c for g in content.lactation_groups for c in facts.conditions.get(g, [])]
    shown, lines, texts = [], [], []
    if pregnant or positive_test:
        shown.append(content.pregnancy_short)
        lines += [f"- {recorded(c)}" for c in pregnant]
        lines += [f"- {positive_test.label} {positive_test.result} ({positive_test.day.isoformat()})"] if positive_test else []
        texts.append(content.pregnancy_text)
    if breastfeeding:
        shown.append(content.lactation_short)
        lines += [f"- {recorded(c)}" for c in breastfeeding]
        texts.append(content.lactation_text)
    if not shown:
        return []
    detail = with_records(content, lines, [" ".join(texts)])
    return [card(content, summary=content.summary.format(what=" and ".join(shown)), detail=detail)]
