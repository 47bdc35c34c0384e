"""Vaccination reminder: non-live vaccines not documented before starting, or while on, baricitinib.

Influenza this season, COVID-19 this season (a discussion, not an order: ACIP 2025-09 asks for shared
clinical decision-making), pneumococcal (PCV20 or PCV21, or PCV15 then PPSV23) and recombinant zoster
(2 doses, a dose < 4 weeks after the previous one not counting). When the immunization history could
not be had, the rule says nothing: a vaccine it cannot see is not a missing vaccine (the data-quality
card names the gap).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import Field

from .. import codes, orders
from ..cards import SUMMARY_MAX, Card, Suggestion
from ..content import ContentModel, Quantity, RuleContent
from ..facts import PatientFacts, VaccineDose
from . import card, rule

INTERVAL_UNITS = {"d": 1, "wk": 7}
Groups = frozenset[str]


class VaccineChoice(ContentModel):
    """The vaccine a suggestion orders: a CVX code of the group it stands for."""

    cvx: str
    display: str


class Seasonal(ContentModel):
    """A vaccine due once a season; a dose on or after the season's first day counts."""

    group: str
    name: str
    season_start_month: int = Field(ge=1, le=12)
    missing_text: str
    order: VaccineChoice | None = None
    older_adult_order: VaccineChoice | None = None
    older_adult_from_age: Quantity | None = None
    no_order_text: str | None = None


class Pneumococcal(ContentModel):
    name: str
    complete_group: str
    pcv15_group: str
    ppsv23_group: str
    min_age: Quantity
    ppsv23_after_pcv15: Quantity
    order: VaccineChoice
    ppsv23_order: VaccineChoice
    none_text: str
    ppsv23_due_text: str
    ppsv23_not_yet_text: str
    ppsv23_only_text: str
    out_of_order_text: str


class Zoster(ContentModel):
    name: str
    group: str
    doses: int = Field(ge=1)
    min_age: Quantity
    min_interval: Quantity
    order: VaccineChoice
    none_text: str
    next_dose_text: str
    not_yet_text: str
    too_soon_text: str


class VaccinationReminders(RuleContent):
    placeholders = frozenset({"missing", "season_start", "date", "due", "days", "count", "doses", "interval"})

    summary: str
    order_intro_text: str
    patient_view_intro_text: str
    basis_text: str
    age_unknown_text: str
    order_label: str
    influenza: Seasonal
    covid19: Seasonal
    pneumococcal: Pneumococcal
    zoster: Zoster

    def check_against(self, facts_content) -> None:
        groups = facts_content.vaccines.groups

        def need(group: str, choice: VaccineChoice | None = None) -> None:
            if group not in groups:
                raise ValueError(f"vaccine group {group!r} is not in vaccines.toml")
            valueset = facts_content.valuesets[groups[group].valueset]
            if choice is not None and not valueset.matches(codes.CVX, choice.cvx):
                raise ValueError(f"CVX {choice.cvx} ({choice.display}) is not in vaccine group {group!r}")

        for seasonal in (self.influenza, self.covid19):
            need(seasonal.group, seasonal.order)
            need(seasonal.group, seasonal.older_adult_order)
            if seasonal.order is None and not seasonal.no_order_text:
                raise ValueError(f"{seasonal.name}: without an order, no_order_text must say why")
            if (seasonal.older_adult_order is None) != (seasonal.older_adult_from_age is None):
                raise ValueError(f"{seasonal.name}: older_adult_order and older_adult_from_age go together")
        pneumo = self.pneumococcal
        need(pneumo.complete_group, pneumo.order)
        need(pneumo.pcv15_group)
        need(pneumo.ppsv23_group, pneumo.ppsv23_order)
        need(self.zoster.group, self.zoster.order)
        for where, q in (
            ("influenza.older_adult_from_age", self.influenza.older_adult_from_age),
            ("covid19.older_adult_from_age", self.covid19.older_adult_from_age),
            ("pneumococcal.min_age", pneumo.min_age),
            ("zoster.min_age", self.zoster.min_age),
        ):
            if q is not None and q.unit != "a":
                raise ValueError(f"{where}: an age is in years, unit 'a'")
        intervals = (
            ("pneumococcal.ppsv23_after_pcv15", pneumo.ppsv23_after_pcv15),
            ("zoster.min_interval", self.zoster.min_interval),
        )
        for where, q in intervals:
            if q.unit not in INTERVAL_UNITS:
                raise ValueError(f"{where}: unit {q.unit!r} must be one of {sorted(INTERVAL_UNITS)}")
        every = (self.influenza, self.covid19, pneumo, self.zoster)
        longest = self.summary.format(missing=", ".join(v.name for v in every))
        if len(longest) > SUMMARY_MAX:
            raise ValueError(f"summary with every vaccine missing is {len(longest)} characters, over {SUMMARY_MAX}")


@dataclass(frozen=True)
class _Missing:
    name: str
    line: str
    order: VaccineChoice | None = None
    reason: str = ""


@rule("vaccination_reminders", VaccinationReminders)
def vaccination_reminders(facts: PatientFacts, content: VaccinationReminders) -> list[Card]:
    if "immunizations" in facts.unavailable:
        return []  # unknown is not missing; the data-quality card says the history could not be had
    ordered = frozenset().union(*(o.groups for o in facts.vaccine_orders))
    doses = facts.vaccine_doses
    missing = [
        m
        for m in (
            _seasonal(facts, content.influenza, doses, ordered),
            _seasonal(facts, content.covid19, doses, ordered),
            _pneumococcal(facts, content.pneumococcal, doses, ordered),
            _zoster(facts, content.zoster, doses, ordered),
        )
        if m is not None
    ]
    if not missing:
        return []
    new_start = facts.is_order_hook and not facts.on_baricitinib
    intro = content.order_intro_text if new_start else content.patient_view_intro_text
    lines = [f"- **{m.name}**: {m.line}" for m in missing]
    age_gated = (content.pneumococcal.name, content.zoster.name)
    if facts.age is None and any(m.name in age_gated for m in missing):
        lines.append(content.age_unknown_text)
    suggestions = [
        Suggestion(
            label=content.order_label.format(missing=m.order.display),
            actions=[orders.order_vaccine(facts.patient_id, m.order.cvx, m.order.display, m.reason)],
        )
        for m in missing
        if m.order is not None
    ]
    return [
        card(
            content,
            summary=content.summary.format(missing=", ".join(m.name for m in missing)),
            detail=intro + "\n\n" + "\n".join(lines),
            basis_note=content.basis_text,
            suggestions=suggestions,
            selection_behavior="any",
        )
    ]


def _in(group: str, doses: list[VaccineDose]) -> list[VaccineDose]:
    return [d for d in doses if group in d.groups]


def _dose(dose: VaccineDose) -> str:
    return f"{dose.display} (CVX {dose.cvx}) on {dose.day.isoformat()}, {dose.resource}"


def _days(q: Quantity) -> int:
    return round(q.value * INTERVAL_UNITS[q.unit])


def _interval(q: Quantity) -> str:
    return f"{q.value:g} {'weeks' if q.unit == 'wk' else 'days'}"


def _old_enough(facts: PatientFacts, min_age: Quantity) -> bool:
    """Unknown age counts as old enough: the card then says the age is unknown, rather than staying silent."""
    return facts.age is None or facts.age >= min_age.value


def season_start(as_of: date, month: int) -> date:
    """The first day of the season ``as_of`` falls in: the latest 1st of ``month`` on or before it."""
    return date(as_of.year if as_of.month >= month else as_of.year - 1, month, 1)


def _seasonal(facts: PatientFacts, spec: Seasonal, doses: list[VaccineDose], ordered: Groups) -> _Missing | None:
    if spec.group in ordered:
        return None
    start = season_start(facts.as_of, spec.season_start_month)
    mine = _in(spec.group, doses)
    if any(d.day >= start for d in mine):
        return None
    last = f" Last documented: {_dose(mine[-1])}." if mine else " No dose documented."
    line = spec.missing_text.format(season_start=start.isoformat()) + last
    choice = spec.order
    older = spec.older_adult_from_age
    if spec.older_adult_order and older and facts.age is not None and facts.age >= older.value:
        choice = spec.older_adult_order
    if choice is None:
        return _Missing(spec.name, f"{line} {spec.no_order_text}")
    return _Missing(spec.name, line, choice, f"{spec.name}: not documented since {start.isoformat()}")


def _pneumococcal(facts: PatientFacts, spec: Pneumococcal, doses: list[VaccineDose], ordered: Groups) -> _Missing | None:
    if not _old_enough(facts, spec.min_age) or spec.complete_group in ordered:
        return None
    if _in(spec.complete_group, doses):
        return None
    pcv15, ppsv23 = _in(spec.pcv15_group, doses), _in(spec.ppsv23_group, doses)
    if not pcv15 and not ppsv23:
        if spec.pcv15_group in ordered:
            return None
        return _Missing(spec.name, spec.none_text, spec.order, f"{spec.name}: no pneumococcal vaccine documented")
    if not pcv15:
        text = spec.ppsv23_only_text.format(date=ppsv23[-1].day.isoformat())
        return _Missing(spec.name, f"{text} Documented: {_dose(ppsv23[-1])}.")
    first = pcv15[0]
    if any(p.day > first.day for p in ppsv23):
        return None
    if ppsv23:
        text = spec.out_of_order_text.format(date=ppsv23[-1].day.isoformat())
        return _Missing(spec.name, f"{text} Documented: {_dose(ppsv23[-1])}; {_dose(first)}.")
    if spec.ppsv23_group in ordered:
        return None
    due = pcv15[-1].day + timedelta(days=_days(spec.ppsv23_after_pcv15))
    interval = _interval(spec.ppsv23_after_pcv15)
    fields = {"date": pcv15[-1].day.isoformat(), "due": due.isoformat(), "interval": interval}
    where = f" Documented: {_dose(pcv15[-1])}."
    if due > facts.as_of:
        return _Missing(spec.name, spec.ppsv23_not_yet_text.format(**fields) + where)
    line = spec.ppsv23_due_text.format(**fields) + where
    return _Missing(spec.name, line, spec.ppsv23_order, f"{spec.name}: PPSV23 due after PCV15")


def _zoster(facts: PatientFacts, spec: Zoster, doses: list[VaccineDose], ordered: Groups) -> _Missing | None:
    if not _old_enough(facts, spec.min_age) or spec.group in ordered:
        return None
    mine = _in(spec.group, doses)
    interval, interval_text = _days(spec.min_interval), _interval(spec.min_interval)
    days: list[date] = sorted({d.day for d in mine})  # two records of one day are one dose
    counted: list[date] = []
    notes: list[str] = []
    for i, day in enumerate(days):
        gap = (day - days[i - 1]).days if i else None
        if gap is not None and gap < interval:
            notes.append(spec.too_soon_text.format(date=day.isoformat(), days=gap, interval=interval_text))
        else:
            counted.append(day)
    if len(counted) >= spec.doses:
        return None
    if not days:
        return _Missing(spec.name, spec.none_text, spec.order, f"{spec.name}: no dose documented")
    due = days[-1] + timedelta(days=interval)
    fields = {"count": len(counted), "doses": spec.doses, "date": days[-1].isoformat(), "due": due.isoformat(),
              "interval": interval_text}  # fmt: skip
    documented = " Documented: " + "; ".join(_dose(d) for d in sorted(mine, key=lambda d: d.day)) + "."
    line = " ".join(notes + [spec.next_dose_text.format(**fields)])
    if due > facts.as_of:
        return _Missing(spec.name, f"{line} {spec.not_yet_text.format(**fields)}{documented}")
    reason = f"{spec.name}: {len(counted)} of {spec.doses} valid doses documented"
    return _Missing(spec.name, line + documented, spec.order, reason)
