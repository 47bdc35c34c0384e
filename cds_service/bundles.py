"""Step 6a, fewer cards: the cards a bundle holds become one card (``cards/bundles.toml``).

A new start gets one "Before starting baricitinib" card listing what is missing, a chart open of a patient
on therapy one card of what is due, instead of a card per rule. Each held card becomes one line, its summary
(and its detail too when the whole still keeps the card shape), with its own suggestion; the clinician may
accept any of them. The held topics are listed in the card's extension so that EHRs, the alert-fatigue report
and tests can still tell the items apart.

A safety check that could not run because a result is missing (the lab hold without an ANC, the renal dose
check without a creatinine) waits on the very result a held card orders: it is said on that card, next to the
order, and marked ``folded`` so that the data-quality card does not say it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from .cards import EXTENSION_KEY, Card, Coding, word_count
from .content import INDICATOR_RANK, Bundle, Content
from .facts import NotRun


@dataclass(frozen=True)
class Planned:
    """A bundle that applies to this call, the cards it holds and the labs they list as due or missing."""

    bundle: Bundle
    held: list[Card]
    lists_labs: frozenset[str]


def plan(situations: Iterable[str], cards: list[Card], content: Content) -> list[Planned]:
    found = []
    present = set(situations)
    for bundle in content.bundles.bundles:
        if bundle.applies_to not in present:
            continue
        order = list(bundle.holds)  # items in the order the content lists them
        held = sorted((c for c in cards if c.topic in bundle.holds and _holdable(c)), key=lambda c: order.index(c.topic))
        if held:
            found.append(Planned(bundle, held, frozenset().union(*(c.lists_labs for c in held))))
    return found


def fold(planned: list[Planned], not_run: list[NotRun]) -> list[NotRun]:
    """``not_run`` with the checks that wait on a listed result marked as said by the bundle's card."""
    listed = frozenset().union(*(p.lists_labs for p in planned))
    return [replace(n, folded=True) if n.labs and listed.issuperset(n.labs) else n for n in not_run]


def apply(planned: list[Planned], cards: list[Card], not_run: list[NotRun], content: Content) -> list[Card]:
    """``cards`` with each bundle's held cards replaced by the bundle's one card, where the first held card was."""
    if not planned:
        return cards
    replaced = {id(c): p for p in planned for c in p.held}
    out: list[Card] = []
    for c in cards:
        p = replaced.get(id(c))
        if p is None:
            out.append(c)
        elif c is p.held[0]:
            waiting = [n for n in not_run if n.folded and p.lists_labs.issuperset(n.labs)]
            out.append(_bundle_card(p, waiting, content))
    return out


def _holdable(card: Card) -> bool:
    """A card whose suggestions are alternatives (at most one of several) keeps its own card: held, they
    would become choices the clinician could all accept."""
    return len(card.suggestions or []) <= 1 or card.selection_behavior == "any"


def _bundle_card(planned: Planned, waiting: list[NotRun], content: Content) -> Card:
    bundle, held = planned.bundle, planned.held
    shape = content.card_shape
    items = [bundle.holds[c.topic] for c in held]
    listed = items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
    # The held card already names each result; the line names the checks that wait on them.
    waiting_line = [bundle.waiting_text.format(checks=", ".join(dict.fromkeys(n.check for n in waiting)))] if waiting else []
    # Each held detail ends with its own basis line; the list of summaries ends with the bundle's.
    full = "\n\n".join([f"**{c.summary}**\n{c.detail}" for c in held] + waiting_line)
    brief = "\n".join([f"- {c.summary}" for c in held] + waiting_line) + f"\n\n_{shape.basis[bundle.basis]}_"
    detail = full if word_count(full) <= shape.detail_words_max else brief
    indicator = max([c.indicator for c in held] + (["warning"] if any(n.safety for n in waiting) else []),
                    key=INDICATOR_RANK.__getitem__)  # fmt: skip
    first = held[0]
    return Card(
        summary=bundle.summary.format(items=listed),
        detail=detail,
        indicator=indicator,
        source=first.source.model_copy(
            update={"topic": Coding(code=bundle.topic, system=first.source.topic.system if first.source.topic else None,
                                    display=content.vocabulary.topics[bundle.topic])}  # fmt: skip
        ),
        suggestions=[s for c in held for s in c.suggestions or []] or None,
        selection_behavior="any",
        override_reasons=_unique((r for c in held for r in c.override_reasons or []), lambda r: r.code) or None,
        links=_unique((link for c in held for link in c.links or []), lambda link: link.url) or None,
        extension={EXTENSION_KEY: {"items": [c.topic for c in held], "contentVersion": content.bundles.content_version}},
    )


T = TypeVar("T")


def _unique(things: Iterable[T], key: Callable[[T], str]) -> list[T]:
    seen: dict[str, T] = {}
    for thing in things:
        seen.setdefault(key(thing), thing)
    return list(seen.values())
