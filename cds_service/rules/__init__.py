"""Step 5: the rules. Each is a small pure function from PatientFacts and its content entry to cards.

A rule that could not decide (the result it needs is missing, unreadable, or bounded by a comparator that
leaves its threshold open) returns a ``NotRun`` instead of a card; the data-quality card, which runs last,
says so, as a warning when it was a safety check.

A rule module registers itself with ``@rule("name", ContentModel)``; ``cards/rules/<name>.toml`` holds
its reviewed content, and ``content.load`` checks that every file has a rule and every rule a file.
Adding a rule touches ``cards/`` and one module here, nothing else.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .. import bundles, orders
from ..cards import EXTENSION_KEY, SUMMARY_MAX, Card, Coding, Link, Source, Suggestion, word_count
from ..content import Content, RuleContent
from ..facts import CoMedication, ConditionFact, NotRun, PatientFacts
from ..log_redaction import exception_frames

log = logging.getLogger(__name__)

RuleFunction = Callable[[PatientFacts, Any], list[Card | NotRun]]


@dataclass(frozen=True)
class Rule:
    name: str
    content_model: type[RuleContent]
    function: RuleFunction
    runs_last: bool = False


RULES: dict[str, Rule] = {}


def rule(name: str, content_model: type[RuleContent], *, runs_last: bool = False) -> Callable[[RuleFunction], RuleFunction]:
    def register(function: RuleFunction) -> RuleFunction:
        if name in RULES:
            raise RuntimeError(f"rule {name!r} is registered twice")
        RULES[name] = Rule(name, content_model, function, runs_last)
        return function

    return register


def content_models() -> dict[str, type[RuleContent]]:
    return {name: r.content_model for name, r in RULES.items()}


def card(
    entry: RuleContent,
    *,
    summary: str,
    detail: str,
    indicator: str | None = None,
    suggestions: list[Suggestion] | None = None,
    selection_behavior: str | None = None,
    basis_line: str | None = None,
    override_reasons: bool = True,
) -> Card:
    """A card in the one shape: the detail ends with a line saying its basis; the sources are the card's
    source (the first) and links (all of them), not text to read; the content version rides in the extension."""
    primary = entry.sources[0]
    return Card(
        summary=summary,
        detail=f"{detail}\n\n_{basis_line or entry.basis_line}_",
        indicator=indicator or entry.indicator,  # type: ignore[attr-defined]
        source=Source(
            label=primary.shown,
            url=primary.url,
            topic=Coding(code=entry.topic, system=entry.topic_system, display=entry.topic_display),
        ),
        suggestions=suggestions or None,
        selection_behavior=selection_behavior if suggestions else None,  # type: ignore[arg-type]
        override_reasons=[
            Coding(code=r.code, system=entry.override_reason_system, display=r.display) for r in entry.override_reasons
        ]
        if override_reasons and entry.override_reasons
        else None,
        links=[Link(label=(s.shown + (f", {s.section}" if s.section else ""))[:120], url=s.url) for s in entry.sources],
        extension={EXTENSION_KEY: {"contentVersion": entry.content_version}},
    )


def check_groups(facts_content: Any, conditions: Sequence[str] = (), medications: Sequence[str] = ()) -> None:
    """For a rule's ``check_against``: every condition and medication group it names exists."""
    for name in conditions:
        if name not in facts_content.conditions.groups:
            raise ValueError(f"condition group {name!r} is not in conditions.toml")
    for name in medications:
        if name not in facts_content.medications.groups:
            raise ValueError(f"medication group {name!r} is not in medications.toml")


def fit_list(template: str, field: str, items: list[str], **fields: str) -> str:
    """``template`` with as many of ``items`` as fit in a summary, then "and N more" (the detail has all)."""
    for shown in range(len(items), 0, -1):
        rest = len(items) - shown
        listed = ", ".join(items[:shown]) + (f" and {rest} more" if rest else "")
        summary = template.format(**{field: listed}, **fields)
        if len(summary) <= SUMMARY_MAX:
            return summary
    return template.format(**{field: f"{len(items)} items"}, **fields)[:SUMMARY_MAX]


def fit_lines(entry: RuleContent, lines: list[str], words_at_most: int, around: Sequence[str] = ()) -> list[str]:
    """As many of ``lines`` as fit, with the ``around`` text that shares the card with them, in ``words_at_most``
    words; then the shared "and {count} more" for the rest."""
    assert entry.words is not None  # filled in by content.load
    more_text = entry.words.more_text
    shown: list[str] = []
    for i, line in enumerate(lines):
        rest = len(lines) - i - 1
        more = [more_text.format(count=rest)] if rest else []
        if word_count("\n".join([*shown, line, *more, *around])) > words_at_most:
            return [*shown, more_text.format(count=len(lines) - i)]
        shown.append(line)
    return shown


def recorded(condition: ConditionFact) -> str:
    """A condition as the problem list has it, in few words: its name, code and the day it was recorded."""
    when = f", {condition.recorded.isoformat()}" if condition.recorded else ""
    return f"{condition.display} ({condition.code}{when})"


def with_records(entry: RuleContent, records: list[str], after: list[str], words_at_most: int | None = None) -> str:
    """A detail: what the chart shows that fired the card, under the shared header (cut with "and N more"
    to leave ``after`` room within ``words_at_most``, when given), then the ``after`` texts."""
    assert entry.words is not None  # filled in by content.load
    header = entry.words.recorded_header
    if words_at_most is not None:
        records = fit_lines(entry, records, words_at_most, [header, *after])
    section = [header + "\n" + "\n".join(records)] if records else []
    return "\n\n".join(section + after)


def medication_state(entry: RuleContent, medication: CoMedication) -> str:
    """Whether a medication is ordered in this call or already taken, in the shared words."""
    assert entry.words is not None  # filled in by content.load
    return entry.words.ordered_now if medication.is_draft else entry.words.active


def unique_conditions(conditions: list[ConditionFact]) -> list[ConditionFact]:
    """One per Condition resource (a code can be in two groups: an LN code is both SLE and lupus nephritis);
    Conditions without an id are told apart by their code."""
    seen: dict[str, ConditionFact] = {}
    for c in conditions:
        seen.setdefault(c.resource if "(no id)" not in c.resource else f"{c.resource} {c.code}", c)
    return list(seen.values())


def stop_baricitinib(facts: PatientFacts, *, remove_label: str, hold_label: str, reason: str) -> list[Suggestion]:
    """Order hooks: remove the baricitinib draft orders. Patient-view: put the active orders on hold."""
    if facts.is_order_hook:
        actions = [a for o in facts.baricitinib_drafts if (a := orders.remove_order(o.resource, o.name))]
        label = remove_label
    else:
        actions = [a for o in facts.baricitinib_active if (a := orders.hold_therapy(o, reason))]
        label = hold_label
    return [Suggestion(label=label, is_recommended=True, actions=actions)] if actions else []


def evaluate(facts: PatientFacts, content: Content, *, bundled: bool = True) -> list[Card]:
    """Run every rule whose situations apply, most urgent cards first, the data-quality card last.

    ``bundled``: the cards that bundles.toml holds become one card per bundle (what a clinician reads);
    without it, every rule's own cards (what a rule's tests look at)."""
    _import_rule_modules()
    situations = facts.situations
    # Without the medication list, "is the patient on baricitinib?" has no answer. That matters on
    # patient-view and for a vaccine order (the live-vaccine check); say so there rather than go quiet.
    undetermined = (
        "medications" in facts.unavailable
        and "baricitinib-ordered" not in situations
        and (facts.hook == "patient-view" or bool(facts.vaccine_orders))
    )
    cards: list[Card] = []
    not_run: list[NotRun] = []
    if undetermined:
        not_run.append(NotRun("Checks for a patient on baricitinib", "the medication list is unavailable"))
    last = [r for r in RULES.values() if r.runs_last]
    for item in [r for r in RULES.values() if not r.runs_last]:
        entry = content.rules[item.name]
        if situations & set(entry.runs_on):
            missing = sorted(key for key in facts.unavailable if key in entry.reads)
            if missing:
                not_run.append(NotRun(entry.title, f"needs {', '.join(missing)}, which could not be had"))
            _run(item, facts, entry, cards, not_run)
    planned = bundles.plan(situations, cards, content) if bundled else []
    not_run = bundles.fold(planned, not_run)
    for item in last:
        entry = content.rules[item.name]
        if situations & set(entry.runs_on) or undetermined:
            _run(item, replace(facts, checks_not_run=not_run), entry, cards, not_run)
    rank = {"critical": 0, "warning": 1, "info": 2}
    cards = bundles.apply(planned, cards, not_run, content)
    return sorted(cards, key=lambda c: (c.topic == "data-quality", rank[c.indicator]))


def _run(item: Rule, facts: PatientFacts, entry: RuleContent, cards: list[Card], not_run: list[NotRun]) -> None:
    """The rule's cards into ``cards``, the checks it could not run into ``not_run``; a rule that fails is
    one check not run, never a failed call."""
    try:
        for found in item.function(facts, entry):
            (not_run if isinstance(found, NotRun) else cards).append(found)  # type: ignore[arg-type]
    except Exception as exc:
        log.error("rule %s failed: %s", item.name, exception_frames(exc))
        not_run.append(NotRun(entry.title, "the check failed with an internal error"))


_imported = False


def _import_rule_modules() -> None:
    global _imported
    if not _imported:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _imported = True


def load_rules() -> dict[str, type[RuleContent]]:
    """Import every rule module and return their content models (for ``content.load``)."""
    _import_rule_modules()
    return content_models()
