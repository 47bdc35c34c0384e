"""Data quality: what the service could not read, had to ignore, or could not fetch, and which checks
therefore did not run. Missing data is never read as normal; this card is where that is said.

A safety check that could not run (a lab hold, the renal dose check) makes the card a warning whose
summary names it; otherwise the card is information.
"""

from __future__ import annotations

from ..cards import Card
from ..content import RuleContent
from ..facts import NotRun, PatientFacts
from . import card, fit_list, rule


class DataQuality(RuleContent):
    placeholders = frozenset({"count", "checks", "what"})

    summary: str
    safety_summary: str
    intro_text: str

    def indicators(self) -> set[str]:
        return {self.indicator, "warning"}  # a warning when a hold or renal check could not run


@rule("data_quality", DataQuality, runs_last=True)
def data_quality(facts: PatientFacts, content: DataQuality) -> list[Card | NotRun]:
    # A folded check is said on the card that orders the result it waits on.
    said_here = [n for n in facts.checks_not_run if not n.folded]
    safety = [n for n in said_here if n.safety]
    named_labs = {lab for n in facts.checks_not_run for lab in n.labs}
    unreadable = [
        r for key, r in sorted(facts.labs.items()) if r.status == "unreadable" and key not in named_labs
    ]
    lines = _not_checked(safety)
    lines += [f"- **Unavailable: {key}**: {why}" for key, why in sorted(facts.unavailable.items())]
    lines += _not_checked([n for n in said_here if not n.safety])
    lines += [f"- {r.label}: {r.problem}" for r in unreadable]
    lines += [f"- {issue.what}: {issue.why}" for issue in facts.data_issues]
    if not lines:
        return []
    if safety:
        checks = list(dict.fromkeys(n.check for n in safety))
        named = checks[0] if len(checks) == 1 else f"{', '.join(checks[:-1])} and {checks[-1]}"
        briefs = list(dict.fromkeys(n.brief or n.reason for n in safety))
        summary = fit_list(content.safety_summary, "what", briefs, checks=named)
    else:
        summary = content.summary.format(count=len(lines))
    return [
        card(
            content,
            summary=summary,
            detail=content.intro_text + "\n\n" + "\n".join(lines),
            indicator="warning" if safety else None,
            override_reasons=False,
        )
    ]


def _not_checked(not_run: list[NotRun]) -> list[str]:
    """One line per check that did not run, with every reason it did not (a check is named once)."""
    reasons: dict[str, list[str]] = {}
    for n in not_run:
        reasons.setdefault(n.check, [])
        if n.reason not in reasons[n.check]:
            reasons[n.check].append(n.reason)
    return [f"- **Not checked: {check}**: {'; '.join(why)}" for check, why in reasons.items()]
