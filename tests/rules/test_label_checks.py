"""Label checks no card did before: pregnancy and breastfeeding, severe hepatic impairment, GI perforation risk;
each at and around what fires it."""

from __future__ import annotations

import pytest

from tests.conftest import only

ORDER = ["baricitinib-2mg"]


def of(cards, topic):
    return [c for c in cards if c.topic == topic]


# --- pregnancy and breastfeeding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patient", "quoted"),
    [("pregnancy-condition", "- Pregnant state, incidental (Z33.1, 2026-11-01)"),
     ("pregnancy-test-30-days", "- Pregnancy test (hCG) positive (2026-10-26)")],
)  # fmt: skip
def test_a_current_pregnancy_or_a_positive_test_of_the_last_30_days_warns(evaluate, patient, quoted):
    card = only(evaluate("order-sign", patient, ORDER), "pregnancy-lactation")
    assert (card.indicator, card.summary) == ("warning", "Review baricitinib: pregnancy recorded")
    assert quoted in card.detail
    assert "use in pregnancy (Use in Specific Populations)" in card.detail


def test_a_positive_pregnancy_test_31_days_old_is_not_a_current_pregnancy(evaluate):
    assert of(evaluate("order-sign", "pregnancy-test-31-days", ORDER), "pregnancy-lactation") == []


def test_breastfeeding_on_therapy_warns_on_chart_open(evaluate):
    card = only(evaluate("patient-view", "lactation-on-baricitinib"), "pregnancy-lactation")
    assert card.summary == "Review baricitinib: breastfeeding recorded"


# --- severe hepatic impairment -------------------------------------------------------------------------------


def test_hepatic_failure_is_critical_not_recommended_and_suggests_removing_the_draft(evaluate):
    card = only(evaluate("order-sign", "hepatic-failure", ORDER), "hepatic-impairment")
    assert card.indicator == "critical"
    assert card.summary == "Baricitinib not recommended: severe hepatic impairment (Chronic hepatic failure without coma)"
    assert card.suggestions[0].actions[0].type == "delete"


def test_cirrhosis_asks_for_its_severity_to_be_assessed(evaluate):
    card = only(evaluate("order-sign", "hepatic-cirrhosis", ORDER), "hepatic-impairment")
    assert card.indicator == "warning"
    assert card.summary == "Assess liver function before baricitinib: Unspecified cirrhosis of liver recorded"
    assert card.suggestions is None


def test_no_liver_disease_no_hepatic_card(evaluate):
    assert of(evaluate("order-sign", "sle-baseline", ORDER), "hepatic-impairment") == []


# --- GI perforation risk -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patient", "summary"),
    [("gi-diverticulitis-prednisone", "Caution with baricitinib, GI perforation risk: diverticulitis, prednisone"),
     ("gi-prior-perforation", "Caution with baricitinib, GI perforation risk: gastrointestinal perforation")],
)  # fmt: skip
def test_diverticulitis_with_a_systemic_steroid_or_a_prior_perforation_warns(evaluate, patient, summary):
    card = only(evaluate("order-sign", patient, ORDER), "gi-perforation-risk")
    assert (card.indicator, card.summary) == ("warning", summary)
    assert "use with caution in patients at risk of gastrointestinal perforation" in card.detail
    assert "Condition/" not in card.detail and "MedicationRequest/" not in card.detail  # data, not record ids


def test_the_gi_card_shows_the_condition_and_the_drug_that_make_the_risk(evaluate):
    card = only(evaluate("order-sign", "gi-diverticulitis-prednisone", ORDER), "gi-perforation-risk")
    assert "- Diverticulitis of large intestine without perforation or abscess without bleeding (K57.32, " in card.detail
    assert "\n- prednisone (active)\n" in card.detail


@pytest.mark.parametrize(
    "patient", ["gi-diverticulitis-alone", "gi-diverticulosis-prednisone", "gi-diverticulitis-hydrocortisone-cream"],
    ids=["no-nsaid-or-steroid", "diverticulosis-is-not-diverticulitis", "a-skin-cream-is-not-systemic"],
)  # fmt: skip
def test_no_gi_card_without_the_combination(evaluate, patient):
    assert of(evaluate("order-sign", patient, ORDER), "gi-perforation-risk") == []
