"""Monitoring due: for a patient on baricitinib, CBC or ALT/AST overdue by the project's practice schedule
(weeks 4 and 12 after the start, then every 3 months), and the periodic TB test (the label asks for latent-TB
testing during therapy; yearly is practice) unless TB is already known. The label only says "according to
routine patient management", and the card says the schedule is practice. It is the one card of due monitoring
on a chart open, so it says per test only when it was last done.

The latest scheduled time point that is more than the grace period in the past is the one that must be
covered: a test is overdue when its latest valid result is older than that time point (less a few days
allowed early), or is missing or unreadable. Without lab results, or without a start date, nothing is said.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from pydantic import Field

from .. import orders
from ..cards import Card, Suggestion
from ..content import ContentModel, Quantity, RuleContent
from ..facts import LabReading, PatientFacts
from . import card, rule
from .baseline_labs import BaselineTest, OrderCode


class MonitoredTest(ContentModel):
    name: str
    labs: list[str] = Field(min_length=1)  # every one of these must be covered
    any_of: bool = False  # ...or any one of them will do (a creatinine or the lab's own eGFR)
    order: OrderCode


class PeriodicTest(BaselineTest):
    """A test repeated at its own interval from its last result (from the start when there is none)."""

    every: Quantity
    why_text: str


class MonitoringDue(RuleContent):
    placeholders = frozenset({"tests", "start", "point", "due", "schedule", "date"})

    first_checks: list[Quantity] = Field(min_length=1)
    then_every: Quantity
    early_allowance: Quantity
    overdue_after: Quantity
    tests: list[MonitoredTest] = Field(min_length=1)
    periodic: list[PeriodicTest] = Field(default_factory=list)
    summary: str
    schedule_text: str
    last_text: str
    none_text: str
    unreadable_text: str
    order_label: str
    order_reason: str

    def check_against(self, facts_content) -> None:
        if any(q.unit != "wk" for q in self.first_checks):
            raise ValueError("first_checks: unit must be 'wk'")
        if self.then_every.unit != "mo" or self.then_every.value != int(self.then_every.value):
            raise ValueError("then_every: must be a whole number of months ('mo')")
        for name in ("early_allowance", "overdue_after"):
            if getattr(self, name).unit != "d":
                raise ValueError(f"{name}: unit must be 'd'")
        for test in [*self.tests, *self.periodic]:
            for key in test.labs:
                if key not in facts_content.labs.labs:
                    raise ValueError(f"{test.name}: unknown lab {key!r}")
        if any(t.every.unit != "mo" or t.every.value != int(t.every.value) for t in self.periodic):
            raise ValueError("periodic: every must be a whole number of months ('mo')")

    def schedule(self) -> str:
        """The schedule in words, e.g. "weeks 4 and 12 after the start, then every 3 months"."""
        weeks = [f"{q.value:g}" for q in self.first_checks]
        listed = weeks[0] if len(weeks) == 1 else f"{', '.join(weeks[:-1])} and {weeks[-1]}"
        plural = "s" if len(weeks) > 1 else ""
        return f"week{plural} {listed} after the start, then every {self.then_every.value:g} months"

    def time_points(self, start: date, until: date) -> list[date]:
        """Scheduled dates from ``start`` up to ``until``: the first checks, then every ``then_every``."""
        points = [start + timedelta(weeks=q.value) for q in self.first_checks]
        last, step = points[-1], int(self.then_every.value)
        n = 1
        while (nxt := _add_months(last, step * n)) <= until:
            points.append(nxt)
            n += 1
        return [p for p in points if p <= until]


@rule("monitoring_due", MonitoringDue)
def monitoring_due(facts: PatientFacts, content: MonitoringDue) -> list[Card]:
    start = facts.therapy_start
    if start is None:
        return []  # no start date to count from
    tests = [*content.tests, *content.periodic]
    if any(facts.lab(key).status == "unavailable" for test in tests for key in test.labs):
        return []  # lab results could not be fetched: the data-quality card says so
    overdue_before = facts.as_of - timedelta(days=content.overdue_after.value)
    overdue: list[tuple[MonitoredTest | PeriodicTest, date, list[str]]] = []
    points = content.time_points(start, overdue_before)
    if points:
        covered_from = points[-1] - timedelta(days=content.early_allowance.value)
        for test in content.tests:
            uncovered = [r for key in test.labs if not _covered(r := facts.lab(key), covered_from)]
            if uncovered and not (test.any_of and len(uncovered) < len(test.labs)):
                overdue.append((test, points[-1], [_why(content, uncovered)]))
    for periodic in content.periodic:
        due = _periodic_due(facts, periodic, start)
        if due is not None and due <= overdue_before:
            why = [_why(content, [facts.lab(key) for key in periodic.labs]), periodic.why_text]
            overdue.append((periodic, due, why))
    if not overdue:
        return []

    point = min(due for _, due, _ in overdue)
    names = ", ".join(t.name for t, _, _ in overdue)
    fields = {"start": start.isoformat(), "point": point.isoformat(),
              "due": (point - timedelta(days=content.early_allowance.value)).isoformat(),
              "schedule": content.schedule()}  # fmt: skip
    lines = [content.schedule_text.format(**fields), ""]
    lines += [f"- **{test.name}**: " + "; ".join(why) for test, _, why in overdue]
    actions = orders.order_tests(facts.patient_id, [(t.order.code, t.order.display) for t, _, _ in overdue],
                                 content.order_reason)  # fmt: skip
    return [
        card(
            content,
            summary=content.summary.format(tests=names, **fields),
            detail="\n".join(lines),
            suggestions=[Suggestion(label=content.order_label, is_recommended=True, actions=actions)],
            selection_behavior="at-most-one",
        ).listing(frozenset(key for test, _, _ in overdue for key in test.labs))
    ]


def _periodic_due(facts: PatientFacts, test: PeriodicTest, start: date) -> date | None:
    """When the test is next due: its interval after the newest result, else the start; None once settled."""
    if test.settled(facts):
        return None
    days = [r.result.day for r in (facts.lab(k) for k in test.labs) if r.result is not None]
    return _add_months(max(days), int(test.every.value)) if days else start


def _covered(reading: LabReading, covered_from: date) -> bool:
    return (
        reading.result is not None
        and reading.status in ("current", "stale")
        and reading.result.day >= covered_from
    )


def _why(content: MonitoringDue, readings: list[LabReading]) -> str:
    """When each lab was last done (the date is what makes it due; a value is the lab-hold card's), said once
    when the labs of a test agree."""

    def said(reading: LabReading) -> str:
        if reading.result is not None:
            return content.last_text.format(date=reading.result.day.isoformat())
        if reading.status == "unreadable":
            return f"{content.unreadable_text}: {reading.problem}"
        return content.none_text

    each = [said(r) for r in readings]
    if len(set(each)) == 1:
        return each[0]
    return "; ".join(f"{r.label} {text}" for r, text in zip(readings, each, strict=True))


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
