"""Off-label use: baricitinib for SLE (including lupus nephritis) in a patient with no on-label US indication
(rheumatoid arthritis, alopecia areata, COVID-19 in hospitalised adults). The card says in one line why it
matters and asks for documented consent; the SLE trial record is its links. COVID-19 is an indication only
while the patient is in hospital: an outpatient COVID-19 code, or one whose setting could not be checked,
does not hide the warning."""

from __future__ import annotations

from pydantic import Field

from ..cards import Card
from ..content import ContentModel, RuleContent
from ..facts import PatientFacts
from . import card, check_groups, recorded, rule, unique_conditions, with_records


class OffLabelTexts(ContentModel):
    summary: str
    nephritis_summary: str  # used instead of summary when lupus nephritis is recorded
    no_indication_text: str  # why the card fired: no US indication recorded, SLE not approved
    why_text: str  # why it matters, one line (the trial record is the card's links)
    nephritis_text: str  # instead of why_text when lupus nephritis is recorded
    consent_text: str
    basis_note: str
    outpatient_text: str  # an inpatient-only indication recorded, but no inpatient encounter
    setting_unknown_text: str  # an inpatient-only indication recorded, and the encounters could not be had


class OffLabel(RuleContent):
    placeholders = frozenset({"count"})

    off_label_groups: list[str] = Field(min_length=1)  # condition groups for which any use is off-label
    nephritis_groups: list[str] = Field(min_length=1)  # the subset that means lupus nephritis
    on_label_groups: list[str] = Field(min_length=1)  # US indications: any of these and the card stays silent
    inpatient_only_groups: list[str] = Field(default_factory=list)  # indications only in hospital (COVID-19)
    texts: OffLabelTexts
    detail_words_at_most: int = Field(gt=0)  # the detail's words before its basis line

    def check_against(self, facts_content) -> None:
        check_groups(facts_content, conditions=self.off_label_groups + self.nephritis_groups + self.on_label_groups)
        if not set(self.nephritis_groups) <= set(self.off_label_groups):
            raise ValueError("nephritis_groups must also be off_label_groups")
        if not set(self.inpatient_only_groups) <= set(self.on_label_groups):
            raise ValueError("inpatient_only_groups must also be on_label_groups")


@rule("off_label", OffLabel)
def off_label(facts: PatientFacts, content: OffLabel) -> list[Card]:
    if facts.on_baricitinib:
        return []  # a refill: the prescriber read the full card when starting
    if "conditions" in facts.unavailable:
        return []  # unknown indication: the data-quality card says the check did not run
    everywhere = [g for g in content.on_label_groups if g not in content.inpatient_only_groups]
    in_hospital_only = [c for g in content.inpatient_only_groups for c in facts.conditions.get(g, [])]
    if any(facts.has(group) for group in everywhere) or (in_hospital_only and facts.in_hospital):
        return []
    fired = unique_conditions([c for group in content.off_label_groups for c in facts.conditions.get(group, [])])
    if not fired:
        return []
    nephritis = unique_conditions([c for group in content.nephritis_groups for c in facts.conditions.get(group, [])])
    texts = content.texts
    after = [texts.no_indication_text]
    if in_hospital_only:
        names = ", ".join(recorded(c) for c in unique_conditions(in_hospital_only))
        setting = texts.setting_unknown_text if facts.in_hospital is None else texts.outpatient_text
        after.append(f"{names}: {setting}")
    after += [texts.nephritis_text if nephritis else texts.why_text, texts.consent_text]
    detail = with_records(content, [f"- {recorded(c)}" for c in fired], after, content.detail_words_at_most)
    return [
        card(
            content,
            summary=texts.nephritis_summary if nephritis else texts.summary,
            detail=detail,
            basis_line=texts.basis_note,
        )
    ]

