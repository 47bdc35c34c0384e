"""Boxed-warning risks at a new start: each population the boxed warning names that the chart shows (age 50 or
over with a cardiovascular risk factor, smoking, arterial disease, malignancy other than NMSC, venous thrombosis
or antiphospholipid syndrome), with its date, in one warning card (a list too long for it ends with "and N
more"); silent for refills and other drugs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.cards import word_count
from cds_service.facts import ConditionFact, PatientFacts
from cds_service.fixtures import FIXTURE_DATE
from cds_service.rules.boxed_warning import boxed_warning
from tests.conftest import only

ORDER = ["baricitinib-4mg"]
ALL_BUT_CONDITIONS = {"patient", "observations", "immunizations", "medications", "encounters"}


def boxed(cards):
    return [c for c in cards if c.topic == "boxed-warning-risk"]


@pytest.mark.parametrize(
    ("patient", "summary", "quoted"),
    [
        ("thrombosis-dvt-resolved", "Weigh boxed-warning risks before baricitinib: DVT/PE",
         "- Deep venous thrombosis (128053003, 2018-06-14)"),
        ("thrombosis-pe-history-icd", "Weigh boxed-warning risks before baricitinib: DVT/PE",
         "- Personal history of pulmonary embolism (Z86.711, 2020-02-03)"),
        ("thrombosis-aps-icd", "Weigh boxed-warning risks before baricitinib: antiphospholipid syndrome",
         "- Antiphospholipid syndrome (D68.61, 2017-09-30)"),
        ("thrombosis-sle-associated-aps", "Weigh boxed-warning risks before baricitinib: antiphospholipid syndrome",
         "- SLE-associated antiphospholipid syndrome (402865003, 2019-03-01)"),
        ("boxed-breast-cancer", "Weigh boxed-warning risks before baricitinib: malignancy",
         "- Malignant neoplasm of unspecified site of right female breast (C50.911, 2026-09-01)"),
        ("boxed-former-smoker", "Weigh boxed-warning risks before baricitinib: former smoker",
         "- former smoker (2026-06-01)"),
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
        "Weigh boxed-warning risks before baricitinib: age 62 with a CV risk factor, MI/stroke/arterial disease, "
        "current smoker, malignancy"
    )
    for quoted in ("- Cerebral infarction, unspecified (I63.9, 2024-05-10)",
                   "- Old myocardial infarction (I25.2, 2021-01-15)",
                   "- current smoker (2026-11-01)",
                   "(C50.911, 2026-09-01)"):  # fmt: skip
        assert quoted in card.detail
    assert "raised mortality, MACE, lymphoma, lung cancer and thrombosis" in card.detail
    assert card.detail.endswith("Weigh these risks before starting.\n\n_US label._")


def test_records_too_many_for_the_card_end_with_and_n_more(content):
    name = "Malignant neoplasm of unspecified site of right female breast"
    cancers = [ConditionFact("malignancy", "malignancy", "C50.911", name, f"Condition/c{i}", FIXTURE_DATE - timedelta(days=i))
               for i in range(6)]  # fmt: skip
    facts = PatientFacts(as_of=FIXTURE_DATE, hook="order-select", patient_id="p", conditions={"malignancy": cancers})
    [card] = boxed_warning(facts, content.rules["boxed_warning"])
    assert "\n- and 4 more.\n" in card.detail
    assert word_count(card.detail) <= 60


@pytest.mark.parametrize(
    ("patient", "older"),
    [("boxed-age-50-diabetes", True), ("boxed-age-49-diabetes", False)],
)
def test_age_50_with_a_cardiovascular_risk_factor_at_and_just_below(evaluate, patient, older):
    card = only(evaluate("order-sign", patient, ORDER), "boxed-warning-risk")
    assert ("with a CV risk factor" in card.summary) is older
    assert "diabetes" in card.summary


def test_skin_examination_only_for_a_patient_with_a_skin_cancer(evaluate):
    assert "Skin cancer on record: periodic skin examination is recommended." in only(evaluate("order-sign", "boxed-melanoma", ORDER), "boxed-warning-risk").detail
    assert "skin examination" not in only(evaluate("order-sign", "boxed-breast-cancer", ORDER), "boxed-warning-risk").detail


def test_non_melanoma_skin_cancer_is_not_a_malignancy_risk(evaluate):
    assert boxed(evaluate("order-sign", "boxed-basal-cell-carcinoma", ORDER)) == []


def test_the_boxed_warning_is_stated_only_as_far_as_the_label_supports(evaluate):
    detail = " ".join(only(evaluate("order-select", "thrombosis-dvt-resolved", ORDER), "boxed-warning-risk").detail.split())
    assert "malignancies and thrombosis have occurred with OLUMIANT." in detail
    assert "avoid" not in detail.lower() and "discontinue" not in detail.lower()


def test_dvt_and_aps_together_make_one_card_listing_both(evaluate):
    card = only(evaluate("medication-prescribe", "thrombosis-dvt-and-aps", ORDER), "boxed-warning-risk")
    assert card.summary == "Weigh boxed-warning risks before baricitinib: DVT/PE, antiphospholipid syndrome"
    assert "(I82.409, 2016-01-20)" in card.detail
    assert "- Antiphospholipid syndrome (26843008, 2016-03-02)" in card.detail


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
