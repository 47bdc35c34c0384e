"""Thrombosis on therapy: a DVT/PE, MI or ischemic stroke dated since therapy began warns on chart open; a
history from before the start does not (at a new start it is a boxed-warning risk: test_boxed_warning.py)."""

from __future__ import annotations

import pytest

from tests.conftest import only

ORDER = ["baricitinib-4mg"]
ALL_BUT_CONDITIONS = {"patient", "observations", "immunizations", "medications"}


def thrombosis(cards):
    return [c for c in cards if c.topic == "thrombosis-risk"]


@pytest.mark.parametrize(
    ("hook", "patient", "orders"),
    [
        ("order-sign", "thrombosis-new-dvt-on-therapy", ORDER),  # an order: the boxed-warning card's, at a new start
        ("patient-view", "thrombosis-dvt-on-baricitinib", None),  # a DVT of 2018, before therapy began
        ("patient-view", "thrombosis-mi-day-before-therapy", None),  # the day before the start
        ("order-sign", "thrombosis-new-dvt-on-therapy", ["hydroxychloroquine"]),  # another drug: not a chart open
        ("order-sign", "thrombosis-dvt-on-baricitinib", ["hydroxychloroquine"]),  # another drug for a patient on it
    ],
)
def test_silent_without_a_history_or_where_the_rule_does_not_run(evaluate, hook, patient, orders):
    assert thrombosis(evaluate(hook, patient, orders)) == []


# --- a new event on therapy, on chart open ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("patient", "summary", "recorded"),
    [("thrombosis-new-dvt-on-therapy", "Review baricitinib: DVT/PE recorded on therapy (2026-11-18); boxed-warning risk",
      "Deep venous thrombosis (128053003, recorded 2026-11-18), Condition/dvt-new"),
     ("thrombosis-mi-on-therapy-start-day", "Review baricitinib: MI/stroke recorded on therapy (2026-05-01); boxed-warning risk",
      "Non-ST elevation (NSTEMI) myocardial infarction (I21.4, recorded 2026-05-01), Condition/mi"),
     ("thrombosis-stroke-on-therapy", "Review baricitinib: MI/stroke recorded on therapy (2026-10-02); boxed-warning risk",
      "Cerebral infarction (432504007, recorded 2026-10-02), Condition/stroke")],
)  # fmt: skip
def test_a_thrombosis_or_arterial_event_since_therapy_began_warns_on_chart_open(evaluate, patient, summary, recorded):
    card = only(evaluate("patient-view", patient), "thrombosis-risk")
    assert (card.indicator, card.summary) == ("warning", summary)
    assert recorded in card.detail
    assert "MACE (cardiovascular death, myocardial infarction and stroke)" in card.detail
