"""Every card of every fixture patient, on every hook, keeps the one card shape: a summary under the spec's
limit (and its aim), at most about 60 words of clinical detail, nothing about this project, its files or how
its sources were checked, sources as links, and an indicator no higher than its topic's policy."""

from __future__ import annotations

import re

import pytest

from cds_service.cards import SUMMARY_MAX, word_count
from cds_service.content import INDICATOR_RANK
from cds_service.fixtures import FIXTURES
from cds_service.services import SERVICES

PATIENTS = sorted(p.stem for p in (FIXTURES / "patients").glob("*.json"))


def clinician_text(card) -> str:
    """Summary, detail, suggestion labels and link labels."""
    labels = [s.label for s in card.suggestions or []] + [link.label for link in card.links or []]
    return "\n".join([card.summary, card.detail, *labels])


@pytest.mark.parametrize("hook", sorted({s.hook for s in SERVICES}))
def test_no_card_of_any_fixture_speaks_of_the_project_or_goes_above_the_indicator_policy(evaluate, content, hook):
    found, above = [], []
    highest = content.indicator_policy.highest
    developer_words = re.compile("|".join(map(re.escape, content.card_shape.developer_words)), re.IGNORECASE)
    for patient in PATIENTS:
        orders = None if hook == "patient-view" else ["baricitinib-2mg"]
        for card in evaluate(hook, patient, orders):
            for match in developer_words.finditer(clinician_text(card)):
                found.append((patient, card.topic, match.group(0)))
            if INDICATOR_RANK[card.indicator] > INDICATOR_RANK[highest[card.topic]]:
                above.append((patient, card.topic, card.indicator))
    assert sorted(set(found)) == []
    assert above == []


@pytest.mark.parametrize("hook", sorted({s.hook for s in SERVICES}))
def test_every_card_of_every_fixture_keeps_the_card_shape(evaluate, content, hook):
    shape = content.card_shape
    too_long = []
    for patient in PATIENTS:
        orders = None if hook == "patient-view" else ["baricitinib-2mg"]
        for card in evaluate(hook, patient, orders):
            words = word_count(card.detail)
            if words > shape.detail_words_max or len(card.summary) > SUMMARY_MAX:
                too_long.append((patient, card.topic, words, len(card.summary)))
            assert card.links and all(link.url.startswith("https://") for link in card.links), card.topic
            assert card.source.url == card.links[0].url  # the primary source leads
            assert "Sources:" not in card.detail and "](http" not in card.detail  # sources are links, not text
    assert too_long == []
