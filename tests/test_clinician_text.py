"""Text a clinician reads says nothing about this project, its files or how its sources were checked: every
card of every fixture patient, on every hook, with and without a baricitinib order."""

from __future__ import annotations

import re

import pytest

from cds_service.content import INDICATOR_RANK
from cds_service.fixtures import FIXTURES
from cds_service.services import SERVICES

PATIENTS = sorted(p.stem for p in (FIXTURES / "patients").glob("*.json"))
DEVELOPER_WORDS = re.compile(
    r"project|unverified|not verified|verified by|not quoted|cards/|\.toml|reference pack|our sources|"
    r"the service|this service|was not read|not read in",
    re.IGNORECASE,
)


def clinician_text(card) -> str:
    """Summary, detail without its sources footer, suggestion labels and link labels."""
    detail = card.detail.split("\n\nBasis: ")[0]
    labels = [s.label for s in card.suggestions or []] + [link.label for link in card.links or []]
    return "\n".join([card.summary, detail, *labels])


@pytest.mark.parametrize("hook", sorted({s.hook for s in SERVICES}))
def test_no_card_of_any_fixture_speaks_of_the_project_or_goes_above_the_indicator_policy(evaluate, content, hook):
    found, above = [], []
    highest = content.indicator_policy.highest
    for patient in PATIENTS:
        orders = None if hook == "patient-view" else ["baricitinib-2mg"]
        for card in evaluate(hook, patient, orders):
            for match in DEVELOPER_WORDS.finditer(clinician_text(card)):
                found.append((patient, card.topic, match.group(0)))
            if INDICATOR_RANK[card.indicator] > INDICATOR_RANK[highest[card.topic]]:
                above.append((patient, card.topic, card.indicator))
    assert sorted(set(found)) == []
    assert above == []
