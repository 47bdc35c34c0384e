"""Monitoring due: for a patient on baricitinib, CBC or ALT/AST overdue by the project's practice schedule
(weeks 4 and 12 after the start, then every 3 months). The label only says "according to routine patient
management", and the card says the schedule is practice.

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
from .baseline_labs import OrderCode


class MonitoredTest(ContentModel):
    name: str
    labs: list[str] = Field(min_length=1)  # every one of these must be covered
    order: OrderCode


class MonitoringDue(RuleContent):
    placeholders = frozenset({"tests", "start", "point", "due", "schedule"})

    first_checks: list[Quantity] = Field(min_length=1)
    then_every: Quantity
    early_allowance: Quantity
    overdue_after: Quantity
    tests: list[MonitoredTest] = Field(min_length=1)
    summary: str
    schedule_text: str
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
        for test in self.tests:
            for key in test.labs:
                if key not in facts_content.labs.labs:
                    raise ValueError(f"{test.name}: unknown lab {key!r}")

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
    if any(facts.lab(key).status == "unavailable" for test in content.tests for key in test.labs):
        return []  # lab results could not be fetched: the data-quality card says so
    points = content.time_points(start, facts.as_of - timedelta(days=content.overdue_after.value))
    if not points:
        return []  # the first check is not yet overdue
    point = points[-1]
    covered_from = point - timedelta(days=content.early_allowance.value)
    overdue: list[tuple[MonitoredTest, list[str]]] = []
    for test in content.tests:
        why = [_why(content, r) for key in test.labs if not _covered(r := facts.lab(key), covered_from)]
        if why:
            overdue.append((test, why))
    if not overdue:
        return []

    names = ", ".join(t.name for t, _ in overdue)
    fields = {"start": start.isoformat(), "point": point.isoformat(), "due": covered_from.isoformat(),
              "schedule": content.schedule()}  # fmt: skip
    lines = [content.schedule_text.format(**fields), ""]
    lines += [f"- **{test.name}**: " + "; ".join(why) for test, why in overdue]
    actions = orders.order_tests(facts.patient_id, [(t.order.code, t.order.display) for t, _ in overdue],
                                 content.order_reason)  # fmt: skip
    return [
        card(
            content,
            summary=content.summary.format(tests=names, **fields),
            detail="\n".join(lines),
            suggestions=[Suggestion(label=content.order_label, is_recommended=True, actions=actions)],
            selection_behavior="at-most-one",
        )
    ]


def _covered(reading: LabReading, covered_from: date) -> bool:
    return (
        reading.result is not None
        and reading.status in ("current", "stale")
        and reading.result.day >= covered_from
    )


def _why(content: MonitoringDue, reading: LabReading) -> str:
    if reading.result is not None:
        return f"last {reading.result.describe()}"
    if reading.status == "unreadable":
        return f"{content.unreadable_text}: {reading.problem}"
    return reading.describe()  # no result on record


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
