"""Combination not recommended: baricitinib with another JAK inhibitor, a biologic DMARD or a potent
immunosuppressant, active or ordered together. The card says which drugs the label names and which practice
counts as potent immunosuppressants."""

from __future__ import annotations

from pydantic import Field

from ..cards import Card
from ..content import ContentModel, RuleContent
from ..facts import CoMedication, PatientFacts
from . import card, check_groups, fit_list, medication_state, rule


class CombinationGroup(ContentModel):
    group: str  # a medication group in medications.toml
    why_text: str  # what the label (or practice) says about this class


class Combinations(RuleContent):
    placeholders = frozenset({"drugs"})

    groups: list[CombinationGroup] = Field(min_length=1)
    summary: str
    label_text: str  # the label's limitation of use
    drug_notes: dict[str, str] = Field(default_factory=dict)  # lower-case drug name -> a caveat about it
    then_text: str
    basis_note: str

    def check_against(self, facts_content) -> None:
        check_groups(facts_content, medications=[entry.group for entry in self.groups])


@rule("combinations", Combinations)
def combinations(facts: PatientFacts, content: Combinations) -> list[Card]:
    why = {g.group: g.why_text for g in content.groups}
    found = _unique([m for m in facts.co_medications if m.group in why])
    if not found:
        return []
    lines = []
    for med in found:
        note = content.drug_notes.get(med.name.lower())
        note = f" {note}" if note else ""
        lines.append(f"- **{med.name}** ({medication_state(content, med)}): {why[med.group]}{note}")
    detail = "\n".join([content.label_text, "", *lines, "", content.then_text])
    summary = fit_list(content.summary, "drugs", list(dict.fromkeys(m.name for m in found)))
    return [card(content, summary=summary, detail=detail, basis_line=content.basis_note)]


def _unique(medications: list[CoMedication]) -> list[CoMedication]:
    """One line per drug and order (a drug is listed once even if two groups match it)."""
    seen: dict[tuple[str, str], CoMedication] = {}
    for med in medications:
        seen.setdefault((med.name.lower(), med.resource), med)
    return list(seen.values())

