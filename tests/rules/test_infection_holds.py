"""Infection hold: serious infection, herpes zoster, active TB, untreated latent TB, hepatitis B or C hold
baricitinib in one critical card; an indeterminate IGRA or HBsAg, and a positive HCV antibody alone, go in
a warning review card and are never read as negative."""

from __future__ import annotations

import pytest

from tests.conftest import only

ORDER = ["baricitinib-2mg"]
ALL_BUT_MEDICATIONS = {"patient", "conditions", "observations", "immunizations"}


def infection(cards):
    return [c for c in cards if c.topic == "infection-hold"]


def holds(cards):
    return [c for c in infection(cards) if c.indicator == "critical"]


def reviews(cards):
    return [c for c in infection(cards) if c.indicator == "warning"]


@pytest.mark.parametrize(
    ("patient", "summary", "quoted", "said"),
    [
        ("infection-zoster", "Hold baricitinib: herpes zoster",
         "Herpes zoster (4740000, recorded 2026-11-20), Condition/zoster",
         "until the episode resolves."),
        ("infection-pneumonia-icd", "Hold baricitinib: active serious infection",
         "Pneumonia, unspecified organism (J18.9, recorded 2026-11-22), Condition/pneumonia",
         "serious infection, localized ones included: until controlled."),
        ("infection-active-tb", "Hold baricitinib: active TB",
         "Tuberculosis of lung (A15.0, recorded 2026-11-18), Condition/tb",
         "do not give baricitinib with active TB."),
        ("infection-hepatitis-b", "Hold baricitinib: chronic hepatitis B",
         "Chronic type B viral hepatitis (61977001, recorded 2021-05-01), Condition/hbv",
         "holding is practice, not US label text; the label asks for viral-hepatitis screening"),
        ("infection-hepatitis-c", "Hold baricitinib: chronic hepatitis C",
         "Chronic viral hepatitis C (B18.2, recorded 2022-08-09), Condition/hcv",
         "holding is practice, not US label text; the label asks only for viral-hepatitis screening"),
        ("infection-hbsag-positive", "Hold baricitinib: HBsAg positive",
         "Hepatitis B surface antigen positive (reported 'Positive') on 2026-11-10, Observation/hbsag",
         "read as active hepatitis B; holding is practice, not US label text."),
        ("infection-hbsag-reactive-text", "Hold baricitinib: HBsAg positive",
         "Hepatitis B surface antigen positive (reported 'Reactive') on 2026-11-10, Observation/hbsag",
         "read as active hepatitis B"),
    ],
)  # fmt: skip
def test_each_hold_finding_fires_one_critical_card_naming_its_data(evaluate, patient, summary, quoted, said):
    cards = evaluate("order-select", patient, ORDER)
    [card] = infection(cards)
    assert card.indicator == "critical"
    assert card.summary == summary
    assert quoted in card.detail
    assert said in card.detail
    assert card.selection_behavior == "at-most-one"
    [suggestion] = card.suggestions
    assert suggestion.label == "Remove the baricitinib draft order"
    assert [(a.type, a.resource_id) for a in suggestion.actions] == [("delete", "MedicationRequest/draft-baricitinib")]
    assert card.override_reasons is None


def test_active_tb_is_not_also_reported_as_untreated_latent_tb(evaluate):
    card = only(evaluate("order-sign", "infection-active-tb", ORDER), "infection-hold")
    assert "latent TB" not in card.summary
    assert "Observation/igra" not in card.detail


def test_a_positive_igra_without_treatment_is_latent_tb_not_yet_treated(evaluate):
    card = only(evaluate("order-sign", "infection-igra-positive", ORDER), "infection-hold")
    assert card.indicator == "critical"
    assert card.summary == "Hold baricitinib: latent TB not yet treated"
    assert "TB interferon-gamma release assay positive (reported 'Positive') on 2026-11-10, Observation/igra" in card.detail
    assert "treat latent TB before use" in card.detail
    assert "No latent-TB treatment is active or recorded as completed" in card.detail
    assert "a later negative IGRA does not undo a positive one" in card.detail


def test_a_latent_tb_condition_holds_even_with_a_negative_igra(evaluate):
    card = only(evaluate("order-sign", "infection-latent-tb-condition", ORDER), "infection-hold")
    assert "Latent tuberculosis (Z22.7, recorded 2026-11-12), Condition/ltbi" in card.detail
    assert "Observation/igra" not in card.detail


@pytest.mark.parametrize(
    "patient", ["infection-igra-positive-treated-30-days", "infection-igra-positive-treatment-completed",
                "infection-igra-positive-ltbi-history"],
    ids=["under-way-30-days", "course-completed", "Z86.15-history"],
)  # fmt: skip
def test_latent_tb_treated_for_a_month_or_completed_lifts_the_hold(evaluate, patient):
    assert infection(evaluate("order-sign", patient, ORDER)) == []


@pytest.mark.parametrize(
    ("patient", "since"),
    [("infection-igra-positive-treated", "2026-11-12"), ("infection-igra-positive-treated-29-days", "2026-10-27")],
    ids=["13-days", "29-days"],
)
def test_latent_tb_treatment_begun_less_than_a_month_ago_keeps_the_hold_and_says_it_is_practice(evaluate, patient, since):
    card = only(evaluate("order-sign", patient, ORDER), "infection-hold")
    assert card.indicator == "critical"
    assert f"Latent-TB treatment under way (isoniazid since {since}): guideline practice (ACR)" in card.detail


def test_stopped_latent_tb_treatment_does_not_count(evaluate):
    assert len(holds(evaluate("order-sign", "infection-igra-positive-treatment-stopped", ORDER))) == 1


def test_latent_tb_treatment_ordered_together_with_baricitinib_does_not_lift_the_hold(evaluate):
    card = only(evaluate("order-sign", "infection-igra-positive", ORDER + ["infection-isoniazid"]), "infection-hold")
    assert card.indicator == "critical"
    assert "Being ordered now, not yet started: isoniazid (MedicationRequest/draft-isoniazid)." in card.detail
    assert "treat latent TB before use" in card.detail


def test_without_the_medication_list_latent_tb_treatment_is_said_to_be_unchecked(evaluate):
    cards = evaluate("order-sign", "infection-igra-positive", ORDER, prefetch_keys=ALL_BUT_MEDICATIONS)
    card = only(cards, "infection-hold")
    assert "could not be retrieved, so whether latent TB is being treated could not be checked" in card.detail
    assert "No latent-TB treatment is active" not in card.detail


def test_a_positive_igra_past_its_look_back_window_still_holds(evaluate):
    card = only(evaluate("order-sign", "infection-igra-positive-stale", ORDER), "infection-hold")
    assert "positive (reported 'Positive') on 2024-03-05, Observation/igra" in card.detail


@pytest.mark.parametrize(
    ("patient", "positive"),
    [("infection-igra-older-positive", "on 2025-01-15, Observation/igra-2025"),
     ("infection-igra-newer-positive", "on 2026-11-10, Observation/igra")],
    ids=["later-negative-does-not-erase-it", "newer-positive"],
)  # fmt: skip
def test_a_positive_igra_holds_whatever_came_after_it(evaluate, patient, positive):
    card = only(evaluate("order-sign", patient, ORDER), "infection-hold")
    assert positive in card.detail


def test_a_positive_result_entered_in_error_is_ignored(evaluate):
    assert infection(evaluate("order-sign", "infection-igra-positive-entered-in-error", ORDER)) == []


@pytest.mark.parametrize(
    ("patient", "summary", "quoted"),
    [
        ("infection-igra-indeterminate", "Before baricitinib, review: IGRA indeterminate (not negative)",
         "TB interferon-gamma release assay indeterminate (reported 'Inconclusive') on 2026-11-10, Observation/igra"),
        ("infection-igra-indeterminate-text", "Before baricitinib, review: IGRA indeterminate (not negative)",
         "TB interferon-gamma release assay indeterminate (reported 'Indeterminate') on 2026-11-10"),
        ("infection-hbsag-indeterminate", "Before baricitinib, review: HBsAg indeterminate (not negative)",
         "Hepatitis B surface antigen indeterminate (reported 'Inconclusive') on 2026-11-10, Observation/hbsag"),
        ("infection-hcv-ab-positive", "Before baricitinib, review: HCV antibody positive (needs confirmation)",
         "Hepatitis C antibody positive (reported 'Positive') on 2026-11-10, Observation/hcv-ab"),
    ],
)  # fmt: skip
def test_results_needing_a_second_look_are_a_warning_never_negative_and_never_a_hold(evaluate, patient, summary, quoted):
    cards = evaluate("order-sign", patient, ORDER)
    assert holds(cards) == []
    [card] = reviews(cards)
    assert card.summary == summary
    assert quoted in card.detail
    assert "**These results are not negative.**" in card.detail
    assert card.suggestions is None


def test_a_positive_hcv_antibody_is_said_to_need_confirmation(evaluate):
    card = only(evaluate("order-sign", "infection-hcv-ab-positive", ORDER), "infection-hold")
    assert "a screening result, not proof of current infection" in card.detail
    assert "confirm it per clinical guidelines" in card.detail


def test_an_uninterpretable_igra_is_left_to_the_data_quality_card(evaluate):
    cards = evaluate("order-sign", "infection-igra-unreadable", ORDER)
    assert infection(cards) == []
    assert "'see scanned report'" in only(cards, "data-quality").detail


def test_several_findings_make_one_hold_card_and_one_review_card(evaluate):
    cards = evaluate("order-sign", "infection-several", ORDER)
    [hold] = holds(cards)
    assert hold.summary == "Hold baricitinib: active serious infection, herpes zoster, HBsAg positive"
    for quoted in ("Condition/pneumonia", "Condition/zoster", "Observation/hbsag"):
        assert quoted in hold.detail
    [review] = reviews(cards)
    assert review.summary == (
        "Before baricitinib, review: IGRA indeterminate (not negative), HCV antibody positive (needs confirmation)"
    )
    assert len(review.summary) < 140


def test_a_long_list_of_findings_is_shortened_to_fit_the_summary():
    from cds_service.rules import fit_list

    items = [f"finding number {n} with a long name" for n in range(6)]
    summary = fit_list("Hold baricitinib: {findings}", "findings", items)
    assert len(summary) <= 139
    assert summary.endswith("and 3 more")
    assert fit_list("Hold baricitinib: {findings}", "findings", items[:2]) == (
        "Hold baricitinib: finding number 0 with a long name, finding number 1 with a long name"
    )


@pytest.mark.parametrize("patient", ["infection-zoster-resolved", "infection-zoster-refuted", "sle-baseline"])
def test_resolved_refuted_or_no_infection_is_silent(evaluate, patient):
    assert infection(evaluate("order-sign", patient, ORDER)) == []


def test_patient_view_on_baricitinib_suggests_holding_the_active_order(evaluate):
    card = only(evaluate("patient-view", "infection-zoster-on-baricitinib"), "infection-hold")
    assert card.indicator == "critical"
    assert card.summary == "Hold baricitinib: herpes zoster"
    [suggestion] = card.suggestions
    assert suggestion.label == "Put baricitinib on hold"
    [action] = suggestion.actions
    assert action.type == "update"
    assert action.resource["id"] == "baricitinib"
    assert action.resource["status"] == "on-hold"
    assert action.resource["statusReason"] == {"text": "infection hold: herpes zoster"}


def test_patient_view_latent_tb_on_baricitinib_is_a_hold(evaluate):
    card = only(evaluate("patient-view", "infection-igra-positive-on-baricitinib"), "infection-hold")
    assert card.summary == "Hold baricitinib: latent TB not yet treated"


@pytest.mark.parametrize(
    ("hook", "patient", "orders"),
    [
        ("patient-view", "infection-zoster", None),  # not on baricitinib
        ("order-sign", "infection-zoster", ["hydroxychloroquine"]),  # another drug
    ],
)
def test_silent_where_the_rule_does_not_run(evaluate, hook, patient, orders):
    assert infection(evaluate(hook, patient, orders)) == []


def test_a_positive_core_antibody_with_a_negative_hbsag_asks_for_hbv_dna_monitoring_not_a_hold(evaluate):
    cards = [c for c in evaluate("order-select", "infection-anti-hbc-positive", ["baricitinib-4mg"]) if c.topic == "infection-hold"]
    assert len(cards) == 1 and cards[0].indicator == "warning" and not cards[0].suggestions
    assert "HBV core antibody positive: monitor HBV DNA" in cards[0].summary
    assert "Hepatitis B core antibody positive (reported 'Positive') on 2026-11-10, Observation/anti-hbc" in cards[0].detail
    assert "monitor HBV DNA; if HBV DNA is detected, consult a hepatologist" in cards[0].detail


# --- false positives a reviewer found ------------------------------------------------------------------------


@pytest.mark.parametrize("patient", ["infection-zoster-recorded-90-days-ago", "infection-zoster-myelitis"])
def test_a_zoster_episode_of_the_last_90_days_or_myelitis_holds(evaluate, patient):
    assert len(holds(evaluate("order-sign", patient, ORDER))) == 1


def test_post_herpetic_neuralgia_is_not_active_zoster(evaluate):
    assert infection(evaluate("order-sign", "infection-postherpetic-neuralgia", ORDER)) == []


@pytest.mark.parametrize(
    ("patient", "date"),
    [("infection-zoster-recorded-91-days-ago", "2026-08-26"), ("infection-zoster-onset-long-ago", "2024-03-01")],
)
def test_an_acute_infection_dated_long_ago_and_still_active_is_asked_about_not_held(evaluate, patient, date):
    cards = evaluate("order-sign", patient, ORDER)
    assert holds(cards) == []
    [review] = reviews(cards)
    assert review.summary == f"Before baricitinib, review: herpes zoster recorded {date}: check whether still active"
    assert "if the episode is over, resolve the entry" in review.detail
