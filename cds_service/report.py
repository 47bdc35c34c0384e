"""The alert-fatigue report: which card topics clinicians override, how often, and why.

Behind ``cds-service report --from YYYY-MM-DD --to YYYY-MM-DD [--json]``. Days are UTC days
and ``--to`` is inclusive, as a reader of "from 1 to 31 March" expects.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from cds_service.feedback_store import FeedbackStore, TopicReport
from cds_service.settings import Settings

TOP_REASONS = 3

_HEADINGS = ("Topic", "Shown", "Accepted", "Overridden", "Override rate", "Top override reasons")


def render_report(rows: list[TopicReport], start: date | None, end: date | None) -> str:
    """A fixed-width table for a terminal, one line per topic; ``end`` is the last day included."""
    title = f"Card feedback {_describe_period(start, end)}"
    if not rows:
        return f"{title}\nNo cards shown and no feedback in this period.\n"
    table = [_HEADINGS] + [
        (
            row.topic,
            str(row.shown),
            str(row.accepted),
            str(row.overridden),
            "n/a" if row.override_rate is None else f"{row.override_rate:.1%}",
            ", ".join(f"{reason} ({count})" for reason, count in row.override_reasons[:TOP_REASONS]),
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in table) for column in range(len(_HEADINGS))]
    lines = [title, ""]
    for line in table:
        topic, *figures, reasons = line
        cells = [topic.ljust(widths[0])]
        cells += [figure.rjust(width) for figure, width in zip(figures, widths[1:-1], strict=True)]
        cells.append(reasons)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def report_command(settings: Settings, start: date | None, end: date | None, as_json: bool) -> str:
    """Open the store, read the figures from ``start`` through ``end`` (inclusive), and format them."""
    store = FeedbackStore(settings.database_url)
    try:
        rows = store.report(_start_of(start), _start_of(end + timedelta(days=1)) if end else None)
    finally:
        store.dispose()
    if as_json:
        return json.dumps(_as_json(rows, start, end), indent=2) + "\n"
    return render_report(rows, start, end)


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), tzinfo=UTC) if day else None


def _describe_period(start: date | None, end: date | None) -> str:
    if start and end:
        return f"from {start.isoformat()} to {end.isoformat()} (UTC, inclusive)"
    if start:
        return f"from {start.isoformat()} (UTC) onwards"
    if end:
        return f"up to {end.isoformat()} (UTC, inclusive)"
    return "for all time"


def _as_json(rows: list[TopicReport], start: date | None, end: date | None) -> dict[str, object]:
    return {
        "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None,
        "topics": [
            {
                "topic": row.topic,
                "shown": row.shown,
                "accepted": row.accepted,
                "overridden": row.overridden,
                "overrideRate": row.override_rate,
                "overrideReasons": [
                    {"reason": reason, "count": count} for reason, count in row.override_reasons
                ],
            }
            for row in rows
        ],
    }
