"""Lipid monitoring: lipids due from 12 weeks on therapy (just before / at the boundary) with no LDL or
total cholesterol from week 8 on (at, just before), HDL alone not counting, no statin prompt, unreadable LDL,
and silence for a new start and for orders of other drugs."""

from __future__ import annotations

import pytest

from tests.conftest import only

RENEWAL = ["baricitinib-2mg"]


def lipid_cards(cards):
    return [c for c in cards if c.topic == "lipid-monitoring"]


def ordered(card) -> list[str]:
    [suggestion] = card.suggestions
    return [a.resource["code"]["coding"][0]["code"] for a in suggestion.actions if a.type == "create"]


def test_no_lipid_result_since_the_start_makes_lipids_due(evaluate):
    card = only(evaluate("patient-view", "lipids-none-since-start"), "lipid-monitoring")
    assert card.indicator == "info"
    assert card.summary == "Order a lipid panel: on baricitinib 29 weeks, no lipids since week 8 (2026-06-26)"
    assert "assess lipids about 12 weeks after starting" in card.detail
    assert ordered(card) == ["24331-1"]


@pytest.mark.parametrize(
    "patient", ["lipids-before-start", "lipids-ldl-day-4", "lipids-ldl-day-before-week-8", "lipids-hdl-only"],
    ids=["before-the-start", "day-4-is-a-baseline", "day-before-the-window", "hdl-alone-is-no-assessment"],
)  # fmt: skip
def test_a_result_outside_the_week_12_window_or_hdl_alone_does_not_count(evaluate, patient):
    card = only(evaluate("patient-view", patient), "lipid-monitoring")
    assert card.summary.startswith("Order a lipid panel:")


@pytest.mark.parametrize("patient", ["lipids-ldl-week-8", "sle-on-baricitinib"], ids=["at-week-8", "week-13"])
def test_an_ldl_from_week_8_on_is_the_assessment(evaluate, patient):
    assert lipid_cards(evaluate("patient-view", patient)) == []


def test_lipids_become_due_at_12_weeks_not_before(evaluate):
    card = only(evaluate("patient-view", "lipids-start-84-days"), "lipid-monitoring")
    assert "12 weeks" in card.summary
    assert lipid_cards(evaluate("patient-view", "lipids-start-83-days")) == []


@pytest.mark.parametrize("patient", ["lipids-ldl-101", "lipids-ldl-2-7-mmol", "lipids-ldl-100"])
def test_no_statin_prompt_from_an_ldl_threshold_that_is_no_guideline_rule(evaluate, patient):
    assert lipid_cards(evaluate("patient-view", patient)) == []


def test_an_unreadable_ldl_is_not_read_as_an_assessment(evaluate):
    card = only(evaluate("patient-view", "lipids-ldl-unreadable"), "lipid-monitoring")
    assert card.summary.startswith("Order a lipid panel:")
    assert "A lipid result could not be read and does not count: LDL cholesterol 130 g of 2026-08-01" in card.detail


def test_a_renewal_order_for_a_patient_on_therapy_counts(evaluate):
    card = only(evaluate("order-select", "lipids-none-since-start", RENEWAL), "lipid-monitoring")
    assert ordered(card) == ["24331-1"]


def test_a_new_start_has_nothing_due(evaluate):
    assert lipid_cards(evaluate("order-select", "sle-baseline", RENEWAL)) == []


def test_an_order_for_another_drug_does_not_show_lipids(evaluate):
    assert lipid_cards(evaluate("order-select", "lipids-none-since-start", ["hydroxychloroquine"])) == []


def test_patient_view_for_a_patient_not_on_baricitinib_is_quiet(evaluate):
    assert lipid_cards(evaluate("patient-view", "sle-baseline")) == []


def test_when_lab_results_could_not_be_fetched_nothing_is_said_to_be_due(evaluate):
    keys = {"patient", "conditions", "immunizations", "medications"}
    cards = evaluate("patient-view", "lipids-none-since-start", prefetch_keys=keys)
    assert lipid_cards(cards) == []
    assert "Lipid monitoring" in only(cards, "data-quality").detail
