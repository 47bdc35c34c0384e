"""Lab hold: label thresholds (ANC, lymphocytes, hemoglobin) and the practice ALT/AST rule, at their
boundaries, in each unit, stale vs fresh, entered-in-error vs valid, and results out of date order."""

from __future__ import annotations

import pytest

from tests.conftest import only

ORDER = ["baricitinib-4mg"]


def lab_holds(cards):
    return [c for c in cards if c.topic == "lab-hold"]


@pytest.mark.parametrize(
    ("patient", "quoted"),
    [
        ("labhold-anc-800", "ANC 800 cells/uL (reported 0.8 10*3/uL) on 2026-11-10"),
        ("labhold-anc-999-per-uL", "ANC 999 cells/uL (reported 999 /uL) on 2026-11-10"),
        ("labhold-anc-0.99-giga-per-L", "ANC 990 cells/uL (reported 0.99 10*9/L) on 2026-11-10"),
        ("labhold-lymphocytes-499", "Lymphocyte count 499 cells/uL (reported 0.499 10*3/uL) on 2026-11-10"),
        ("labhold-hb-7.9", "Hemoglobin 7.9 g/dL on 2026-11-10"),
        ("labhold-hb-79-g-per-L", "Hemoglobin 7.9 g/dL (reported 79 g/L) on 2026-11-10"),
        ("labhold-hb-4.9-mmol", "Hemoglobin 7.89 g/dL (reported 4.9 mmol/L) on 2026-11-10"),
        ("labhold-anc-fresh-at-window", "ANC 500 cells/uL (reported 0.5 10*3/uL) on 2026-08-27"),
    ],
)
def test_a_result_below_the_label_threshold_fires_a_critical_hold(evaluate, patient, quoted):
    card = only(evaluate("order-select", patient, ORDER), "lab-hold")
    assert card.indicator == "critical"
    assert quoted in card.detail
    assert card.detail.endswith("_US label threshold._")
    assert card.summary.startswith("Hold baricitinib:") and len(card.summary) < 140
    assert card.selection_behavior == "at-most-one"
    [suggestion] = card.suggestions
    assert [(a.type, a.resource_id) for a in suggestion.actions] == [("delete", "MedicationRequest/draft-baricitinib")]


@pytest.mark.parametrize(
    "patient",
    ["sle-baseline", "labhold-anc-1000-per-uL", "labhold-anc-1.0-giga-per-L", "labhold-lymphocytes-500", "labhold-hb-8.0",
     "labhold-alt-105-uln-35", "labhold-alt-120-no-range"],
)  # fmt: skip
def test_a_result_at_the_threshold_does_not_fire(evaluate, patient):
    assert lab_holds(evaluate("order-select", patient, ORDER)) == []


def test_alt_above_three_times_the_results_own_upper_limit_is_a_practice_warning_not_a_hold(evaluate):
    card = only(evaluate("order-sign", "labhold-alt-106-uln-35", ORDER), "lab-hold")
    assert card.indicator == "warning"
    assert card.summary.startswith("Check for liver injury: ALT 106 U/L on 2026-11-10 is above 3x ULN")
    assert "ALT 106 U/L on 2026-11-10" in card.detail
    assert "above 3x ULN (105 U/L); upper limit of normal 35 U/L from the result's reference range" in card.detail
    assert card.detail.endswith("_Practice threshold, not US label text._")
    assert "drug-induced liver injury" in card.detail


def test_alt_without_a_reference_range_uses_the_default_upper_limit(evaluate):
    card = only(evaluate("order-select", "labhold-alt-121-no-range", ORDER), "lab-hold")
    assert "upper limit of normal 40 U/L from a default (no reference range sent)" in card.detail


def test_a_stale_result_is_not_a_hold_and_is_not_read_as_normal(evaluate):
    cards = evaluate("order-select", "labhold-anc-stale", ORDER)
    assert lab_holds(cards) == []  # 91 days old: out of the 90-day look-back window


def test_an_unconvertible_unit_is_not_read_as_normal(evaluate):
    # A percentage sent under an absolute-count code: never compared with the count threshold.
    cards = evaluate("order-select", "labhold-anc-unconvertible-unit", ORDER)
    assert lab_holds(cards) == []
    quality = only(cards, "data-quality")
    assert quality.indicator == "warning"
    assert quality.summary == "Lab-hold check not done: ANC of 2026-11-10 unreadable"
    assert "ANC 0.5 % of 2026-11-10: unit cannot be converted to /uL" in quality.detail


def test_a_lab_feed_unit_is_read_through_the_units_table(evaluate):
    card = only(evaluate("order-select", "labhold-anc-k-per-ul", ORDER), "lab-hold")
    assert "ANC 500 cells/uL (reported 0.5 K/uL) on 2026-11-10" in card.detail


def test_an_implausible_value_is_reported_not_used(evaluate):
    cards = evaluate("order-select", "labhold-hb-implausible", ORDER)
    assert lab_holds(cards) == []
    # 0.5 mmol/L is 0.8055 g/dL: said with no more precision than the lab reported (3 digits at least)
    assert "is implausible (0.805 g/dL); the unit may be wrong" in only(cards, "data-quality").detail


def test_an_entered_in_error_result_is_ignored_and_said(evaluate):
    cards = evaluate("order-select", "labhold-anc-entered-in-error", ORDER)
    assert lab_holds(cards) == []  # the valid result (3.2) stands
    detail = only(cards, "data-quality").detail
    assert "Observation/anc-wrong: ANC result of 2026-11-20 is marked entered-in-error" in detail


def test_the_newest_result_wins_whatever_the_order_they_arrive_in(evaluate):
    card = only(evaluate("order-select", "labhold-anc-out-of-order", ORDER), "lab-hold")
    assert "ANC 700 cells/uL (reported 0.7 10*3/uL) on 2026-11-20" in card.detail


def test_patient_view_suggests_putting_the_active_order_on_hold(evaluate):
    card = only(evaluate("patient-view", "labhold-anc-800-on-baricitinib"), "lab-hold")
    [suggestion] = card.suggestions
    assert suggestion.label == "Put baricitinib on hold"
    [action] = suggestion.actions
    assert action.type == "update"
    assert action.resource["id"] == "baricitinib" and action.resource["status"] == "on-hold"
    assert action.resource["statusReason"] == {"text": "ANC 800 cells/uL on 2026-11-10"}


def test_patient_view_for_a_patient_not_on_baricitinib_is_silent(evaluate):
    assert evaluate("patient-view", "labhold-anc-800") == []


def test_an_order_for_another_drug_is_silent(evaluate):
    assert evaluate("order-select", "labhold-anc-800", ["hydroxychloroquine"]) == []


def test_text_only_olumiant_order_is_recognised(evaluate):
    card = only(evaluate("order-select", "labhold-anc-800", ["olumiant-2mg-text-only"]), "lab-hold")
    assert card.suggestions[0].actions[0].resource_id == "MedicationRequest/draft-olumiant"
