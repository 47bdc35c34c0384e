"""Data quality: what the service could not read, had to ignore, or could not fetch, and which checks
therefore did not run. Missing data is never read as normal; this card is where that is said."""

from __future__ import annotations

from ..cards import Card
from ..content import RuleContent
from ..facts import PatientFacts
from . import card, rule


class DataQuality(RuleContent):
    placeholders = frozenset({"count"})

    summary: str
    intro_text: str


@rule("data_quality", DataQuality, runs_last=True)
def data_quality(facts: PatientFacts, content: DataQuality) -> list[Card]:
    lines = [f"- **Unavailable: {key}**: {why}" for key, why in sorted(facts.unavailable.items())]
    lines += [f"- **Not checked: {n.check}**: {n.reason}" for n in facts.checks_not_run]
    lines += [f"- {issue.what}: {issue.why}" for issue in facts.data_issues]
    if not lines:
        return []
    return [
        card(
            content,
            summary=content.summary.format(count=len(lines)),
            detail=content.intro_text + "\n\n" + "\n".join(lines),
            override_reasons=False,
        )
    ]
