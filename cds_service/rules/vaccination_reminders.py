"""Vaccination reminder: non-live vaccines not documented before starting, or while on, baricitinib.

Influenza this season, COVID-19 this season (a discussion, not an order: ACIP 2025-09 asks for shared
clinical decision-making), pneumococcal (PCV20 or PCV21; PCV15 then PPSV23; after an earlier PCV13 or
PPSV23, a PCV20 or PCV21 a year later), recombinant zoster (2 doses, a dose < 4 weeks after the previous one
not counting), and by age band hepatitis B, HPV and RSV, one short line each; a list longer than the card
can hold ends with "and N more" (the summary names them all). The season's guidance is content with its
season: when it is older than the current season, the card says so once rather than quote last season as
current. When
the immunization history could not be had, the rule says nothing: a vaccine it cannot see is not a missing
vaccine (the data-quality card names the gap).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import Field

from .. import codes, orders
from ..cards import SUMMARY_MAX, Card, Suggestion
from ..content import ContentModel, Quantity, RuleContent
from ..facts import PatientFacts, VaccineDose
from . import card, fit_lines, fit_list, rule

INTERVAL_UNITS = {"d": 1, "wk": 7, "a": 365}
INTERVAL_WORDS = {"d": "days", "wk": "weeks", "a": "years"}
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
    guidance_season: str = Field(pattern=r"^\d{4}-\d{2}$")  # the season the texts' guidance is for
    stale_season_text: str  # said when the current season is later than guidance_season
    missing_text: str
    order: VaccineChoice | None = None
    older_adult_order: VaccineChoice | None = None
    older_adult_from_age: Quantity | None = None
    no_order_text: str | None = None


class Pneumococcal(ContentModel):
    name: str
    complete_group: str
    pcv15_group: str
    pcv13_group: str
    ppsv23_group: str
    min_age: Quantity
    ppsv23_after_pcv15: Quantity
    pcv_after_earlier: Quantity  # a PCV20 or PCV21 after an earlier PCV13 or PPSV23
    order: VaccineChoice
    ppsv23_order: VaccineChoice
    none_text: str
    ppsv23_due_text: str
    ppsv23_not_yet_text: str
    earlier_due_text: str
    earlier_not_yet_text: str
    pcv13_and_ppsv23_text: str
    out_of_order_text: str


class AgeBand(ContentModel):
    """Ages from ``from_age`` up to (not including) ``below_age``; what to say, and what to order if anything."""

    from_age: Quantity
    below_age: Quantity | None = None
    text: str
    order: VaccineChoice | None = None


class CompleteWith(ContentModel):
    group: str
    doses: int = Field(ge=1)


class Series(ContentModel):
    """A vaccine recommended by age band, done once a series is complete (or once started, ``doses`` 1)."""

    name: str
    group: str  # any dose of it starts the series
    complete: list[CompleteWith] = Field(min_length=1)  # any one of these completes it
    bands: list[AgeBand] = Field(min_length=1)
    not_after_positive_labs: list[str] = Field(default_factory=list)  # e.g. past hepatitis B infection
    partial_text: str


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
    placeholders = frozenset({"missing", "season_start", "date", "due", "days", "count", "doses", "interval",
                              "guidance", "season"})  # fmt: skip

    summary: str
    order_intro_text: str
    patient_view_intro_text: str
    basis_text: str
    age_unknown_text: str
    order_label: str
    list_words_at_most: int = Field(gt=0)  # the vaccine list's share of the card's words
    influenza: Seasonal
    covid19: Seasonal
    pneumococcal: Pneumococcal
    zoster: Zoster
    series: list[Series] = Field(default_factory=list)

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
        need(pneumo.pcv13_group)
        need(pneumo.ppsv23_group, pneumo.ppsv23_order)
        need(self.zoster.group, self.zoster.order)
        for series in self.series:
            need(series.group)
            for complete in series.complete:
                need(complete.group)
            for band in series.bands:
                need(series.group, band.order)
                ages = [band.from_age] + ([band.below_age] if band.below_age else [])
                if any(q.unit != "a" for q in ages):
                    raise ValueError(f"{series.name}: an age is in years, unit 'a'")
            for lab in series.not_after_positive_labs:
                if lab not in facts_content.labs.labs or not facts_content.labs.labs[lab].remember_positive:
                    raise ValueError(f"{series.name}: {lab!r} must be a lab that remembers a positive result")
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
            ("pneumococcal.pcv_after_earlier", pneumo.pcv_after_earlier),
            ("zoster.min_interval", self.zoster.min_interval),
        )
        for where, q in intervals:
            if q.unit not in INTERVAL_UNITS:
                raise ValueError(f"{where}: unit {q.unit!r} must be one of {sorted(INTERVAL_UNITS)}")
        if len(self.summary.format(missing=max((self.influenza.name, self.covid19.name), key=len))) > SUMMARY_MAX:
            raise ValueError(f"summary with one vaccine missing is over {SUMMARY_MAX} characters")


@dataclass(frozen=True)
class _Missing:
    name: str
    line: str
    order: VaccineChoice | None = None
    reason: str = ""
    stale: str = ""  # the season's guidance is older than the season: said once for the card


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
            *(_series(facts, series, doses, ordered) for series in content.series),
        )
        if m is not None
    ]
    if not missing:
        return []
    new_start = facts.is_order_hook and not facts.on_baricitinib
    intro = content.order_intro_text if new_start else content.patient_view_intro_text
    notes = list(dict.fromkeys(m.stale for m in missing if m.stale))
    age_gated = (content.pneumococcal.name, content.zoster.name)
    if facts.age is None and any(m.name in age_gated for m in missing):
        notes.append(content.age_unknown_text)
    items = [f"- **{m.name}**: {m.line}" for m in missing]
    lines = fit_lines(content, items, content.list_words_at_most, around=notes) + notes
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
            summary=fit_list(content.summary, "missing", [m.name for m in missing]),
            detail=intro + "\n\n" + "\n".join(lines),
            basis_line=content.basis_text,
            suggestions=suggestions,
            selection_behavior="any",
        )
    ]


def _in(group: str, doses: list[VaccineDose]) -> list[VaccineDose]:
    return [d for d in doses if group in d.groups]


def _last(doses: list[VaccineDose]) -> str:
    return f" Last {max(d.day for d in doses).isoformat()}." if doses else ""


def _days(q: Quantity) -> int:
    return round(q.value * INTERVAL_UNITS[q.unit])


def _interval(q: Quantity) -> str:
    words = INTERVAL_WORDS[q.unit]
    return f"{q.value:g} {words[:-1] if q.value == 1 else words}"


def _old_enough(facts: PatientFacts, min_age: Quantity) -> bool:
    """Unknown age counts as old enough: the card then says the age is unknown, rather than staying silent."""
    return facts.age is None or facts.age >= min_age.value


def season_start(as_of: date, month: int) -> date:
    """The first day of the season ``as_of`` falls in: the latest 1st of ``month`` on or before it."""
    return date(as_of.year if as_of.month >= month else as_of.year - 1, month, 1)


def season_label(start: date) -> str:
    """A season as CDC writes it, "2026-27", from its first day."""
    return f"{start.year}-{(start.year + 1) % 100:02d}"


def _seasonal(facts: PatientFacts, spec: Seasonal, doses: list[VaccineDose], ordered: Groups) -> _Missing | None:
    if spec.group in ordered:
        return None
    start = season_start(facts.as_of, spec.season_start_month)
    if any(d.day >= start for d in _in(spec.group, doses)):
        return None
    line = spec.missing_text.format(season_start=start.isoformat())
    stale = ""
    if season_label(start) != spec.guidance_season:
        stale = spec.stale_season_text.format(guidance=spec.guidance_season, season=season_label(start))
    choice = spec.order
    older = spec.older_adult_from_age
    if spec.older_adult_order and older and facts.age is not None and facts.age >= older.value:
        choice = spec.older_adult_order
    if choice is None:
        return _Missing(spec.name, f"{line} {spec.no_order_text}", stale=stale)
    return _Missing(spec.name, line, choice, f"{spec.name}: not documented since {start.isoformat()}", stale)


def _pneumococcal(facts: PatientFacts, spec: Pneumococcal, doses: list[VaccineDose], ordered: Groups) -> _Missing | None:
    if not _old_enough(facts, spec.min_age) or spec.complete_group in ordered:
        return None
    if _in(spec.complete_group, doses):
        return None
    pcv15, pcv13, ppsv23 = (_in(g, doses) for g in (spec.pcv15_group, spec.pcv13_group, spec.ppsv23_group))
    if pcv15:
        return _after_pcv15(facts, spec, pcv15, ppsv23, ordered)
    if not pcv13 and not ppsv23:
        return _Missing(spec.name, spec.none_text, spec.order, f"{spec.name}: no pneumococcal vaccine documented")
    if pcv13 and ppsv23:
        return _Missing(spec.name, spec.pcv13_and_ppsv23_text)
    earlier = (pcv13 or ppsv23)[-1]
    due = earlier.day + timedelta(days=_days(spec.pcv_after_earlier))
    fields = {"date": earlier.day.isoformat(), "due": due.isoformat(), "interval": _interval(spec.pcv_after_earlier),
              "count": "PCV13" if pcv13 else "PPSV23"}  # fmt: skip
    if due > facts.as_of:
        return _Missing(spec.name, spec.earlier_not_yet_text.format(**fields))
    reason = f"{spec.name}: PCV20 or PCV21 due after {fields['count']}"
    return _Missing(spec.name, spec.earlier_due_text.format(**fields), spec.order, reason)


def _after_pcv15(
    facts: PatientFacts, spec: Pneumococcal, pcv15: list[VaccineDose], ppsv23: list[VaccineDose], ordered: Groups
) -> _Missing | None:
    first = pcv15[0]
    if any(p.day > first.day for p in ppsv23):
        return None
    if ppsv23:
        return _Missing(spec.name, spec.out_of_order_text.format(date=ppsv23[-1].day.isoformat()))
    if spec.ppsv23_group in ordered:
        return None
    due = pcv15[-1].day + timedelta(days=_days(spec.ppsv23_after_pcv15))
    interval = _interval(spec.ppsv23_after_pcv15)
    fields = {"date": pcv15[-1].day.isoformat(), "due": due.isoformat(), "interval": interval}
    if due > facts.as_of:
        return _Missing(spec.name, spec.ppsv23_not_yet_text.format(**fields))
    line = spec.ppsv23_due_text.format(**fields)
    return _Missing(spec.name, line, spec.ppsv23_order, f"{spec.name}: PPSV23 due after PCV15")


def _series(facts: PatientFacts, spec: Series, doses: list[VaccineDose], ordered: Groups) -> _Missing | None:
    """A vaccine by age band: nothing when the age is unknown or outside every band, when it is ordered now,
    when a past infection makes it moot, or when the series is complete."""
    age = facts.age
    band = next((b for b in spec.bands if age is not None and b.from_age.value <= age
                 and (b.below_age is None or age < b.below_age.value)), None)  # fmt: skip
    if band is None or spec.group in ordered:
        return None
    if any(facts.lab(lab).positive_ever for lab in spec.not_after_positive_labs):
        return None
    mine = _in(spec.group, doses)
    for complete in spec.complete:
        if len({d.day for d in _in(complete.group, doses)}) >= complete.doses:
            return None
    if not mine:
        reason = f"{spec.name}: no dose documented"
        return _Missing(spec.name, band.text, band.order, reason)
    count = len({d.day for d in mine})
    return _Missing(spec.name, spec.partial_text.format(count=count) + _last(mine), band.order,
                    f"{spec.name}: {count} dose(s) documented, series not complete")  # fmt: skip


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
    line = " ".join(notes + [spec.next_dose_text.format(**fields)])
    if due > facts.as_of:
        return _Missing(spec.name, f"{line} {spec.not_yet_text.format(**fields)}")
    reason = f"{spec.name}: {len(counted)} of {spec.doses} valid doses documented"
    return _Missing(spec.name, line, spec.order, reason)
