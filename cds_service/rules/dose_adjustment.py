"""Dose adjustment of a baricitinib draft order: reduced kidney function, a strong OAT3 inhibitor, an older
patient on more than 2 mg (EU SmPC practice, said so on the card) and a daily dose above the highest
labelled dose. On a chart open of a patient on baricitinib, the renal check runs against the active order:
kidney function that falls on therapy is seen without waiting for the next prescription.

One card per draft order combines every finding, so two suggestions can never conflict: the suggested
dose is the lowest any finding calls for. Halving (eGFR 30 to <60, an OAT3 inhibitor) is applied once even
when both apply, and the card says so: the label gives 1 mg once daily for each and no further step when
both apply. An unknown daily dose is said on the card and no dose is suggested.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from .. import orders
from ..cards import Card, Suggestion
from ..content import ContentModel, Quantity, RuleContent
from ..facts import BaricitinibOrder, NotRun, PatientFacts
from . import card, fit_list, medication_state, rule

DOSE_UNIT = "mg/d"


class DoseTexts(ContentModel):
    """Clinical text of each finding, shown in the card detail."""

    renal_severe_text: str
    renal_moderate_text: str
    oat3_text: str
    older_text: str
    above_max_text: str
    halve_text: str
    halve_once_text: str
    halve_from_max_text: str
    unknown_dose_text: str
    no_tablet_text: str
    egfr_missing_text: str
    age_missing_text: str


class DoseReasons(ContentModel):
    """Short reasons joined into the summary."""

    renal_summary: str
    oat3_summary: str
    older_summary: str
    above_max_summary: str


class DoseAdjustment(RuleContent):
    placeholders = frozenset({"egfr", "limit", "dose", "target", "reasons", "problem", "drug", "age"})

    egfr_not_recommended_below: Quantity
    egfr_halve_below: Quantity
    older_age_from: Quantity
    older_dose_above: Quantity
    older_dose: Quantity
    max_daily_dose: Quantity
    lowest_reduced_dose: Quantity
    tablet_strengths: list[Quantity] = Field(min_length=1)
    oat3_group: str

    not_recommended_summary: str
    change_summary: str
    no_suggestion_summary: str
    remove_label: str
    hold_label: str
    renal_check_name: str  # how the data-quality card names the checks that could not run
    age_check_name: str
    change_label: str
    basis_label_note: str
    basis_eu_note: str
    texts: DoseTexts
    reasons: DoseReasons

    def indicators(self) -> set[str]:
        return {"warning", "critical"}  # critical: eGFR below 30, a dose above the maximum

    def check_against(self, facts_content) -> None:
        egfr_unit = facts_content.labs.labs["egfr"].canonical_unit
        for name in ("egfr_not_recommended_below", "egfr_halve_below"):
            if getattr(self, name).unit != egfr_unit:
                raise ValueError(f"{name}: unit must be the eGFR unit {egfr_unit!r}")
        if self.older_age_from.unit != "a":
            raise ValueError("older_age_from: unit must be 'a' (years)")
        for name in ("older_dose_above", "older_dose", "max_daily_dose", "lowest_reduced_dose"):
            if getattr(self, name).unit != DOSE_UNIT:
                raise ValueError(f"{name}: unit must be {DOSE_UNIT!r}")
        if any(s.unit != "mg" for s in self.tablet_strengths):
            raise ValueError("tablet_strengths: unit must be 'mg'")
        if self.oat3_group not in facts_content.medications.groups:
            raise ValueError(f"oat3_group {self.oat3_group!r} is not a group in medications.toml")
        if self.egfr_not_recommended_below.value >= self.egfr_halve_below.value:
            raise ValueError("egfr_not_recommended_below must be below egfr_halve_below")


@dataclass(frozen=True)
class _Finding:
    reason: str  # short, joined into the summary
    lines: list[str]  # markdown lines for the detail
    critical: bool = False


@rule("dose_adjustment", DoseAdjustment)
def dose_adjustment(facts: PatientFacts, content: DoseAdjustment) -> list[Card | NotRun]:
    renal_only = not facts.is_order_hook
    checked = facts.baricitinib_active if renal_only else facts.baricitinib_drafts
    found: list[Card | NotRun] = [c for order in checked if (c := _order_card(facts, content, order, renal_only))]
    return found + _not_decided(facts, content)


def _not_decided(facts: PatientFacts, content: DoseAdjustment) -> list[Card | NotRun]:
    """The renal check when there is no eGFR, or one whose comparator leaves a threshold open; the
    age-based check when the age is unknown and the dose may be above the older-patient dose."""
    gaps: list[Card | NotRun] = []
    egfr = facts.egfr
    if egfr is None and facts.egfr_problem and "observations" not in facts.unavailable:
        gaps.append(NotRun(content.renal_check_name, facts.egfr_problem, True, ("egfr",), "no usable eGFR"))
    elif egfr is not None:
        for limit in (content.egfr_not_recommended_below, content.egfr_halve_below):
            if egfr.below(limit.value) is None:
                brief = f"eGFR {egfr.comparator}{egfr.value:g} undecided"
                why = f"{egfr.describe()} does not show whether it is below {limit.value:g}"
                gaps.append(NotRun(content.renal_check_name, why, True, ("egfr",), brief))
                break
    doses = [o.daily_dose_mg for o in facts.baricitinib_drafts]  # none on a chart open: renal only there
    if facts.age is None and any(d is None or d > content.older_dose_above.value for d in doses):
        gaps.append(NotRun(content.age_check_name, facts.age_problem or "the patient's age is unknown"))
    return gaps


def _order_card(
    facts: PatientFacts, content: DoseAdjustment, order: BaricitinibOrder, renal_only: bool
) -> Card | None:
    texts, reasons = content.texts, content.reasons
    dose, egfr = order.daily_dose_mg, facts.egfr
    if egfr is not None and egfr.below(content.egfr_not_recommended_below.value):
        limit = f"{content.egfr_not_recommended_below.value:g}"
        if order.is_draft:
            stop, stop_label = orders.remove_order(order.resource, order.name), content.remove_label
        else:
            reason = f"eGFR {egfr.comparator or ''}{egfr.value:g} mL/min/1.73 m2 on {egfr.day.isoformat()}"
            stop, stop_label = orders.hold_therapy(order, reason), content.hold_label
        return card(
            content,
            summary=content.not_recommended_summary.format(egfr=f"{egfr.comparator or ''}{egfr.value:g}", limit=limit),
            detail=f"- **{egfr.describe()}**: {texts.renal_severe_text}",
            indicator="critical",
            basis_line=content.basis_label_note,
            suggestions=[Suggestion(label=stop_label, is_recommended=True, actions=[stop])] if stop else [],
            selection_behavior="at-most-one",
        )

    # Halving is not repeated once the order is at the lowest reduced dose (the label's 1 mg once daily).
    can_halve = dose is None or dose > content.lowest_reduced_dose.value
    renal = can_halve and egfr is not None and bool(egfr.below(content.egfr_halve_below.value))
    oat3 = [m for m in facts.co_medications if m.group == content.oat3_group] if can_halve and not renal_only else []
    older = (
        not renal_only
        and facts.age is not None
        and facts.age >= content.older_age_from.value
        and (dose is None or dose > content.older_dose_above.value)
    )
    above_max = not renal_only and dose is not None and dose > content.max_daily_dose.value

    findings: list[_Finding] = []
    if renal:
        assert egfr is not None
        line = f"- **{egfr.describe()}**: {texts.renal_moderate_text}"
        findings.append(_Finding(reasons.renal_summary.format(egfr=f"{egfr.comparator or ''}{egfr.value:g}"), [line]))
    if oat3:
        names = ", ".join(sorted({m.name for m in oat3}))
        lines = [f"- **{m.name}** ({medication_state(content, m)}): {texts.oat3_text}" for m in oat3]
        findings.append(_Finding(reasons.oat3_summary.format(drug=names), lines))
    if older:
        line = f"- **Age {facts.age}**: {texts.older_text}"
        findings.append(_Finding(reasons.older_summary.format(age=facts.age), [line]))
    if above_max:
        limit = f"{content.max_daily_dose.value:g}"
        line = f"- **{order.dose_text}**: {texts.above_max_text}"
        findings.append(_Finding(reasons.above_max_summary.format(limit=limit), [line], critical=True))
    if not findings:
        return None

    # The summary names the order and its dose; the detail says what fired, and the label's halving once.
    detail = ["\n".join(line for f in findings for line in f.lines)]
    halving = renal or bool(oat3)
    if halving:
        detail.append(texts.halve_once_text if renal and oat3 else texts.halve_text)
    if egfr is None and facts.egfr_problem:
        detail.append(texts.egfr_missing_text.format(problem=facts.egfr_problem))
    if facts.age is None and (dose is None or dose > content.older_dose_above.value):
        detail.append(texts.age_missing_text)

    target = None
    if dose is None:
        detail.append(texts.unknown_dose_text.format(problem=order.dose_problem))
    else:
        target = min(dose, content.max_daily_dose.value)
        if halving:
            if dose > content.max_daily_dose.value:
                detail.append(texts.halve_from_max_text.format(limit=f"{content.max_daily_dose.value:g}"))
            target /= 2
        if older:
            target = min(target, content.older_dose.value)
        if target not in {s.value for s in content.tablet_strengths}:
            detail.append(texts.no_tablet_text.format(target=f"{target:g}"))
            target = None

    why = [f.reason for f in findings]
    suggestions: list[Suggestion] = []
    if target is None:
        shown = order.dose_text if dose is not None else "dose unknown"
        summary = fit_list(content.no_suggestion_summary, "reasons", why, dose=shown)
    else:
        summary = fit_list(content.change_summary, "reasons", why, dose=order.dose_text, target=f"{target:g}")
        detail.append(f"**Suggested:** {target:g} mg once daily.")
        action = orders.change_dose(order, target, "; ".join(why))
        if action:
            label = content.change_label.format(target=f"{target:g}")
            suggestions.append(Suggestion(label=label, is_recommended=True, actions=[action]))

    return card(
        content,
        summary=summary,
        detail="\n\n".join(detail),
        indicator="critical" if any(f.critical for f in findings) else "warning",
        basis_line=content.basis_eu_note if older else content.basis_label_note,
        suggestions=suggestions,
        selection_behavior="at-most-one",
    )

