"""Infection hold: an active serious infection (including localized infections), herpes zoster, active TB,
latent TB not yet treated, or active hepatitis B or C. One critical card lists every hold finding; results
that need a second look (an indeterminate IGRA or HBsAg, a positive HCV antibody alone) go in one warning
card, because they are not a reason to hold on their own and are never read as negative."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pydantic import Field

from ..cards import Card
from ..content import ContentModel, Indicator, Quantity, RuleContent
from ..facts import CodedResult, PatientFacts
from . import card, check_groups, fit_list, rule, stop_baricitinib


class ConditionHold(ContentModel):
    group: str
    short: str  # the finding as the summary names it
    action_text: str
    acute: bool = False  # an episode: one dated long ago is asked about, not held for


class LatentTb(ContentModel):
    condition_group: str
    lab: str
    treatment_group: str
    treated_group: str  # a condition group that documents latent TB treated (history)
    treated_after: Quantity  # treatment this long under way counts as treated enough to start (practice)
    suppressed_by: str  # a condition group (active TB) that makes the latent-TB finding moot
    short: str
    action_text: str
    untreated_text: str
    drafted_text: str
    too_recent_text: str
    medications_unknown_text: str
    indeterminate_short: str
    indeterminate_text: str


class LabScreen(ContentModel):
    lab: str
    positive: Literal["hold", "review"]
    positive_short: str
    positive_text: str
    indeterminate_short: str
    indeterminate_text: str


class InfectionHolds(RuleContent):
    placeholders = frozenset({"findings", "finding", "date", "started", "drafted"})

    condition_holds: list[ConditionHold] = Field(min_length=1)
    latent_tb: LatentTb
    lab_screens: list[LabScreen] = Field(min_length=1)
    still_active_within: Quantity
    still_active_short: str
    still_active_text: str
    hold_summary: str
    review_summary: str
    review_on_therapy_summary: str
    review_indicator: Indicator
    hold_intro_text: str
    review_intro_text: str
    remove_label: str
    hold_label: str

    def indicators(self) -> set[str]:
        return {self.indicator, self.review_indicator}

    def check_against(self, facts_content) -> None:
        labs = facts_content.labs.labs
        tb = self.latent_tb
        check_groups(facts_content,
                     conditions=[h.group for h in self.condition_holds] + [tb.condition_group, tb.suppressed_by, tb.treated_group],
                     medications=[tb.treatment_group])  # fmt: skip
        for name in [self.latent_tb.lab] + [s.lab for s in self.lab_screens]:
            if name not in labs or labs[name].kind != "coded":
                raise ValueError(f"lab {name!r} is not a coded lab in labs.toml")
        if self.still_active_within.unit != "d" or self.latent_tb.treated_after.unit != "d":
            raise ValueError("still_active_within and latent_tb.treated_after: unit must be 'd'")


@dataclass(frozen=True)
class Finding:
    kind: Literal["hold", "review"]
    short: str
    evidence: list[str]  # the data that fired it, each naming value, date and resource
    text: str

    def markdown(self) -> str:
        # The summary names the finding; its line says the data that fired it and what to do.
        return f"- **{'; '.join(self.evidence)}**: {self.text}"


@rule("infection_holds", InfectionHolds)
def infection_holds(facts: PatientFacts, content: InfectionHolds) -> list[Card]:
    findings = _condition_findings(facts, content) + _latent_tb(facts, content)
    findings += _lab_findings(facts, content)
    cards = []
    holds = [f for f in findings if f.kind == "hold"]
    if holds:
        cards.append(
            card(
                content,
                summary=fit_list(content.hold_summary, "findings", [f.short for f in holds]),
                detail="\n".join([content.hold_intro_text, ""] + [f.markdown() for f in holds]),
                suggestions=stop_baricitinib(
                    facts,
                    remove_label=content.remove_label,
                    hold_label=content.hold_label,
                    reason="infection hold: " + ", ".join(f.short for f in holds),
                ),
                selection_behavior="at-most-one",
            )
        )
    reviews = [f for f in findings if f.kind == "review"]
    if reviews:
        template = content.review_summary if facts.is_order_hook else content.review_on_therapy_summary
        cards.append(
            card(
                content,
                summary=fit_list(template, "findings", [f.short for f in reviews]),
                detail="\n".join([content.review_intro_text, ""] + [f.markdown() for f in reviews]),
                indicator=content.review_indicator,
            )
        )
    return cards


def _condition_findings(facts: PatientFacts, content: InfectionHolds) -> list[Finding]:
    """A hold per group; an acute episode dated only long ago (onset, else recorded) is a review instead:
    problem lists keep infections long after they resolved, and a hold must not rest on a stale entry."""
    found = []
    recent_from = facts.as_of - timedelta(days=content.still_active_within.value)
    for hold in content.condition_holds:
        conditions = facts.conditions.get(hold.group, [])
        recent = [c for c in conditions if not hold.acute or c.recorded is None or c.recorded >= recent_from]
        if recent:
            found.append(Finding("hold", hold.short, [f"{c.describe()}, {c.resource}" for c in recent], hold.action_text))
        elif conditions:
            newest = max(c.recorded for c in conditions if c.recorded)
            short = content.still_active_short.format(finding=hold.short, date=newest.isoformat())
            text = content.still_active_text.format(finding=hold.short)
            found.append(Finding("review", short, [f"{c.describe()}, {c.resource}" for c in conditions], text))
    return found


def _latent_tb(facts: PatientFacts, content: InfectionHolds) -> list[Finding]:
    """Latent TB (a condition, or a positive IGRA however old and whatever came after) holds until it is
    treated: treatment documented as completed, or under way for long enough (practice) before the start."""
    spec = content.latent_tb
    if facts.has(spec.suppressed_by):
        return []  # active TB is already a hold; a positive IGRA adds nothing
    if facts.has(spec.treated_group) or any(m.group == spec.treatment_group for m in facts.completed_medications):
        return []  # treatment completed: periodic TB evaluation (monitoring-due) takes over
    reading = facts.lab(spec.lab)
    evidence = [f"{c.describe()}, {c.resource}" for c in facts.conditions.get(spec.condition_group, [])]
    if reading.positive_ever is not None:
        evidence.append(f"{reading.positive_ever.describe()}, {reading.positive_ever.resource}")
    found = []
    latest = reading.result
    if isinstance(latest, CodedResult) and latest.result == "indeterminate" and not evidence:
        shown = f"{reading.describe()}, {latest.resource}"
        found.append(Finding("review", spec.indeterminate_short, [shown], spec.indeterminate_text))
    if not evidence:
        return found
    treatments = [m for m in facts.co_medications if m.group == spec.treatment_group]
    under_way = [m for m in treatments if not m.is_draft]
    enough = facts.as_of - timedelta(days=spec.treated_after.value)
    if any(m.started is not None and m.started <= enough for m in under_way):
        return found  # treated for long enough before the start (practice)
    if under_way:
        started = ", ".join(f"{m.name} since {m.started.isoformat() if m.started else 'an unknown date'}"
                            for m in under_way)  # fmt: skip
        status = spec.too_recent_text.format(started=started)
    elif treatments:
        drafted = ", ".join(f"{m.name} ({m.resource})" for m in treatments)
        status = spec.drafted_text.format(drafted=drafted)
    elif "medications" in facts.unavailable:
        status = spec.medications_unknown_text
    else:
        status = spec.untreated_text
    return [*found, Finding("hold", spec.short, evidence, f"{spec.action_text} {status}")]


def _lab_findings(facts: PatientFacts, content: InfectionHolds) -> list[Finding]:
    found = []
    for screen in content.lab_screens:
        result = facts.lab(screen.lab).result
        if not isinstance(result, CodedResult) or result.result == "negative":
            continue  # missing or unreadable: baseline-labs and the data-quality card say so
        evidence = [f"{facts.lab(screen.lab).describe()}, {result.resource}"]
        if result.result == "positive":
            found.append(Finding(screen.positive, screen.positive_short, evidence, screen.positive_text))
        else:
            found.append(Finding("review", screen.indeterminate_short, evidence, screen.indeterminate_text))
    return found

