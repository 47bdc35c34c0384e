"""Monitoring due (practice schedule: weeks 4 and 12, then every 3 months): overdue CBC and ALT/AST, a
result on and just before the early allowance, the grace period after a time point, unreadable and
entered-in-error results, an unknown start, and the hooks where it stays silent."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import only

CBC_PANEL, ALT, AST = "57021-8", "1742-6", "1920-8"


def monitoring_cards(cards):
    return [c for c in cards if c.topic == "monitoring-due"]


def ordered(card) -> list[str]:
    [suggestion] = card.suggestions
    for action in suggestion.actions:
        assert action.type == "create" and action.resource["resourceType"] == "ServiceRequest"
    return [a.resource["code"]["coding"][0]["code"] for a in suggestion.actions]


def test_recent_monitoring_is_quiet(evaluate):
    # On baricitinib since 2026-05-01: the check due on 2026-10-24 is covered by the results of 2026-11-10.
    assert monitoring_cards(evaluate("patient-view", "sle-on-baricitinib")) == []


def test_an_overdue_cbc_is_named_with_its_last_result_and_ordered(evaluate):
    card = only(evaluate("patient-view", "monitoring-cbc-overdue"), "monitoring-due")
    assert card.indicator == "info"
    assert card.summary == "Order overdue monitoring: CBC with differential (due 2026-10-24)"
    assert "Schedule: weeks 4 and 12 after the start, then every 3 months; on baricitinib since 2026-05-01." in card.detail
    assert "A result from 2026-10-17 or later counts." in card.detail
    assert "- **CBC with differential**: last 2026-10-01" in card.detail
    assert card.detail.endswith("_Practice rule, not US label text._")
    assert card.selection_behavior == "at-most-one"
    assert ordered(card) == [CBC_PANEL]


def test_a_result_on_the_first_day_of_the_allowance_covers_the_check(evaluate):
    assert monitoring_cards(evaluate("patient-view", "monitoring-cbc-on-allowance")) == []


def test_a_result_one_day_earlier_does_not(evaluate):
    card = only(evaluate("patient-view", "monitoring-cbc-day-before-allowance"), "monitoring-due")
    assert "- **CBC with differential**: last 2026-10-16" in card.detail
    assert ordered(card) == [CBC_PANEL]


def test_week_4_is_overdue_14_days_after_it(evaluate):
    # Started 2026-10-14: week 4 is 2026-11-11, 14 days before 2026-11-25; the last labs predate the start.
    card = only(evaluate("patient-view", "monitoring-week-4-overdue"), "monitoring-due")
    assert card.summary == "Order overdue monitoring: CBC with differential, ALT, AST (due 2026-11-11)"
    assert "- **ALT**: last 2026-10-01" in card.detail
    assert ordered(card) == [CBC_PANEL, ALT, AST]


def test_week_4_within_its_grace_period_is_not_yet_overdue(evaluate):
    assert (
        monitoring_cards(evaluate("patient-view", "monitoring-week-4-in-grace")) == []
    )  # week 4 is 2026-11-12


def test_later_time_points_follow_every_3_months_after_week_12(evaluate):
    # Started 2026-05-01: week 12 is 2026-07-24, then 2026-10-24 and 2027-01-24; on 2027-02-07 the check of
    # 2027-01-24 is overdue, and the results of 2026-11-10 no longer cover it.
    card = only(evaluate("patient-view", "sle-on-baricitinib", as_of=date(2027, 2, 7)), "monitoring-due")
    assert "(due 2027-01-24)" in card.summary
    assert monitoring_cards(evaluate("patient-view", "sle-on-baricitinib", as_of=date(2027, 2, 6))) == []


@pytest.mark.parametrize(
    ("patient", "why"),
    [
        (
            "monitoring-alt-unreadable",
            "unreadable, does not count: ALT 22 mg of 2026-11-10",
        ),
        ("monitoring-alt-entered-in-error", "none on record"),
    ],
)
def test_an_unreadable_or_entered_in_error_result_counts_as_not_done(evaluate, patient, why):
    card = only(evaluate("patient-view", patient), "monitoring-due")
    assert card.summary == "Order overdue monitoring: ALT (due 2026-10-24)"
    assert f"- **ALT**: {why}" in card.detail
    assert ordered(card) == [ALT]


def test_an_unknown_start_date_says_nothing(evaluate):
    assert monitoring_cards(evaluate("patient-view", "monitoring-start-unknown")) == []


def test_order_hooks_never_show_monitoring_due(evaluate):
    assert monitoring_cards(evaluate("order-select", "monitoring-cbc-overdue", ["baricitinib-2mg"])) == []


def test_a_patient_not_on_baricitinib_gets_no_monitoring_card(evaluate):
    assert monitoring_cards(evaluate("patient-view", "sle-baseline")) == []


def test_when_lab_results_could_not_be_fetched_nothing_is_said_to_be_overdue(evaluate):
    keys = {"patient", "conditions", "immunizations", "medications"}
    cards = evaluate("patient-view", "monitoring-cbc-overdue", prefetch_keys=keys)
    assert monitoring_cards(cards) == []
    assert "Monitoring tests overdue" in only(cards, "data-quality").detail


# --- periodic TB evaluation during therapy --------------------------------------------------------------------


def test_a_negative_igra_a_year_old_makes_the_tb_test_due_as_practice(evaluate):
    card = only(evaluate("patient-view", "monitoring-igra-due"), "monitoring-due")
    assert card.summary == "Order overdue monitoring: TB IGRA (due 2026-11-11)"
    assert "- **TB IGRA**: last 2025-11-11; label: TB testing during therapy; yearly is practice" in card.detail
    assert ordered(card) == ["71773-6"]


@pytest.mark.parametrize("patient", ["monitoring-igra-not-yet-due", "infection-igra-positive-on-baricitinib"],
                         ids=["a-day-short-of-due", "known-positive-is-not-re-tested"])  # fmt: skip
def test_no_tb_test_before_it_is_due_or_after_a_positive(evaluate, patient):
    assert all("TB IGRA" not in c.summary for c in evaluate("patient-view", patient) if c.topic == "monitoring-due")


def test_the_labs_of_one_test_are_named_when_they_differ(content):
    from datetime import datetime

    from cds_service.facts import LabReading, LabResult
    from cds_service.rules.monitoring_due import _why

    anc = LabResult("anc", "ANC", 3200, "/uL", "3.2", datetime(2026, 10, 1), "Observation/anc")
    readings = [LabReading("anc", "ANC", "stale", anc), LabReading("hemoglobin", "Hemoglobin", "missing")]
    assert _why(content.rules["monitoring_due"], readings) == "ANC last 2026-10-01; Hemoglobin none on record"


def test_renal_function_is_monitored_and_either_a_creatinine_or_an_egfr_will_do(evaluate):
    # The label asks to monitor renal function, and the dose is set by eGFR: on the same practice schedule.
    assert monitoring_cards(evaluate("patient-view", "monitoring-egfr-only")) == []
    card = only(evaluate("patient-view", "monitoring-renal-overdue"), "monitoring-due")
    assert card.summary == "Order overdue monitoring: creatinine/eGFR (due 2026-10-24)"
    assert ordered(card) == ["2160-0"]
