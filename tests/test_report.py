from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from cds_service.feedback_store import FeedbackStore, TopicReport
from cds_service.report import render_report, report_command
from cds_service.settings import Settings
from tests import db_helpers
from tests.db_helpers import SERVICE_ID, accepted, feedback_request, overridden, shown_card

# The shared database fixtures; pytest finds fixtures among a module's attributes.
store_url = db_helpers.store_url
store = db_helpers.store

MARCH_FIRST, MARCH_LAST = date(2025, 3, 1), date(2025, 3, 31)
APRIL_FIRST = datetime(2025, 4, 1, tzinfo=UTC)


def at(month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def march(store: FeedbackStore) -> FeedbackStore:
    """A known month of cards and feedback, with events on both sides of each boundary."""
    infection_1 = shown_card("infection-risk", at(3, 3))
    infection_2 = shown_card("infection-risk", at(3, 10))
    infection_last_second = shown_card("infection-risk", at(3, 31, 23, 59, 59))
    infection_february = shown_card("infection-risk", at(2, 28, 23, 59))
    renal = shown_card("renal-dosing", at(3, 5))
    renal_april = shown_card("renal-dosing", APRIL_FIRST)
    pregnancy = shown_card("pregnancy", at(3, 20), indicator="critical")
    store.record_cards(
        SERVICE_ID,
        [infection_1, infection_2, infection_last_second, infection_february, renal, renal_april, pregnancy],
    )
    store.record_feedback(
        SERVICE_ID,
        feedback_request(
            overridden(infection_1.uuid, at(3, 3), code="not-relevant", display="Not relevant"),
            overridden(infection_1.uuid, at(3, 4)),
            overridden(infection_2.uuid, at(3, 10), code="not-relevant"),
            overridden(infection_2.uuid, at(3, 11), code="patient-declined"),
            accepted(infection_last_second.uuid, at(3, 31, 23, 59, 59), "order-screening"),
            overridden(infection_february.uuid, at(3, 1, 0, 0), code="already-screened"),
        ),
    )
    store.record_feedback(
        SERVICE_ID,
        feedback_request(
            overridden(renal.uuid, at(2, 27), code="not-relevant"),
            accepted(renal.uuid, at(3, 5)),
            overridden(renal.uuid, at(3, 6), comment="eGFR repeated, now normal"),
            accepted(renal_april.uuid, APRIL_FIRST),
            overridden("card-from-another-service", at(3, 15), code="duplicate-alert"),
        ),
    )
    return store


MARCH_FIGURES = [
    TopicReport(
        "infection-risk",
        shown=3,
        accepted=1,
        overridden=5,
        override_rate=5 / 6,
        override_reasons=[
            ("not-relevant", 2),
            ("already-screened", 1),
            ("no reason given", 1),
            ("patient-declined", 1),
        ],
    ),
    TopicReport("pregnancy", shown=1, accepted=0, overridden=0, override_rate=None, override_reasons=[]),
    TopicReport(
        "renal-dosing",
        shown=1,
        accepted=1,
        overridden=1,
        override_rate=0.5,
        override_reasons=[("no reason given", 1)],
    ),
    TopicReport(
        "unknown",
        shown=0,
        accepted=0,
        overridden=1,
        override_rate=1.0,
        override_reasons=[("duplicate-alert", 1)],
    ),
]


def test_report_counts_one_month(march: FeedbackStore) -> None:
    assert march.report(at(3, 1, 0), APRIL_FIRST) == MARCH_FIGURES


def test_report_without_bounds_counts_everything(march: FeedbackStore) -> None:
    rows = {row.topic: row for row in march.report()}

    assert (rows["infection-risk"].shown, rows["infection-risk"].overridden) == (4, 5)
    assert rows["renal-dosing"] == TopicReport(
        "renal-dosing",
        shown=2,
        accepted=2,
        overridden=2,
        override_rate=0.5,
        override_reasons=[("no reason given", 1), ("not-relevant", 1)],
    )


def test_report_command_includes_the_whole_to_day(march: FeedbackStore, store_url: str) -> None:
    settings = Settings(database_url=store_url)

    through_31 = json.loads(report_command(settings, MARCH_FIRST, MARCH_LAST, as_json=True))
    through_30 = json.loads(report_command(settings, MARCH_FIRST, date(2025, 3, 30), as_json=True))

    infection_31 = through_31["topics"][0]
    infection_30 = through_30["topics"][0]
    assert (infection_31["shown"], infection_31["accepted"]) == (3, 1)
    assert (infection_30["shown"], infection_30["accepted"]) == (2, 0)


def test_report_command_json(march: FeedbackStore, store_url: str) -> None:
    output = report_command(Settings(database_url=store_url), MARCH_FIRST, MARCH_LAST, as_json=True)

    report = json.loads(output)
    assert (report["from"], report["to"]) == ("2025-03-01", "2025-03-31")
    assert [t["topic"] for t in report["topics"]] == ["infection-risk", "pregnancy", "renal-dosing", "unknown"]
    assert report["topics"][2] == {
        "topic": "renal-dosing",
        "shown": 1,
        "accepted": 1,
        "overridden": 1,
        "overrideRate": 0.5,
        "overrideReasons": [{"reason": "no reason given", "count": 1}],
    }
    assert report["topics"][1]["overrideRate"] is None

def test_report_command_text(march: FeedbackStore, store_url: str) -> None:
    output = report_command(Settings(database_url=store_url), MARCH_FIRST, MARCH_LAST, as_json=False)

    assert output == render_report(MARCH_FIGURES, MARCH_FIRST, MARCH_LAST)


def test_render_report_lines_up_columns_and_keeps_the_top_three_reasons() -> None:
    assert render_report(MARCH_FIGURES, MARCH_FIRST, MARCH_LAST) == (
        "Card feedback from 2025-03-01 to 2025-03-31 (UTC, inclusive)\n"
        "\n"
        "Topic           Shown  Accepted  Overridden  Override rate  Top override reasons\n"
        "infection-risk      3         1           5          83.3%  not-relevant (2), already-screened (1),"
        " no reason given (1)\n"
        "pregnancy           1         0           0            n/a\n"
        "renal-dosing        1         1           1          50.0%  no reason given (1)\n"
        "unknown             0         0           1         100.0%  duplicate-alert (1)\n"
    )


def test_render_report_says_when_there_is_nothing() -> None:
    assert render_report([], None, MARCH_LAST) == (
        "Card feedback up to 2025-03-31 (UTC, inclusive)\nNo cards shown and no feedback in this period.\n"
    )
