"""Vaccination reminder: influenza and COVID-19 this season, pneumococcal (PCV20/PCV21, or PCV15 then PPSV23),
recombinant zoster (2 valid doses), their ages and intervals at the boundaries, a list too long for the card
cut to "and N more", and silence when the immunization record could not be had."""

from __future__ import annotations

from datetime import date

import pytest

from cds_service.cards import word_count
from cds_service.rules.vaccination_reminders import season_start
from tests.conftest import only

ORDER = ["baricitinib-2mg"]
TOPIC = "vaccination-reminder"
NO_IMMUNIZATIONS = {"patient", "conditions", "observations", "medications"}


def reminders(cards):
    return [c for c in cards if c.topic == TOPIC]


def ordered_cvx(card):
    """The CVX code of each vaccine the card's suggestions would create, in order."""
    found = []
    for suggestion in card.suggestions or []:
        for action in suggestion.actions:
            assert action.type == "create" and action.resource["resourceType"] == "MedicationRequest"
            assert action.resource["subject"] == {"reference": "Patient/sle-baseline"}
            [coding] = action.resource["medicationCodeableConcept"]["coding"]
            assert coding["system"] == "http://hl7.org/fhir/sid/cvx"
            found.append(coding["code"])
    return found


# --- the complete record and the hooks where the rule is silent ---------------------------------


@pytest.mark.parametrize(
    ("hook", "patient", "orders"),
    [
        ("order-select", "sle-baseline", ORDER),
        ("order-sign", "sle-baseline", ORDER),
        ("patient-view", "sle-on-baricitinib", []),
    ],
)
def test_a_complete_record_gives_no_reminder(evaluate, hook, patient, orders):
    assert reminders(evaluate(hook, patient, orders)) == []


@pytest.mark.parametrize(
    ("hook", "patient", "orders"),
    [
        ("patient-view", "vaccines-none", []),  # not on baricitinib
        ("order-select", "vaccines-none", ["hydroxychloroquine"]),  # another drug, not on baricitinib
        ("order-select", "vaccines-none-on-baricitinib", ["hydroxychloroquine"]),  # another drug, on baricitinib
    ],
)
def test_no_reminder_outside_a_baricitinib_order_or_a_patient_on_it(evaluate, hook, patient, orders):
    assert reminders(evaluate(hook, patient, orders)) == []


# --- nothing documented ---------------------------------------------------------------------------


def test_nothing_documented_lists_every_vaccine_and_orders_the_non_covid_ones(evaluate):
    card = only(evaluate("order-select", "vaccines-none", ORDER), TOPIC)
    assert card.indicator == "info"
    assert card.summary == "Vaccines to update: influenza, COVID-19 (discuss), pneumococcal, zoster (RZV)"
    assert len(card.summary) < 140
    assert card.selection_behavior == "any"
    assert ordered_cvx(card) == ["140", "216", "187"]
    assert [s.label for s in card.suggestions] == [
        "Order Influenza, split virus, trivalent, PF",
        "Order Pneumococcal conjugate PCV20",
        "Order Zoster vaccine recombinant (RZV)",
    ]
    assert card.detail.startswith("Give non-live vaccines ≥ 2 weeks before starting (ACIP):")
    assert "- **influenza**: none since 2026-08-01; inactivated or recombinant, not live." in card.detail
    assert "- **COVID-19 (discuss)**: none since 2026-08-01. Shared decision: no order." in card.detail
    assert "- **pneumococcal**: none; PCV20 or PCV21 (or PCV15, then PPSV23)." in card.detail
    assert "- **zoster (RZV)**: none; 2 doses, 1-2 months apart." in card.detail
    assert card.detail.count("- 2025-26 guidance: check CDC for 2026-27.") == 1  # once for influenza and COVID-19
    assert card.detail.endswith("_US label; vaccine schedules are practice (ACIP, ACR)._")
    assert any("hold JAK inhibitors 1-2 weeks after each dose" in link.label for link in card.links)
    assert card.source.url.startswith("https://dailymed.nlm.nih.gov/")
    assert card.source.topic.code == TOPIC


def test_on_patient_view_a_patient_on_baricitinib_gets_the_reminder(evaluate):
    card = only(evaluate("patient-view", "vaccines-none-on-baricitinib"), TOPIC)
    assert card.detail.startswith("Patient on baricitinib; non-live vaccines to update:")
    assert ordered_cvx(card) == ["140", "216", "187"]


def test_a_new_order_for_a_patient_already_on_baricitinib_is_not_called_a_start(evaluate):
    card = only(evaluate("order-select", "vaccines-none-on-baricitinib", ORDER), TOPIC)
    assert card.detail.startswith("Patient on baricitinib; non-live vaccines to update:")
    assert ordered_cvx(card) == ["140", "216", "187"]


def test_unavailable_immunizations_give_no_reminder_and_the_data_quality_card_says_so(evaluate):
    cards = evaluate("order-select", "vaccines-none", ORDER, prefetch_keys=NO_IMMUNIZATIONS)
    assert reminders(cards) == []
    quality = only(cards, "data-quality")
    assert "Not checked: Vaccination reminder" in quality.detail
    assert "immunizations" in quality.detail


def test_a_vaccine_ordered_in_the_same_request_counts_as_addressed(evaluate):
    card = only(evaluate("order-select", "vaccines-none", [*ORDER, "vaccines-influenza-order", "vaccines-pcv20-order"]), TOPIC)
    assert card.summary == "Vaccines to update: COVID-19 (discuss), zoster (RZV)"
    assert ordered_cvx(card) == ["187"]


# --- influenza: this season ----------------------------------------------------------------------


def test_influenza_the_day_before_the_season_start_is_last_season(evaluate):
    card = only(evaluate("order-select", "vaccines-flu-before-season", ORDER), TOPIC)
    assert card.summary == "Vaccines to update: influenza"
    assert "- **influenza**: none since 2026-08-01" in card.detail
    assert ordered_cvx(card) == ["140"]


def test_influenza_on_the_season_start_counts(evaluate):
    assert reminders(evaluate("order-select", "vaccines-flu-season-start", ORDER)) == []


def test_an_influenza_dose_entered_in_error_does_not_count(evaluate):
    card = only(evaluate("order-select", "vaccines-flu-entered-in-error", ORDER), TOPIC)
    assert card.summary == "Vaccines to update: influenza"
    assert "- **influenza**: none since 2026-08-01" in card.detail


def test_a_live_intranasal_influenza_dose_is_not_the_non_live_vaccine(evaluate):
    card = only(evaluate("order-select", "vaccines-flu-live-only", ORDER), TOPIC)
    assert card.summary == "Vaccines to update: influenza"
    assert "inactivated or recombinant, not live" in card.detail


def test_a_new_season_makes_last_seasons_influenza_and_covid_doses_due(evaluate):
    card = only(evaluate("order-select", "sle-baseline", ORDER, as_of=date(2027, 8, 1)), TOPIC)
    assert card.summary == "Vaccines to update: influenza, COVID-19 (discuss)"
    assert "none since 2027-08-01" in card.detail


def test_the_season_still_runs_the_day_before_its_next_start(evaluate):
    assert reminders(evaluate("order-select", "sle-baseline", ORDER, as_of=date(2027, 7, 31))) == []


@pytest.mark.parametrize(
    ("as_of", "start"),
    [(date(2026, 11, 25), date(2026, 8, 1)), (date(2027, 7, 31), date(2026, 8, 1)), (date(2027, 8, 1), date(2027, 8, 1))],
)
def test_season_start(as_of, start):
    assert season_start(as_of, 8) == start


def test_influenza_from_age_65_orders_the_high_dose_vaccine(evaluate):
    card = only(evaluate("order-select", "vaccines-age-65-no-flu", ORDER), TOPIC)
    assert ordered_cvx(card) == ["135"]
    assert card.suggestions[0].label == "Order Influenza, high-dose, trivalent, PF"


def test_influenza_at_age_64_orders_the_standard_vaccine(evaluate):
    card = only(evaluate("order-select", "vaccines-age-64-no-flu", ORDER), TOPIC)
    assert ordered_cvx(card) == ["140"]


# --- COVID-19 --------------------------------------------------------------------------------------


def test_covid_last_season_is_a_discussion_without_an_order(evaluate):
    card = only(evaluate("order-select", "vaccines-covid-last-season", ORDER), TOPIC)
    assert card.summary == "Vaccines to update: COVID-19 (discuss)"
    assert "- **COVID-19 (discuss)**: none since 2026-08-01. Shared decision: no order." in card.detail
    assert card.suggestions is None and card.selection_behavior is None


# --- pneumococcal ----------------------------------------------------------------------------------


@pytest.mark.parametrize("patient", ["vaccines-pcv21", "vaccines-pcv15-then-ppsv23", "sle-baseline"])
def test_a_complete_pneumococcal_series_gives_no_reminder(evaluate, patient):
    assert reminders(evaluate("order-select", patient, ORDER)) == []


def test_pcv15_alone_makes_ppsv23_due(evaluate):
    card = only(evaluate("order-select", "vaccines-pcv15-only", ORDER), TOPIC)
    assert card.summary == "Vaccines to update: pneumococcal"
    assert "PCV15 2026-06-01; PPSV23 due from 2026-07-27 (immunocompromised: 8 weeks after)." in card.detail
    assert ordered_cvx(card) == ["33"]


def test_ppsv23_less_than_8_weeks_after_pcv15_is_not_yet_ordered(evaluate):
    # PCV15 on 2026-10-01: 55 days before 2026-11-25
    card = only(evaluate("order-select", "vaccines-pcv15-recent", ORDER), TOPIC)
    assert "PPSV23 not before 2026-11-26 (immunocompromised: 8 weeks after)." in card.detail
    assert card.suggestions is None


def test_ppsv23_exactly_8_weeks_after_pcv15_is_ordered(evaluate):
    card = only(evaluate("order-select", "vaccines-pcv15-recent", ORDER, as_of=date(2026, 11, 26)), TOPIC)
    assert "PPSV23 due from 2026-11-26" in card.detail
    assert ordered_cvx(card) == ["33"]


def test_ppsv23_alone_a_year_ago_makes_pcv20_or_pcv21_due(evaluate):
    card = only(evaluate("order-select", "vaccines-ppsv23-only", ORDER), TOPIC)
    assert card.summary == "Vaccines to update: pneumococcal"
    assert "PPSV23 2025-01-10; PCV20 or PCV21 due since 2026-01-10 (1 year after)." in card.detail
    assert ordered_cvx(card) == ["216"]


@pytest.mark.parametrize(
    ("patient", "due"), [("vaccines-pcv13-364-days", False), ("vaccines-pcv13-365-days", True)],
)
def test_pcv13_alone_makes_pcv20_or_pcv21_due_a_year_later(evaluate, patient, due):
    card = only(evaluate("order-select", patient, ORDER), TOPIC)
    assert card.summary == "Vaccines to update: pneumococcal"
    assert "PCV13 " in card.detail and "(1 year after)" in card.detail
    assert (ordered_cvx(card) == ["216"]) is due
    assert ("PCV20 or PCV21 not before" in card.detail) is not due


def test_pcv13_and_ppsv23_ask_for_current_guidance_without_an_order(evaluate):
    card = only(evaluate("order-select", "vaccines-pcv13-and-ppsv23", ORDER), TOPIC)
    assert "PCV13 and PPSV23, no PCV20 or PCV21: check ACIP; no order." in card.detail
    assert card.suggestions is None


def test_ppsv23_before_pcv15_asks_for_review_without_an_order(evaluate):
    card = only(evaluate("order-select", "vaccines-ppsv23-then-pcv15", ORDER), TOPIC)
    assert "PPSV23 2025-01-10 came before PCV15, not after: check ACIP; no order." in card.detail
    assert card.suggestions is None


# --- recombinant zoster ----------------------------------------------------------------------------


def test_one_rzv_dose_makes_the_second_due(evaluate):
    card = only(evaluate("order-select", "vaccines-rzv-one-dose", ORDER), TOPIC)
    assert card.summary == "Vaccines to update: zoster (RZV)"
    assert "1 of 2 valid doses, last 2025-03-01." in card.detail
    assert ordered_cvx(card) == ["187"]


def test_a_second_rzv_dose_27_days_after_the_first_does_not_count(evaluate):
    card = only(evaluate("order-select", "vaccines-rzv-27-days-apart", ORDER), TOPIC)
    assert "The 2025-03-28 dose came 27 days after the previous one: does not count." in card.detail
    assert "1 of 2 valid doses, last 2025-03-28." in card.detail
    assert ordered_cvx(card) == ["187"]


def test_a_second_rzv_dose_28_days_after_the_first_counts(evaluate):
    assert reminders(evaluate("order-select", "vaccines-rzv-28-days-apart", ORDER)) == []


def test_a_dose_repeated_after_a_too_short_interval_completes_the_series(evaluate):
    assert reminders(evaluate("order-select", "vaccines-rzv-repeated-after-short-interval", ORDER)) == []


def test_a_recent_first_rzv_dose_is_not_yet_followed_by_an_order(evaluate):
    card = only(evaluate("order-select", "vaccines-rzv-recent-first-dose", ORDER), TOPIC)
    assert "Next not before 2026-12-08 (4 weeks after)." in card.detail
    assert card.suggestions is None


def test_two_records_of_one_day_are_one_rzv_dose(evaluate):
    card = only(evaluate("order-select", "vaccines-rzv-duplicate-record", ORDER), TOPIC)
    assert "1 of 2 valid doses" in card.detail
    assert "does not count" not in card.detail


def test_an_rzv_dose_entered_in_error_does_not_count(evaluate):
    card = only(evaluate("order-select", "vaccines-rzv-second-entered-in-error", ORDER), TOPIC)
    assert "1 of 2 valid doses, last 2025-03-01." in card.detail


# --- age ---------------------------------------------------------------------------------------


def test_at_18_there_is_no_pneumococcal_or_zoster_reminder(evaluate):
    assert reminders(evaluate("order-select", "vaccines-age-18", ORDER)) == []


def test_at_19_pneumococcal_zoster_and_hpv_are_due(evaluate):
    card = only(evaluate("order-select", "vaccines-age-19", ORDER), TOPIC)
    assert card.summary == "Vaccines to update: pneumococcal, zoster (RZV), HPV"
    assert ordered_cvx(card) == ["216", "187", "165"]
    assert "Age not recorded" not in card.detail


def test_an_unknown_age_reminds_and_says_the_age_is_missing(evaluate):
    card = only(evaluate("order-select", "vaccines-age-unknown", ORDER), TOPIC)
    assert card.summary == "Vaccines to update: pneumococcal, zoster (RZV)"
    assert "- Age not recorded: hepatitis B, HPV and RSV not checked." in card.detail


# --- hepatitis B, HPV and RSV by age; the season's guidance ------------------------------------------------------


@pytest.mark.parametrize(
    ("patient", "missing", "cvx"),
    [("vaccines-hepb-none", "hepatitis B", ["189"]), ("vaccines-hepb-one-cpg-dose", "hepatitis B", ["189"]),
     ("vaccines-age-26", "HPV", ["165"]), ("vaccines-age-75", "RSV", ["326"]), ("vaccines-age-74", "RSV", [])],
    ids=["hepb-none-at-36", "hepb-one-of-two-doses", "hpv-at-26", "rsv-at-75-ordered", "rsv-at-74-a-decision"],
)  # fmt: skip
def test_age_banded_vaccines(evaluate, patient, missing, cvx):
    card = only(evaluate("order-select", patient, ORDER), TOPIC)
    assert missing in card.summary
    assert [c for c in ordered_cvx(card) if c in ("189", "165", "326")] == cvx


@pytest.mark.parametrize(
    ("patient", "absent"),
    [("vaccines-age-27", "HPV"), ("vaccines-hepb-anti-hbc-positive", "hepatitis B"), ("vaccines-age-49", "RSV"),
     ("vaccines-age-60-no-hepb", "hepatitis B")],
    ids=["hpv-not-at-27", "hepb-not-after-past-infection", "rsv-not-below-50", "hepb-not-from-60"],
)  # fmt: skip
def test_no_age_banded_reminder_outside_its_band_or_after_infection(evaluate, patient, absent):
    cards = [c for c in evaluate("order-select", patient, ORDER) if c.topic == TOPIC]
    assert all(absent not in c.summary for c in cards)


def test_guidance_for_the_current_season_is_not_called_stale(evaluate):
    # As of 2026-03-01 the season is 2025-26, the season of the influenza and COVID-19 texts.
    card = only(evaluate("order-select", "vaccines-none", ORDER, as_of=date(2026, 3, 1)), TOPIC)
    assert "check CDC" not in card.detail


def test_a_list_too_long_for_the_card_ends_with_and_n_more_and_still_orders_every_vaccine(evaluate):
    # At 19, a year on: influenza, COVID-19, pneumococcal, zoster and HPV are all due.
    card = only(evaluate("order-select", "vaccines-age-19", ORDER, as_of=date(2027, 8, 1)), TOPIC)
    assert card.summary == "Vaccines to update: influenza, COVID-19 (discuss), pneumococcal, zoster (RZV), HPV"
    assert "\n- and 1 more.\n" in card.detail and "**HPV**" not in card.detail
    assert "- 2025-26 guidance: check CDC for 2027-28." in card.detail  # the notes are kept
    assert word_count(card.detail) <= 60
    assert ordered_cvx(card) == ["140", "216", "187", "165"]
