"""Live vaccine: a live vaccine given within the last 4 weeks when baricitinib is ordered (ACIP/IDSA: live
vaccines >= 4 weeks before immunosuppression), ordered together with baricitinib, or ordered for a patient on
baricitinib (label: avoid live vaccines). On patient-view: a live vaccine given within the last 4 weeks to
a patient on baricitinib.

A vaccine order is recognised by its CVX code whatever the resource type (facts.vaccine_orders). JYNNEOS is
live but non-replicating: never this card. A code that may or may not be a live vaccine (CVX 188, zoster
unspecified) gets its own card asking which vaccine is meant, rather than being passed over in silence.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from .. import codes, orders
from ..cards import SUMMARY_MAX, Card, Suggestion
from ..content import ContentModel, Indicator, Quantity, RuleContent
from ..facts import PatientFacts, VaccineDose, VaccineOrder
from . import card, rule

INTERVAL_UNITS = {"d": 1, "wk": 7}


class Replacement(ContentModel):
    cvx: str
    display: str
    group: str


class Ambiguous(ContentModel):
    """A vaccine group whose code does not say whether the vaccine is live."""

    group: str
    indicator: Indicator
    summary: str
    detail_text: str
    replace_label: str
    replacement: Replacement


class LiveVaccines(RuleContent):
    placeholders = frozenset({"vaccine", "cvx", "date", "days", "due", "interval"})

    live_group: str
    never_flagged_groups: list[str] = Field(default_factory=list)
    never_flagged_note: str
    interval_before_start: Quantity
    given_before_start_summary: str
    given_before_start_text: str
    given_on_therapy_summary: str
    given_on_therapy_text: str
    ordered_with_start_summary: str
    ordered_with_start_text: str
    ordered_on_therapy_summary: str
    ordered_on_therapy_text: str
    remove_label: str
    ambiguous: list[Ambiguous] = Field(default_factory=list)

    def check_against(self, facts_content) -> None:
        groups = facts_content.vaccines.groups
        for name in [self.live_group, *self.never_flagged_groups, *(a.group for a in self.ambiguous)]:
            if name not in groups:
                raise ValueError(f"vaccine group {name!r} is not in vaccines.toml")
        if self.interval_before_start.unit not in INTERVAL_UNITS:
            raise ValueError(f"interval_before_start: unit must be one of {sorted(INTERVAL_UNITS)}")
        for a in self.ambiguous:
            replacement = a.replacement
            if replacement.group not in groups:
                raise ValueError(f"replacement group {replacement.group!r} is not in vaccines.toml")
            valueset = facts_content.valuesets[groups[replacement.group].valueset]
            if not valueset.matches(codes.CVX, replacement.cvx):
                raise ValueError(f"CVX {replacement.cvx} is not in vaccine group {replacement.group!r}")
        short = _fields(self, "X", "999", "2026-01-01", days=99, due="2026-01-01")
        templates = [self.given_before_start_summary, self.given_on_therapy_summary, self.ordered_with_start_summary,
                     self.ordered_on_therapy_summary, *(a.summary for a in self.ambiguous)]  # fmt: skip
        for template in templates:
            if len(template.format(**short)) > SUMMARY_MAX - 20:
                raise ValueError(f"summary {template!r} leaves under 20 characters for the vaccine's name")


@rule("live_vaccines", LiveVaccines)
def live_vaccines(facts: PatientFacts, content: LiveVaccines) -> list[Card]:
    starting = "baricitinib-ordered" in facts.situations
    cards: list[Card] = []
    if facts.is_order_hook:
        for order in facts.vaccine_orders:
            if order.groups & set(content.never_flagged_groups):
                continue
            if content.live_group in order.groups:
                cards.append(_ordered(facts, content, order, starting))
                continue
            for ambiguous in content.ambiguous:
                if ambiguous.group in order.groups:
                    cards.append(_ambiguous(facts, content, ambiguous, order))
                    break
    if (starting or facts.hook == "patient-view") and "immunizations" not in facts.unavailable:
        cards += [_given(facts, content, dose, starting) for dose in _recent_live_doses(facts, content)]
    return cards


def _interval_days(content: LiveVaccines) -> int:
    q = content.interval_before_start
    return round(q.value * INTERVAL_UNITS[q.unit])


def _fields(content: LiveVaccines, vaccine: str, cvx: str, day: str, days: int = 0, due: str = "") -> dict[str, str]:
    q = content.interval_before_start
    interval = f"{q.value:g} {'weeks' if q.unit == 'wk' else 'days'}"
    return {"vaccine": vaccine, "cvx": cvx, "date": day, "days": str(days), "due": due, "interval": interval}


def _recent_live_doses(facts: PatientFacts, content: LiveVaccines) -> list[VaccineDose]:
    """Live doses given less than the interval before today (a dose dated after today counts too)."""
    window = _interval_days(content)
    return [
        d
        for d in facts.vaccine_doses
        if content.live_group in d.groups
        and not d.groups & set(content.never_flagged_groups)
        and (facts.as_of - d.day).days < window
    ]


def _summary(template: str, fields: dict[str, str]) -> str:
    """The summary with the vaccine's name shortened, if need be, to keep it within the spec's limit."""
    text = template.format(**fields)
    excess = len(text) - SUMMARY_MAX
    if excess > 0:
        name = fields["vaccine"]
        fields = fields | {"vaccine": name[: max(len(name) - excess - 3, 1)].rstrip() + "..."}
        text = template.format(**fields)
    return text


def _ordered(facts: PatientFacts, content: LiveVaccines, order: VaccineOrder, starting: bool) -> Card:
    fields = _fields(content, order.display, order.cvx, facts.as_of.isoformat())
    summary, text = (
        (content.ordered_with_start_summary, content.ordered_with_start_text)
        if starting
        else (content.ordered_on_therapy_summary, content.ordered_on_therapy_text)
    )
    detail = f"**{order.display}** (CVX {order.cvx}, {order.resource}) is a live vaccine.\n\n" + text.format(**fields)
    action = orders.remove_order(order.resource, order.display)
    suggestions = [Suggestion(label=content.remove_label, is_recommended=True, actions=[action])] if action else []
    return card(
        content,
        summary=_summary(summary, fields),
        detail=detail,
        suggestions=suggestions,
        selection_behavior="at-most-one",
    )


def _ambiguous(facts: PatientFacts, content: LiveVaccines, ambiguous: Ambiguous, order: VaccineOrder) -> Card:
    fields = _fields(content, order.display, order.cvx, facts.as_of.isoformat())
    detail = f"**{order.display}** (CVX {order.cvx}, {order.resource}).\n\n" + ambiguous.detail_text.format(**fields)
    actions = [a for a in (orders.remove_order(order.resource, order.display),) if a]
    replacement = ambiguous.replacement
    reason = f"replaces {order.display} (CVX {order.cvx}), whose type is not specified"
    actions.append(orders.order_vaccine(facts.patient_id, replacement.cvx, replacement.display, reason))
    return card(
        content,
        summary=_summary(ambiguous.summary, fields),
        detail=detail,
        indicator=ambiguous.indicator,
        suggestions=[Suggestion(label=ambiguous.replace_label, actions=actions)],
        selection_behavior="at-most-one",
    )


def _given(facts: PatientFacts, content: LiveVaccines, dose: VaccineDose, starting: bool) -> Card:
    days = (facts.as_of - dose.day).days
    due = dose.day + timedelta(days=_interval_days(content))
    fields = _fields(content, dose.display, dose.cvx, dose.day.isoformat(), days, due.isoformat())
    summary, text = (
        (content.given_before_start_summary, content.given_before_start_text)
        if starting
        else (content.given_on_therapy_summary, content.given_on_therapy_text)
    )
    when = f"{days} days ago" if days >= 0 else "a date after today"
    detail = (
        f"**{dose.display}** (CVX {dose.cvx}) given on {dose.day.isoformat()}, {when} ({dose.resource}), "
        f"is a live vaccine.\n\n{text.format(**fields)}"
    )
    return card(content, summary=_summary(summary, fields), detail=detail)
