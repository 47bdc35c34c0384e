"""Boxed-warning risks at a new start: what the chart shows of the populations the boxed warning names
(age 50 or older with a cardiovascular risk factor, current or past smoking, myocardial infarction, stroke
or other arterial disease, malignancy other than non-melanoma skin cancer, venous thrombosis), each with its
date, in one warning card stating the boxed warning's highlights; a list too long for the card ends with
"and N more"."""

from __future__ import annotations

from pydantic import Field

from ..cards import Card
from ..content import ContentModel, Quantity, RuleContent
from ..facts import CodedResult, PatientFacts
from . import card, check_groups, fit_list, recorded, rule, with_records


class RiskGroup(ContentModel):
    group: str  # a condition group
    short: str  # how the summary names it


class BoxedWarning(RuleContent):
    placeholders = frozenset({"risks", "age", "status", "count"})

    older_age_from: Quantity
    cardiovascular_risk_factors: list[RiskGroup] = Field(min_length=1)
    smoking_lab: str
    smoker_categories: list[str] = Field(min_length=1)
    histories: list[RiskGroup] = Field(min_length=1)
    skin_cancer_groups: list[str] = Field(min_length=1)
    summary: str
    older_short: str
    smoker_short: str
    boxed_warning_text: str
    skin_text: str
    then_text: str
    detail_words_at_most: int = Field(gt=0)  # the detail's words before its basis line

    def check_against(self, facts_content) -> None:
        if self.older_age_from.unit != "a":
            raise ValueError("older_age_from: unit must be 'a' (years)")
        named = [g.group for g in [*self.cardiovascular_risk_factors, *self.histories]]
        check_groups(facts_content, conditions=named + self.skin_cancer_groups)
        lab = facts_content.labs.labs.get(self.smoking_lab)
        if lab is None or lab.kind != "category" or not set(self.smoker_categories) <= set(lab.categories):
            raise ValueError(f"smoking_lab {self.smoking_lab!r} must be a category lab with {self.smoker_categories}")


@rule("boxed_warning", BoxedWarning)
def boxed_warning(facts: PatientFacts, content: BoxedWarning) -> list[Card]:
    if facts.on_baricitinib or "conditions" in facts.unavailable:
        return []  # not a new start; or the problem list is unknown (the data-quality card says so)
    smoking = facts.lab(content.smoking_lab).result
    smoker = smoking if isinstance(smoking, CodedResult) and smoking.result in content.smoker_categories else None
    risks: list[str] = []
    lines: list[str] = []
    has_factor = smoker is not None or any(facts.has(g.group) for g in content.cardiovascular_risk_factors)
    if facts.age is not None and facts.age >= content.older_age_from.value and has_factor:
        risks.append(content.older_short.format(age=facts.age))
    risks += [g.short for g in content.cardiovascular_risk_factors if facts.has(g.group)]
    if smoker:
        risks.append(content.smoker_short.format(status=smoker.result))
        lines.append(f"- {content.smoker_short.format(status=smoker.result)} ({smoker.day.isoformat()})")
    for history in content.histories:
        for condition in facts.conditions.get(history.group, []):
            lines.append(f"- {recorded(condition)}")
        if facts.has(history.group):
            risks.append(history.short)
    for group in content.cardiovascular_risk_factors:
        lines += [f"- {recorded(c)}" for c in facts.conditions.get(group.group, [])]
    if not risks:
        return []
    after = [content.boxed_warning_text]
    if any(facts.has(g) for g in content.skin_cancer_groups):
        after.append(content.skin_text)
    after.append(content.then_text)
    detail = with_records(content, list(dict.fromkeys(lines)), after, content.detail_words_at_most)
    return [card(content, summary=fit_list(content.summary, "risks", list(dict.fromkeys(risks))), detail=detail)]
