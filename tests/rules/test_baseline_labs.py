"""Baseline tests before a new start: each test missing, out of date (at and just past its look-back window),
unreadable or entered in error; creatinine or eGFR; never lipids; and silence for a patient already on
baricitinib or when the lab results could not be fetched."""

from __future__ import annotations

import pytest

from tests.conftest import only

ORDER = ["baricitinib-2mg"]
ALL_TESTS = {
    "751-8": "ANC",
    "731-0": "lymphocytes",
    "718-7": "hemoglobin",
    "1742-6": "ALT",
    "1920-8": "AST",
    "2160-0": "creatinine/eGFR",
    "5196-1": "HBsAg",
    "16933-4": "anti-HBc",
    "13955-0": "HCV antibody",
    "71773-6": "TB IGRA",
}
LIPID_CODES = {"13457-7", "18262-6", "2089-1", "2093-3", "2085-9", "2571-8", "57698-3", "24331-1"}


def baseline_cards(cards):
    return [c for c in cards if c.topic == "baseline-labs"]


def ordered(card) -> list[str]:
    """The LOINC codes of the ServiceRequests in the card's one suggestion."""
    [suggestion] = card.suggestions
    codes = []
    for action in suggestion.actions:
        assert action.type == "create"
        assert action.resource["resourceType"] == "ServiceRequest"
        assert action.resource["subject"] == {"reference": "Patient/sle-baseline"}
        [coding] = action.resource["code"]["coding"]
        assert coding["system"] == "http://loinc.org"
        codes.append(coding["code"])
    return codes


def test_a_new_start_with_every_baseline_current_gets_no_card(evaluate):
    assert baseline_cards(evaluate("order-select", "sle-baseline", ORDER)) == []


def test_a_new_start_with_no_labs_orders_every_baseline_test_and_no_lipids(evaluate):
    card = only(evaluate("order-select", "baseline-no-labs", ORDER), "baseline-labs")
    assert card.indicator == "warning"
    assert card.summary == "Order 10 baseline tests: none on record"
    assert card.selection_behavior == "at-most-one"
    assert ordered(card) == list(ALL_TESTS)
    assert not LIPID_CODES & set(ordered(card))
    assert "- **None on record**: " + ", ".join(ALL_TESTS.values()) in card.detail
    assert card.detail.endswith("_US label; thresholds and timing are practice._")  # look-back windows


@pytest.mark.parametrize("hook", ["order-sign", "medication-prescribe"])
def test_every_order_hook_checks_the_baseline(evaluate, hook):
    card = only(evaluate(hook, "baseline-no-renal", ORDER), "baseline-labs")
    assert card.summary == "Order baseline creatinine/eGFR: none on record"
    assert ordered(card) == ["2160-0"]


@pytest.mark.parametrize("patient", ["baseline-egfr-only", "baseline-creatinine-only"])
def test_creatinine_or_egfr_is_enough(evaluate, patient):
    assert baseline_cards(evaluate("order-select", patient, ORDER)) == []


def test_a_result_at_its_look_back_window_still_counts(evaluate):
    # ALT of 2026-08-27 is 90 days old (window 90); HBsAg of 2025-11-25 is 365 days old (window 365).
    assert baseline_cards(evaluate("order-select", "baseline-alt-90-days", ORDER)) == []
    assert baseline_cards(evaluate("order-select", "baseline-hbsag-365-days", ORDER)) == []


def test_a_result_one_day_past_its_look_back_window_is_out_of_date(evaluate):
    card = only(evaluate("order-select", "baseline-alt-91-days", ORDER), "baseline-labs")
    assert card.summary == "Order baseline ALT: out of date"
    assert "- **ALT**: ALT 22 U/L on 2026-08-26, 91 days old, past its 90-day look-back window" in card.detail
    assert ordered(card) == ["1742-6"]


def test_an_out_of_date_hepatitis_b_screen(evaluate):
    card = only(evaluate("order-select", "baseline-hbsag-366-days", ORDER), "baseline-labs")
    assert (
        "Hepatitis B surface antigen negative (reported 'Negative') on 2025-11-24, "
        "366 days old, past its 365-day look-back window" in card.detail
    )
    assert ordered(card) == ["5196-1"]


def test_an_unreadable_result_is_missing_and_says_why(evaluate):
    cards = evaluate("order-select", "baseline-unreadable-hemoglobin", ORDER)
    card = only(cards, "baseline-labs")
    assert card.summary == "Order baseline hemoglobin: result unreadable"
    assert (
        "- **hemoglobin**: result could not be read: "
        "Hemoglobin 12.5 mg of 2026-11-10: unit cannot be converted to g/dL" in card.detail
    )
    assert ordered(card) == ["718-7"]
    assert "data-quality" in [c.topic for c in cards]


def test_an_entered_in_error_result_does_not_count(evaluate):
    card = only(evaluate("order-select", "baseline-igra-entered-in-error", ORDER), "baseline-labs")
    assert "- **None on record**: TB IGRA" in card.detail
    assert ordered(card) == ["71773-6"]


def test_an_earlier_valid_result_counts_when_the_newest_was_entered_in_error(evaluate):
    assert baseline_cards(evaluate("order-select", "baseline-igra-corrected", ORDER)) == []


def test_an_indeterminate_screen_is_left_to_the_infection_hold_card(evaluate):
    cards = evaluate("order-select", "baseline-igra-indeterminate", ORDER)
    assert baseline_cards(cards) == []
    assert "infection-hold" in [c.topic for c in cards]


def test_a_renewal_for_a_patient_already_on_baricitinib_is_not_a_new_start(evaluate):
    assert baseline_cards(evaluate("order-select", "baseline-on-baricitinib-no-labs", ORDER)) == []


def test_patient_view_never_shows_baseline_labs(evaluate):
    assert baseline_cards(evaluate("patient-view", "baseline-on-baricitinib-no-labs")) == []


def test_an_order_for_another_drug_does_not_ask_for_baseline_tests(evaluate):
    assert baseline_cards(evaluate("order-select", "baseline-no-labs", ["hydroxychloroquine"])) == []


def test_when_lab_results_could_not_be_fetched_no_test_is_listed_as_missing(evaluate):
    keys = {
        "patient",
        "conditions",
        "immunizations",
        "medications",
    }  # observations neither prefetched nor fetchable
    cards = evaluate("order-select", "sle-baseline", ORDER, prefetch_keys=keys)
    assert baseline_cards(cards) == []
    quality = only(cards, "data-quality")
    assert "Baseline tests before starting" in quality.detail


@pytest.mark.parametrize(
    "patient", ["infection-igra-older-positive-stale", "infection-latent-tb-condition-no-igra"],
    ids=["positive-long-ago", "latent-tb-recorded"],
)
def test_a_known_positive_is_not_re_tested_as_a_baseline(evaluate, patient):
    cards = evaluate("order-select", patient, ORDER)
    assert all("TB IGRA" not in c.detail for c in cards if c.topic == "baseline-labs")
    assert "infection-hold" in {c.topic for c in cards}
