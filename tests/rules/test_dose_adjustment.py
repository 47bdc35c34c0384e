"""Dose adjustment: eGFR (reported and computed from creatinine in each unit) at the 30 and 60 boundaries,
strong OAT3 inhibitors, the EU older-patient practice dose, the highest labelled daily dose, triggers
together (never halved twice), unknown doses, and the hooks where the rule stays silent."""

from __future__ import annotations

import pytest

from tests.conftest import only

TWO_MG = ["baricitinib-2mg"]
FOUR_MG = ["baricitinib-4mg"]
EIGHT_MG = ["dose-baricitinib-4mg-twice-daily"]
DRAFT = "MedicationRequest/draft-baricitinib"


def dose_cards(cards):
    return [c for c in cards if c.topic == "dose-adjustment"]


def suggested_dose(card) -> tuple[str, str, dict]:
    """(action type, product text, the dosage) of the card's one suggestion."""
    [suggestion] = card.suggestions
    [action] = suggestion.actions
    resource = action.resource
    return action.type, resource["medicationCodeableConcept"]["text"], resource["dosageInstruction"][0]


# --- eGFR ------------------------------------------------------------------------------------------------


def test_egfr_just_below_30_is_critical_not_recommended_and_suggests_removing_the_draft(evaluate):
    card = only(evaluate("order-select", "dose-egfr-29-9", TWO_MG), "dose-adjustment")
    assert card.indicator == "critical"
    assert card.summary == "Baricitinib not recommended: eGFR 29.9 mL/min/1.73 m2 is below 30"
    assert "eGFR 29.9 mL/min/1.73 m2 (reported on 2026-11-10, Observation/egfr)" in card.detail
    assert "not recommended when eGFR is below 30" in card.detail
    assert card.detail.endswith("_US label (RA dosing)._")
    [suggestion] = card.suggestions
    assert [(a.type, a.resource_id) for a in suggestion.actions] == [("delete", DRAFT)]


@pytest.mark.parametrize(
    ("patient", "egfr"), [("dose-egfr-30", "30"), ("dose-egfr-45", "45"), ("dose-egfr-59-9", "59.9")]
)
def test_egfr_30_to_below_60_halves_2_mg_to_1_mg(evaluate, patient, egfr):
    card = only(evaluate("order-select", patient, TWO_MG), "dose-adjustment")
    assert card.indicator == "warning"
    assert card.summary == f"Reduce baricitinib 2 mg/day to 1 mg once daily: eGFR {egfr}"
    assert f"eGFR {egfr} mL/min/1.73 m2 (reported on 2026-11-10, Observation/egfr)" in card.detail
    assert "30 to below 60: half the dose" in card.detail
    assert "Label RA dose: 1 mg once daily instead of 2 mg." in card.detail
    assert card.selection_behavior == "at-most-one"
    kind, product, dosage = suggested_dose(card)
    assert (kind, product) == ("update", "baricitinib 1 MG Oral Tablet")
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "d"}
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1


def test_the_update_keeps_the_draft_order_id(evaluate):
    card = only(evaluate("order-sign", "dose-egfr-45", TWO_MG), "dose-adjustment")
    [action] = card.suggestions[0].actions
    assert action.resource["id"] == "draft-baricitinib"
    assert action.resource["status"] == "draft"


def test_egfr_30_to_below_60_halves_4_mg_to_2_mg(evaluate):
    card = only(evaluate("order-select", "dose-egfr-45", FOUR_MG), "dose-adjustment")
    assert card.summary == "Reduce baricitinib 4 mg/day to 2 mg once daily: eGFR 45"
    assert suggested_dose(card)[1] == "baricitinib 2 MG Oral Tablet"


@pytest.mark.parametrize("patient", ["dose-egfr-60", "sle-baseline"])
def test_egfr_60_or_more_needs_no_adjustment(evaluate, patient):
    assert dose_cards(evaluate("order-select", patient, TWO_MG)) == []


def test_an_order_already_at_1_mg_is_not_halved_again(evaluate):
    assert dose_cards(evaluate("order-select", "dose-egfr-45", ["dose-baricitinib-1mg"])) == []


def test_egfr_computed_from_creatinine_in_umol_per_litre_says_so(evaluate):
    # female, 36, creatinine 110 umol/L = 1.2441 mg/dL: CKD-EPI 2021 gives 57.6 (worked as in test_facts.py)
    card = only(evaluate("order-select", "dose-creatinine-umol", TWO_MG), "dose-adjustment")
    assert card.summary == "Reduce baricitinib 2 mg/day to 1 mg once daily: eGFR 57.6"
    assert (
        "eGFR 57.6 mL/min/1.73 m2 (CKD-EPI 2021 from creatinine 1.24 mg/dL of 2026-11-10; "
        "reported as 110 umol/L)"
    ) in card.detail


def test_egfr_computed_from_creatinine_in_mg_per_dl(evaluate):
    card = only(evaluate("order-select", "dose-creatinine-mgdl", TWO_MG), "dose-adjustment")
    assert "eGFR 54.7 mL/min/1.73 m2 (CKD-EPI 2021 from creatinine 1.3 mg/dL of 2026-11-10)" in card.detail
    assert "reported as" not in card.detail  # written in the unit the card shows


def test_a_stale_egfr_is_not_read_as_normal_nor_as_reduced(evaluate):
    # eGFR 45 and creatinine from 2026-06-01 are past their look-back window: no renal finding and no
    # "fine" card; the baseline-labs card asks for the test.
    cards = evaluate("order-select", "dose-egfr-stale", TWO_MG)
    assert dose_cards(cards) == []
    assert "creatinine/eGFR" in only(cards, "baseline-labs").summary


def test_a_card_for_another_reason_says_the_renal_check_was_not_done(evaluate):
    card = only(evaluate("order-select", "dose-egfr-stale-probenecid", TWO_MG), "dose-adjustment")
    assert card.summary == "Reduce baricitinib 2 mg/day to 1 mg once daily: with probenecid"
    assert (
        "eGFR: the newest eGFR (2026-06-01) is out of date. The renal dose check was not done" in card.detail
    )


def test_an_entered_in_error_egfr_is_ignored_for_the_valid_one(evaluate):
    card = only(evaluate("order-select", "dose-egfr-entered-in-error", TWO_MG), "dose-adjustment")
    assert card.indicator == "warning"
    assert "eGFR 45 mL/min/1.73 m2 (reported on 2026-11-10, Observation/egfr-valid)" in card.detail


def test_the_newest_egfr_wins_whatever_order_the_results_arrive_in(evaluate):
    assert dose_cards(evaluate("order-select", "dose-egfr-older-low-last", TWO_MG)) == []
    card = only(evaluate("order-select", "dose-egfr-newer-low-last", TWO_MG), "dose-adjustment")
    assert card.indicator == "critical"
    assert "Observation/egfr-newer" in card.detail


# --- OAT3 inhibitors -------------------------------------------------------------------------------------


def test_an_active_probenecid_halves_the_dose(evaluate):
    card = only(evaluate("order-select", "dose-probenecid", TWO_MG), "dose-adjustment")
    assert card.indicator == "warning"
    assert "**probenecid** (active)" in card.detail
    assert "strong OAT3 inhibitor: half the dose" in card.detail
    assert "Label RA dose: 1 mg once daily instead of 2 mg." in card.detail
    assert suggested_dose(card)[1] == "baricitinib 1 MG Oral Tablet"


def test_probenecid_ordered_together_halves_the_dose(evaluate):
    card = only(evaluate("order-sign", "sle-baseline", [*FOUR_MG, "dose-probenecid"]), "dose-adjustment")
    assert "**probenecid** (ordered now)" in card.detail
    assert suggested_dose(card)[1] == "baricitinib 2 MG Oral Tablet"


def test_a_text_only_olumiant_order_with_probenecid(evaluate):
    card = only(evaluate("order-select", "dose-probenecid", ["olumiant-2mg-text-only"]), "dose-adjustment")
    # The order's daily dose is read from its text; the summary names it, the detail what fired.
    assert card.summary == "Reduce baricitinib 2 mg/day to 1 mg once daily: with probenecid"
    [action] = card.suggestions[0].actions
    assert action.resource["id"] == "draft-olumiant"
    assert action.resource["medicationCodeableConcept"]["text"] == "baricitinib 1 MG Oral Tablet"


def test_reduced_egfr_and_probenecid_together_halve_once_and_say_so(evaluate):
    card = only(evaluate("order-select", "dose-probenecid-egfr-45", TWO_MG), "dose-adjustment")
    assert card.summary == "Reduce baricitinib 2 mg/day to 1 mg once daily: eGFR 45, with probenecid"
    assert "both together: halve once, not twice" in card.detail
    assert len(card.suggestions) == 1
    assert suggested_dose(card)[1] == "baricitinib 1 MG Oral Tablet"


# --- age (EU SmPC practice) ------------------------------------------------------------------------------


def test_age_65_on_4_mg_suggests_2_mg_as_eu_practice(evaluate):
    card = only(evaluate("order-select", "dose-age-65", FOUR_MG), "dose-adjustment")
    assert card.indicator == "warning"
    assert card.summary == "Reduce baricitinib 4 mg/day to 2 mg once daily: age 65 (EU practice)"
    assert "**Age 65**: EU label: 2 mg once daily from 65" in card.detail
    assert card.detail.endswith("_US label; the older-patient dose is EU practice, not US label text._")
    assert suggested_dose(card)[1] == "baricitinib 2 MG Oral Tablet"


@pytest.mark.parametrize(("patient", "orders"), [("dose-age-64", FOUR_MG), ("dose-age-65", TWO_MG)])
def test_age_below_65_or_2_mg_needs_no_age_adjustment(evaluate, patient, orders):
    assert dose_cards(evaluate("order-select", patient, orders)) == []


def test_age_65_with_reduced_egfr_suggests_one_dose(evaluate):
    card = only(
        evaluate("medication-prescribe", "dose-age-65-egfr-45", ["dose-baricitinib-4mg-stu3"]),
        "dose-adjustment",
    )
    assert card.summary == "Reduce baricitinib 4 mg/day to 2 mg once daily: eGFR 45, age 65 (EU practice)"
    assert suggested_dose(card)[1] == "baricitinib 2 MG Oral Tablet"


# --- daily dose above the highest labelled dose ----------------------------------------------------------


def test_more_than_4_mg_a_day_is_critical_and_suggests_4_mg(evaluate):
    card = only(evaluate("order-select", "sle-baseline", EIGHT_MG), "dose-adjustment")
    assert card.indicator == "critical"
    assert card.summary == "Reduce baricitinib 8 mg/day to 4 mg once daily: above 4 mg/day"
    assert "above 4 mg, the highest daily dose of any US indication" in card.detail
    assert suggested_dose(card)[1] == "baricitinib 4 MG Oral Tablet"


@pytest.mark.parametrize("orders", [FOUR_MG, ["dose-baricitinib-2mg-twice-daily"]])
def test_exactly_4_mg_a_day_is_not_above_the_maximum(evaluate, orders):
    assert dose_cards(evaluate("order-select", "sle-baseline", orders)) == []


def test_above_the_maximum_with_reduced_egfr_halves_from_4_mg(evaluate):
    card = only(evaluate("order-select", "dose-egfr-45", EIGHT_MG), "dose-adjustment")
    assert card.indicator == "critical"
    assert card.summary == "Reduce baricitinib 8 mg/day to 2 mg once daily: eGFR 45, above 4 mg/day"
    assert "Halved from 4 mg, the highest labelled daily dose." in card.detail
    assert suggested_dose(card)[1] == "baricitinib 2 MG Oral Tablet"


def test_an_unknown_age_is_said_when_it_could_matter(evaluate):
    card = only(evaluate("order-select", "dose-no-birth-date-egfr-45", EIGHT_MG), "dose-adjustment")
    assert "Age unknown (no birth date): the EU older-patient dose check was not done." in card.detail


# --- unknown dose ----------------------------------------------------------------------------------------


def test_an_unknown_dose_is_said_and_no_dose_is_suggested(evaluate):
    card = only(evaluate("order-select", "dose-egfr-45", ["dose-baricitinib-no-dosage"]), "dose-adjustment")
    assert card.indicator == "warning"
    assert card.summary == "Baricitinib dose needs review (dose unknown): eGFR 45"
    assert "Daily dose unknown: no dosage instruction. Check the order; no dose is suggested." in card.detail
    assert card.suggestions is None


def test_an_unknown_dose_in_an_older_patient_asks_for_review(evaluate):
    card = only(evaluate("order-select", "dose-age-65", ["dose-baricitinib-no-dosage"]), "dose-adjustment")
    assert card.summary == "Baricitinib dose needs review (dose unknown): age 65 (EU practice)"
    assert card.suggestions is None


# --- where the rule stays silent -------------------------------------------------------------------------


# --- a chart open of a patient on baricitinib: the renal check against the active order -------------------


def test_kidney_function_falling_on_therapy_to_below_30_is_critical_and_suggests_a_hold(evaluate):
    card = only(evaluate("patient-view", "dose-on-baricitinib-egfr-25"), "dose-adjustment")
    assert card.indicator == "critical"
    assert card.summary == "Baricitinib not recommended: eGFR 25 mL/min/1.73 m2 is below 30"
    [suggestion] = card.suggestions
    assert suggestion.label == "Put baricitinib on hold"
    [action] = suggestion.actions
    assert action.type == "update" and action.resource["id"] == "baricitinib"
    assert action.resource["status"] == "on-hold"
    assert action.resource["statusReason"] == {"text": "eGFR 25 mL/min/1.73 m2 on 2026-11-10"}


def test_kidney_function_30_to_below_60_on_therapy_suggests_the_active_order_at_1_mg(evaluate):
    card = only(evaluate("patient-view", "dose-on-baricitinib-egfr-45"), "dose-adjustment")
    assert card.indicator == "warning"
    assert card.summary == "Reduce baricitinib 2 mg/day to 1 mg once daily: eGFR 45"
    [action] = card.suggestions[0].actions
    assert action.type == "update" and action.resource["id"] == "baricitinib"
    assert action.resource["status"] == "active"


def test_kidney_function_at_60_on_therapy_gives_no_dose_card(evaluate):
    assert dose_cards(evaluate("patient-view", "dose-on-baricitinib-egfr-60")) == []


def test_a_chart_open_checks_only_kidney_function_not_age_interactions_or_the_maximum(evaluate):
    # Probenecid alongside the active order is a prescribing question, not a new finding at each chart open.
    assert dose_cards(evaluate("patient-view", "sle-on-baricitinib")) == []


def test_a_renewal_order_for_a_patient_on_therapy_is_checked(evaluate):
    card = only(evaluate("order-select", "dose-on-baricitinib-egfr-45", TWO_MG), "dose-adjustment")
    assert card.summary == "Reduce baricitinib 2 mg/day to 1 mg once daily: eGFR 45"


def test_an_order_for_another_drug_is_not_checked(evaluate):
    assert dose_cards(evaluate("order-select", "dose-probenecid-egfr-45", ["hydroxychloroquine"])) == []


def test_a_renewal_without_renal_results_says_the_renal_check_was_not_done(evaluate):
    cards = evaluate("order-sign", "dose-renewal-no-renal-labs", ["baricitinib-2mg"])
    assert [c for c in cards if c.topic == "dose-adjustment"] == []
    quality = only(cards, "data-quality")
    assert quality.indicator == "warning"
    assert quality.summary == "Renal dose check not done: no usable eGFR"
    assert "**Not checked: Renal dose check**: no current eGFR or serum creatinine result" in quality.detail
