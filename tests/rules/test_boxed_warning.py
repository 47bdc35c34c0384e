"""Boxed-warning risks at a new start: each population the boxed warning names that the chart shows (age 50 or
over with a cardiovascular risk factor, smoking, arterial disease, malignancy other than NMSC, venous thrombosis
or antiphospholipid syndrome), with its date, in one warning card; silent for refills and other drugs."""

from __future__ import annotations

import pytest

from tests.conftest import only

ORDER = ["baricitinib-4mg"]
ALL_BUT_CONDITIONS = {"patient", "observations", "immunizations", "medications", "encounters"}


def boxed(cards):
    return [c for c in cards if c.topic == "boxed-warning-risk"]


@pytest.mark.parametrize(
    ("patient", "summary", "quoted"),
    [
        ("thrombosis-dvt-resolved", "Boxed-warning risks before baricitinib: DVT/PE",
         "Deep venous thrombosis (128053003, recorded 2018-06-14), Condition/dvt"),
        ("thrombosis-pe-history-icd", "Boxed-warning risks before baricitinib: DVT/PE",
         "Personal history of pulmonary embolism (Z86.711, recorded 2020-02-03), Condition/pe"),
        ("thrombosis-aps-icd", "Boxed-warning risks before baricitinib: antiphospholipid syndrome",
         "Antiphospholipid syndrome (D68.61, recorded 2017-09-30), Condition/aps"),
        ("thrombosis-sle-associated-aps", "Boxed-warning risks before baricitinib: antiphospholipid syndrome",
         "SLE-associated antiphospholipid syndrome (402865003, recorded 2019-03-01), Condition/sle"),
        ("boxed-breast-cancer", "Boxed-warning risks before baricitinib: malignancy",
         "Malignant neoplasm of unspecified site of right female breast (C50.911, recorded 2026-09-01), Condition/cancer"),
        ("boxed-former-smoker", "Boxed-warning risks before baricitinib: former smoker",
         "Smoking status former (reported 'Former smoker') on 2026-06-01, Observation/smoking"),
    ],
)  # fmt: skip
def test_each_boxed_warning_population_warns_with_its_data(evaluate, patient, summary, quoted):
    card = only(evaluate("order-sign", patient, ORDER), "boxed-warning-risk")
    assert (card.indicator, card.summary) == ("warning", summary)
    assert quoted in card.detail
    assert card.suggestions is None


def test_prior_stroke_and_mi_a_current_smoker_and_breast_cancer_are_listed_in_one_card(evaluate):
    card = only(evaluate("order-select", "boxed-stroke-mi-smoker-cancer", ORDER), "boxed-warning-risk")
    assert card.summary == (
        "Boxed-warning risks before baricitinib: age 62 with a cardiovascular risk factor, MI, stroke or arterial "
        "disease, current smoker and 1 more"
    )
    for quoted in ("Cerebral infarction, unspecified (I63.9, recorded 2024-05-10), Condition/stroke",
                   "Old myocardial infarction (I25.2, recorded 2021-01-15), Condition/mi",
                   "Smoking status current (reported 'Current every day smoker') on 2026-11-01, Observation/smoking",
                   "(C50.911, recorded 2026-09-01), Condition/cancer"):  # fmt: skip
        assert quoted in card.detail
    assert "higher rates of lymphoma and lung cancer" in " ".join(card.detail.split())


@pytest.mark.parametrize(
    ("patient", "older"),
    [("boxed-age-50-diabetes", True), ("boxed-age-49-diabetes", False)],
)
def test_age_50_with_a_cardiovascular_risk_factor_at_and_just_below(evaluate, patient, older):
    card = only(evaluate("order-sign", patient, ORDER), "boxed-warning-risk")
    assert ("with a cardiovascular risk factor" in card.summary) is older
    assert "diabetes" in card.summary


def test_skin_examination_only_for_a_patient_with_a_skin_cancer(evaluate):
    assert "Periodic skin examination" in only(evaluate("order-sign", "boxed-melanoma", ORDER), "boxed-warning-risk").detail
    assert "Periodic skin examination" not in only(evaluate("order-sign", "boxed-breast-cancer", ORDER), "boxed-warning-risk").detail


def test_non_melanoma_skin_cancer_is_not_a_malignancy_risk(evaluate):
    assert boxed(evaluate("order-sign", "boxed-basal-cell-carcinoma", ORDER)) == []


def test_the_boxed_warning_is_stated_only_as_far_as_the_label_supports(evaluate):
    detail = " ".join(only(evaluate("order-select", "thrombosis-dvt-resolved", ORDER), "boxed-warning-risk").detail.split())
    assert "Malignancies and thrombosis have occurred with OLUMIANT." in detail
    assert "avoid" not in detail.lower() and "discontinue" not in detail.lower()


def test_dvt_and_aps_together_make_one_card_listing_both(evaluate):
    card = only(evaluate("medication-prescribe", "thrombosis-dvt-and-aps", ORDER), "boxed-warning-risk")
    assert card.summary == "Boxed-warning risks before baricitinib: DVT/PE, antiphospholipid syndrome"
    assert "(I82.409, recorded 2016-01-20), Condition/dvt" in card.detail
    assert "Antiphospholipid syndrome (26843008, recorded 2016-03-02), Condition/aps" in card.detail


@pytest.mark.parametrize(
    ("hook", "patient", "orders"),
    [
        ("order-sign", "sle-baseline", ORDER),  # no risk recorded
        ("order-sign", "thrombosis-dvt-entered-in-error", ORDER),  # entered in error never counts
        ("order-sign", "thrombosis-dvt-resolved", ["hydroxychloroquine"]),  # baricitinib not ordered
        ("order-sign", "thrombosis-dvt-on-baricitinib", ORDER),  # a refill: not a new start
        ("patient-view", "thrombosis-dvt-on-baricitinib", None),  # a chart open
    ],
)
def test_silent_without_a_risk_or_outside_a_new_start(evaluate, hook, patient, orders):
    assert boxed(evaluate(hook, patient, orders)) == []


def test_without_the_problem_list_no_card_and_the_check_is_reported_not_done(evaluate):
    cards = evaluate("order-sign", "thrombosis-dvt-resolved", ORDER, prefetch_keys=ALL_BUT_CONDITIONS)
    assert boxed(cards) == []
    assert "**Not checked: Boxed-warning risks before a new start**" in only(cards, "data-quality").detail
