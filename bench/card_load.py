"""What a prescriber reads: cards per call and words of clinical detail per card, over the fixture patients
and the Synthea sample patients, in the two situations the card-design targets name: a new start (an order
hook with a baricitinib draft, not on baricitinib) and a chart open of a patient on baricitinib.

Words of clinical detail are every word of a card's detail (sources are links, not detail).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

from cds_service.cards import word_count
from cds_service.fixtures import FIXTURES, hook_request, rolled_to, synthea_corpus, synthea_request

Json = dict[str, Any]


def clinical_words(card: Json) -> int:
    return word_count(card.get("detail", ""))


def _fixture_calls(today: date) -> Iterator[tuple[str, str, Json]]:
    for path in sorted((FIXTURES / "patients").glob("*.json")):
        on_therapy = "on-baricitinib" in path.stem
        if on_therapy:
            yield "chart open on therapy", path.stem, rolled_to(hook_request("patient-view", path.stem), today)
        else:
            yield "new start", path.stem, rolled_to(hook_request("order-select", path.stem, ["baricitinib-2mg"]), today)


def _synthea_calls(today: date) -> Iterator[tuple[str, str, Json]]:
    for path in synthea_corpus():
        yield "new start", path.stem, synthea_request(path, "order-select", today)
        yield "chart open on therapy", path.stem, synthea_request(path, "patient-view", today)


def measure(post, today: date) -> list[dict[str, Any]]:
    """``post(hook, body) -> response JSON``. One row per corpus and situation."""
    rows = []
    for corpus, calls in (("fixtures", _fixture_calls(today)), ("Synthea", _synthea_calls(today))):
        cards_per_call: dict[str, list[int]] = defaultdict(list)
        words: dict[str, list[int]] = defaultdict(list)
        summaries: dict[str, list[int]] = defaultdict(list)
        by_topic: dict[tuple[str, str], list[int]] = defaultdict(list)
        for situation, _, body in calls:
            cards = post(body["hook"], body)["cards"]
            cards_per_call[situation].append(len(cards))
            for card in cards:
                n = clinical_words(card)
                words[situation].append(n)
                summaries[situation].append(len(card["summary"]))
                by_topic[(situation, card["source"]["topic"]["code"])].append(n)
        for situation, counts in sorted(cards_per_call.items()):
            w = words[situation] or [0]
            rows.append({"corpus": corpus, "situation": situation, "calls": len(counts),
                         "cards_median": statistics.median(counts), "cards_mean": statistics.mean(counts),
                         "words_median": statistics.median(w), "words_max": max(w),
                         "over_60": sum(1 for n in w if n > 60), "cards": len(w),
                         "summary_max": max(summaries[situation] or [0]),
                         "summaries_over_100": sum(1 for n in summaries[situation] if n > 100),
                         "longest": sorted(((max(v), t) for (s, t), v in by_topic.items() if s == situation),
                                           reverse=True)[:3]})  # fmt: skip
    return rows
