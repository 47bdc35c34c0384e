"""Baseline labs: before a new start, the tests the label asks for before initiation (CBC with
differential, ALT/AST, renal function, hepatitis B and C, TB), each current within its look-back window.

A test counts as missing when its latest valid result is missing, out of date or unreadable. An
indeterminate screening result is not missing: the infection-hold card asks for it to be repeated or
reviewed. When the lab results could not be fetched at all, nothing is listed as missing: the data-quality
card says the check did not run.
Lipids are not asked for here: the label wants them about 12 weeks after the start (lipid-monitoring).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .. import codes, orders
from ..cards import SUMMARY_MAX, Card, Suggestion
from ..content import ContentModel, RuleContent
from ..facts import LabReading, PatientFacts
from . import card, check_groups, rule


class OrderCode(ContentModel):
    """A LOINC-coded test a suggestion orders (also used by the lipid and monitoring rules)."""

    system: str
    code: str
    display: str

    @model_validator(mode="after")
    def _well_formed_loinc(self) -> OrderCode:
        if self.system != codes.LOINC:
            raise ValueError(f"{self.code}: tests are ordered by LOINC code")
        problem = codes.malformed(self.system, self.code)
        if problem:
            raise ValueError(problem)
        return self


class BaselineTest(ContentModel):
    name: str  # short, for the summary
    labs: list[str] = Field(min_length=1)  # lab keys in labs.toml; a current result of any one will do
    order: OrderCode  # what the suggestion orders when the test is missing
    # A screening test is not repeated once it has been positive, or once these conditions are recorded
    # (a known latent TB is treated, not re-tested).
    not_after_positive: bool = False
    not_with_conditions: list[str] = Field(default_factory=list)

    def settled(self, facts: PatientFacts) -> bool:
        """Whether the test is no longer asked for: a positive result on record, or a condition that answers it."""
        positive = self.not_after_positive and any(facts.lab(k).positive_ever for k in self.labs)
        return positive or any(facts.has(group) for group in self.not_with_conditions)


class MissingWhy(ContentModel):
    """What the summary says of the tests it lists: none on record, out of date, unreadable, or a mix."""

    missing: str
    stale: str
    unreadable: str
    mixed: str


class BaselineLabs(RuleContent):
    placeholders = frozenset({"tests", "count", "why", "days", "window"})

    tests: list[BaselineTest] = Field(min_length=1)
    summary: str
    many_summary: str
    summary_lists_at_most: int = Field(gt=0)  # more missing tests than this: the summary gives their count
    why: MissingWhy
    intro_text: str
    none_on_record_text: str
    stale_text: str
    unreadable_text: str
    order_label: str
    order_reason: str

    def check_against(self, facts_content) -> None:
        for test in self.tests:
            for key in test.labs:
                if key not in facts_content.labs.labs:
                    raise ValueError(f"{test.name}: unknown lab {key!r}")
            in_valuesets = set().union(
                *(
                    facts_content.valuesets[facts_content.labs.labs[k].valueset].exact_codes()
                    for k in test.labs
                )
            )
            check_groups(facts_content, conditions=test.not_with_conditions)
            if test.not_after_positive and not all(facts_content.labs.labs[k].remember_positive for k in test.labs):
                raise ValueError(f"{test.name}: not_after_positive needs labs that remember a positive result")
            if (codes.LOINC, test.order.code) not in in_valuesets:
                raise ValueError(
                    f"{test.name}: order code {test.order.code} is not in the value set of {test.labs}"
                )


@rule("baseline_labs", BaselineLabs)
def baseline_labs(facts: PatientFacts, content: BaselineLabs) -> list[Card]:
    if facts.on_baricitinib or not facts.baricitinib_drafts:
        return []  # not a new start: the monitoring rules apply
    if any(facts.lab(key).status == "unavailable" for test in content.tests for key in test.labs):
        return []  # lab results could not be fetched: the data-quality card says the check did not run
    missing: list[tuple[BaselineTest, list[LabReading]]] = []
    for test in content.tests:
        readings = [facts.lab(key) for key in test.labs]
        if any(r.current is not None for r in readings) or test.settled(facts):
            continue
        # A result that is there but out of date or unreadable says more than "none on record" for another lab.
        shown = [r for r in readings if r.status != "missing"]
        missing.append((test, shown))
    if not missing:
        return []

    kinds = {_kind(shown) for _, shown in missing}
    why = getattr(content.why, kinds.pop()) if len(kinds) == 1 else content.why.mixed
    names = ", ".join(test.name for test, _ in missing)
    summary = content.summary.format(tests=names, why=why)
    if len(missing) > content.summary_lists_at_most or len(summary) > SUMMARY_MAX:
        summary = content.many_summary.format(count=len(missing), why=why)
    # Tests with nothing on record share one line; a result out of date or unreadable is shown with its date.
    none = [test.name for test, shown in missing if not shown]
    lines = [content.intro_text, ""]
    lines += [f"- **{content.none_on_record_text}**: {', '.join(none)}"] if none else []
    lines += [f"- **{test.name}**: " + "; ".join(_why(facts, content, r) for r in shown) for test, shown in missing if shown]
    actions = orders.order_tests(
        facts.patient_id, [(test.order.code, test.order.display) for test, _ in missing], content.order_reason
    )
    return [
        card(
            content,
            summary=summary,
            detail="\n".join(lines),
            suggestions=[Suggestion(label=content.order_label, is_recommended=True, actions=actions)],
            selection_behavior="at-most-one",
        ).listing(frozenset(key for test, _ in missing for key in test.labs))
    ]


def _kind(shown: list[LabReading]) -> str:
    """Why a test is missing, as the summary says it (a ``MissingWhy`` field)."""
    if not shown:
        return "missing"
    return "unreadable" if any(r.status == "unreadable" for r in shown) else "stale"


def _why(facts: PatientFacts, content: BaselineLabs, reading: LabReading) -> str:
    if reading.status == "stale" and reading.result is not None:
        days = (facts.as_of - reading.result.day).days
        window = reading.lookback_days if reading.lookback_days is not None else "?"
        return f"{reading.result.describe()}, {content.stale_text.format(days=days, window=window)}"
    return f"{content.unreadable_text}: {reading.problem}"
