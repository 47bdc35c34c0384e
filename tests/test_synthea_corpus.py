"""Public Synthea R4 sample patients (data nobody on this project wrote) through all four hooks, each given
SLE and a baricitinib order (six months of therapy on patient-view): every call answers 200, and no
data-quality card calls well-formed data unreadable.

The patients are not committed: fetched data stays out of the project's history. ``.ci/run`` derives them
from the public repository's mirror when the machine has it (``fhir_fixtures/synthea/derive.py``); without
them this module is skipped, and says so.
"""

from __future__ import annotations

import re

import pytest

from cds_service.facts import utc_today
from cds_service.fixtures import synthea_corpus, synthea_request
from cds_service.services import SERVICES

CORPUS = synthea_corpus()
pytestmark = pytest.mark.skipif(
    not CORPUS, reason="no Synthea patients: run python fhir_fixtures/synthea/derive.py <mirror of "
    "smart-on-fhir/generated-sample-data>"
)  # fmt: skip
# What the data-quality card says when it could not read data. Synthea's data is well-formed R4, so none of
# this may appear (it did: "unit cannot be converted" for the eGFR written in mL/min, on 216 of 615 calls).
UNREADABLE = re.compile(
    r"cannot be converted|cannot be read|unreadable|malformed|implausible|no numeric value|no unit|is not a number"
    r"|cannot be interpreted|no usable date|could not be identified"
)


@pytest.mark.parametrize("service", SERVICES, ids=[s.hook for s in SERVICES])
def test_every_synthea_patient_gets_an_answer_and_no_well_formed_data_is_called_unreadable(client, service):
    today = utc_today()
    failures, unreadable, topics = [], [], []
    for path in CORPUS:
        response = client.post(f"/cds-services/{service.id}", json=synthea_request(path, service.hook, today))
        if response.status_code != 200:
            failures.append((path.stem, response.status_code))
            continue
        cards = response.get_json()["cards"]
        topics += [c["source"]["topic"]["code"] for c in cards]
        for card in cards:
            if card["source"]["topic"]["code"] == "data-quality" and UNREADABLE.search(card["detail"]):
                unreadable.append((path.stem, [line for line in card["detail"].splitlines() if UNREADABLE.search(line)]))
    assert failures == []
    assert unreadable == []
    # The SLE and the baricitinib order (or therapy) were read: a new start's off-label card, a chart open's monitoring.
    assert ("due-on-therapy" if service.hook == "patient-view" else "off-label-use") in topics
