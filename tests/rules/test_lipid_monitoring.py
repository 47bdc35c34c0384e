"""Lipid monitoring: lipids due from 12 weeks on therapy (just before / at the boundary), any lipid result
since the start, LDL above the practice threshold in each unit, unreadable LDL, and silence for a new start
and for orders of other drugs."""

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
    assert (
        card.summary
        == "Lipids due: on baricitinib 29 weeks (since 2026-05-01) with no lipid result since the start"
    )
    assert "assess lipid parameters about 12 weeks after starting" in card.detail
    assert "Basis: US Olumiant label (lipids about 12 weeks after starting)." in card.detail
    assert card.selection_behavior == "at-most-one"
    assert ordered(card) == ["24331-1"]
    [action] = card.suggestions[0].actions
    assert action.resource["resourceType"] == "ServiceRequest"


def test_a_lipid_result_from_before_the_start_does_not_count(evaluate):
    card = only(evaluate("patient-view", "lipids-before-start"), "lipid-monitoring")
    assert card.summary.startswith("Lipids due:")
    assert "consider a statin" not in card.detail  # LDL 95 mg/dL is not above 100


def test_any_lipid_result_since_the_start_counts(evaluate):
    assert lipid_cards(evaluate("patient-view", "lipids-hdl-only")) == []


def test_lipids_become_due_at_12_weeks_not_before(evaluate):
    card = only(evaluate("patient-view", "lipids-start-84-days"), "lipid-monitoring")
    assert "on baricitinib 12 weeks (since 2026-09-02)" in card.summary
    assert lipid_cards(evaluate("patient-view", "lipids-start-83-days")) == []


def test_patient_on_therapy_with_a_lipid_result_since_the_start_is_quiet(evaluate):
    assert lipid_cards(evaluate("patient-view", "sle-on-baricitinib")) == []  # LDL 95 mg/dL on 2026-08-01


@pytest.mark.parametrize(
    ("patient", "value", "quoted"),
    [
        ("lipids-ldl-101", "101", "LDL cholesterol 101 mg/dL on 2026-08-01"),
        ("lipids-ldl-2-7-mmol", "104.4", "LDL cholesterol 104.409 mg/dL (reported 2.7 mmol/L) on 2026-08-01"),
    ],
)
def test_ldl_above_100_suggests_considering_a_statin_as_practice(evaluate, patient, value, quoted):
    card = only(evaluate("patient-view", patient), "lipid-monitoring")
    assert card.indicator == "info"
    assert (
        card.summary
        == f"LDL {value} mg/dL on 2026-08-01 is above 100 mg/dL: consider a statin (practice, not label)"
    )
    assert quoted in card.detail
    assert "practice threshold, not in the US label" in card.detail
    assert "the label gives no LDL target" in card.detail
    assert card.suggestions is None  # lipids are not due: no order


@pytest.mark.parametrize("patient", ["lipids-ldl-100", "lipids-ldl-2-5-mmol"])
def test_ldl_at_or_below_100_is_quiet(evaluate, patient):
    assert lipid_cards(evaluate("patient-view", patient)) == []


def test_lipids_due_and_a_high_ldl_from_before_the_start_make_one_card(evaluate):
    card = only(evaluate("patient-view", "lipids-ldl-150-before-start"), "lipid-monitoring")
    assert card.summary.startswith("Lipids due:")
    assert "**LDL cholesterol 150 mg/dL on 2026-04-15** (Observation/ldl)" in card.detail
    assert "consider a statin" in card.detail
    assert ordered(card) == ["24331-1"]


def test_an_unreadable_ldl_is_not_read_as_normal_or_as_high(evaluate):
    card = only(evaluate("patient-view", "lipids-ldl-unreadable"), "lipid-monitoring")
    assert card.summary.startswith("Lipids due:")
    assert (
        "A lipid result could not be read and does not count: LDL cholesterol 130 g of 2026-08-01"
        in card.detail
    )
    assert "consider a statin" not in card.detail


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
