"""Thrombosis risk: a past or current DVT/PE or antiphospholipid syndrome when baricitinib is ordered,
whatever the condition's clinicalStatus; the boxed warning is stated only as far as the label text read
supports it."""

from __future__ import annotations

import pytest

from tests.conftest import only

ORDER = ["baricitinib-4mg"]
ALL_BUT_CONDITIONS = {"patient", "observations", "immunizations", "medications"}


def thrombosis(cards):
    return [c for c in cards if c.topic == "thrombosis-risk"]


@pytest.mark.parametrize(
    ("patient", "summary", "quoted"),
    [
        ("thrombosis-dvt-resolved",
         "Thrombosis risk: history of DVT/PE; thrombosis has occurred with baricitinib (boxed warning)",
         "Deep venous thrombosis (128053003, recorded 2018-06-14), Condition/dvt"),
        ("thrombosis-pe-history-icd",
         "Thrombosis risk: history of DVT/PE; thrombosis has occurred with baricitinib (boxed warning)",
         "Personal history of pulmonary embolism (Z86.711, recorded 2020-02-03), Condition/pe"),
        ("thrombosis-aps-icd",
         "Thrombosis risk: history of antiphospholipid syndrome; thrombosis has occurred with baricitinib (boxed warning)",
         "Antiphospholipid syndrome (D68.61, recorded 2017-09-30), Condition/aps"),
        ("thrombosis-sle-associated-aps",
         "Thrombosis risk: history of antiphospholipid syndrome; thrombosis has occurred with baricitinib (boxed warning)",
         "SLE-associated antiphospholipid syndrome (402865003, recorded 2019-03-01), Condition/sle"),
    ],
)  # fmt: skip
def test_a_thrombosis_history_warns_whatever_its_clinical_status(evaluate, patient, summary, quoted):
    card = only(evaluate("order-sign", patient, ORDER), "thrombosis-risk")
    assert card.indicator == "warning"
    assert card.summary == summary
    assert len(card.summary) < 140
    assert quoted in card.detail
    assert card.suggestions is None


def test_the_boxed_warning_is_stated_only_as_far_as_the_label_supports(evaluate):
    detail = only(evaluate("order-select", "thrombosis-dvt-resolved", ORDER), "thrombosis-risk").detail
    assert "thrombosis has occurred in patients treated with OLUMIANT" in detail
    assert "Pulmonary embolism and venous and arterial thrombosis were more frequent with another JAK inhibitor than with TNF blockers" in " ".join(detail.split())
    assert "avoid" not in detail.lower()
    assert "(practice; the label's exact instruction for patients at increased risk of thrombosis was not verified" in detail


def test_dvt_and_aps_together_make_one_card_listing_both(evaluate):
    card = only(evaluate("medication-prescribe", "thrombosis-dvt-and-aps", ORDER), "thrombosis-risk")
    assert card.summary.startswith("Thrombosis risk: history of DVT/PE and antiphospholipid syndrome;")
    assert len(card.summary) < 140
    assert "(I82.409, recorded 2016-01-20), Condition/dvt" in card.detail
    assert "Antiphospholipid syndrome (26843008, recorded 2016-03-02), Condition/aps" in card.detail


def test_override_reasons_are_offered(evaluate):
    card = only(evaluate("order-sign", "thrombosis-aps-icd", ORDER), "thrombosis-risk")
    assert [r.code for r in card.override_reasons] == [
        "benefit-outweighs-thrombosis-risk", "on-anticoagulation", "thrombosis-risk-discussed",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("hook", "patient", "orders"),
    [
        ("order-sign", "sle-baseline", ORDER),  # no thrombosis history
        ("order-sign", "thrombosis-dvt-entered-in-error", ORDER),  # entered in error never counts
        ("order-sign", "thrombosis-raised-antibody-titer", ORDER),  # R76.0 is not antiphospholipid syndrome
        ("order-sign", "thrombosis-dvt-resolved", ["hydroxychloroquine"]),  # baricitinib not ordered
        ("patient-view", "thrombosis-dvt-on-baricitinib", None),  # a DVT of 2018, before therapy began
        ("patient-view", "thrombosis-mi-day-before-therapy", None),  # the day before the start
        ("order-sign", "thrombosis-new-dvt-on-therapy", ["hydroxychloroquine"]),  # another drug: not a chart open
        ("order-sign", "thrombosis-dvt-on-baricitinib", ["hydroxychloroquine"]),  # another drug for a patient on it
    ],
)
def test_silent_without_a_history_or_where_the_rule_does_not_run(evaluate, hook, patient, orders):
    assert thrombosis(evaluate(hook, patient, orders)) == []


def test_a_reorder_for_a_patient_on_baricitinib_still_warns(evaluate):
    assert len(thrombosis(evaluate("order-sign", "thrombosis-dvt-on-baricitinib", ORDER))) == 1


def test_without_the_problem_list_no_card_and_the_check_is_reported_not_done(evaluate):
    cards = evaluate("order-sign", "thrombosis-dvt-resolved", ORDER, prefetch_keys=ALL_BUT_CONDITIONS)
    assert thrombosis(cards) == []
    assert "**Not checked: Thrombosis risk**" in only(cards, "data-quality").detail


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
