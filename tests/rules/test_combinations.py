"""Combination not recommended: another JAK inhibitor, a biologic DMARD or a potent immunosuppressant,
active or ordered together with baricitinib; the card says which drugs the label names and which are the
project's reading."""

from __future__ import annotations

import pytest

from tests.conftest import only

ORDER = ["baricitinib-2mg"]
PROJECT_READING = 'Counting it as a "potent immunosuppressant" is a practice reading of the label, not label text.'


def combination(cards):
    return [c for c in cards if c.topic == "combination-not-recommended"]


def test_active_azathioprine_is_named_by_the_label(evaluate):
    card = only(evaluate("order-sign", "combo-azathioprine", ORDER), "combination-not-recommended")
    assert card.indicator == "warning"
    assert card.summary == "Combination not recommended: baricitinib with azathioprine"
    assert "- **azathioprine** (active, MedicationRequest/aza): a potent immunosuppressant named by the label." in card.detail
    assert "such as azathioprine and cyclosporine." in card.detail
    assert PROJECT_READING not in card.detail
    assert card.suggestions is None


def test_override_reasons_are_offered(evaluate):
    card = only(evaluate("order-select", "combo-azathioprine", ORDER), "combination-not-recommended")
    assert [r.code for r in card.override_reasons] == ["specialist-decision-to-combine", "co-medication-being-stopped"]


def test_mycophenolate_by_text_is_the_projects_reading(evaluate):
    card = only(evaluate("order-sign", "combo-mycophenolate-text", ORDER), "combination-not-recommended")
    assert card.summary == "Combination not recommended: baricitinib with mycophenolate"
    line = next(line for line in card.detail.splitlines() if line.startswith("- **mycophenolate**"))
    assert "(active, MedicationRequest/mmf): an immunosuppressant the label does not name." in line
    assert PROJECT_READING in line


def test_belimumab_by_text_is_a_biologic_with_its_classification_said_to_be_a_reading(evaluate):
    card = only(evaluate("order-sign", "combo-belimumab-text", ORDER), "combination-not-recommended")
    assert "- **belimumab** (active, MedicationRequest/belimumab): a biologic DMARD, a class the label names." in card.detail
    assert 'counting it among the label\'s "biologic DMARDs" is a practice reading' in card.detail


def test_each_drug_says_whether_the_label_names_it(evaluate):
    card = only(evaluate("medication-prescribe", "combo-several", ORDER), "combination-not-recommended")
    assert card.summary == "Combination not recommended: baricitinib with azathioprine, tacrolimus, rituximab, cyclosporine"
    lines = {line.split("**")[1]: line for line in card.detail.splitlines() if line.startswith("- **")}
    assert set(lines) == {"azathioprine", "tacrolimus", "rituximab", "cyclosporine"}
    assert "named by the label" in lines["azathioprine"] and PROJECT_READING not in lines["azathioprine"]
    assert "named by the label" in lines["cyclosporine"] and PROJECT_READING not in lines["cyclosporine"]
    assert "a biologic DMARD, a class the label names" in lines["rituximab"]
    assert PROJECT_READING in lines["tacrolimus"]


def test_a_jak_inhibitor_ordered_together_is_flagged_as_a_draft(evaluate):
    card = only(evaluate("order-sign", "sle-baseline", ORDER + ["combo-tofacitinib"]), "combination-not-recommended")
    assert card.summary == "Combination not recommended: baricitinib with tofacitinib"
    assert (
        "- **tofacitinib** (draft order, ordered together with baricitinib, MedicationRequest/draft-tofacitinib): "
        "another JAK inhibitor, a class the label names." in card.detail
    )


def test_voclosporin_ordered_together_by_text_is_the_projects_reading(evaluate):
    card = only(evaluate("order-select", "sle-baseline", ORDER + ["combo-voclosporin"]), "combination-not-recommended")
    assert "**voclosporin** (draft order" in card.detail
    assert PROJECT_READING in card.detail


def test_patient_view_on_baricitinib_with_azathioprine(evaluate):
    card = only(evaluate("patient-view", "combo-azathioprine-on-baricitinib"), "combination-not-recommended")
    assert card.indicator == "warning"
    assert "MedicationRequest/aza" in card.detail


@pytest.mark.parametrize(
    ("hook", "patient", "orders"),
    [
        ("order-sign", "sle-baseline", ORDER),  # hydroxychloroquine only: not a combination of concern
        ("order-sign", "combo-azathioprine-stopped", ORDER),  # a stopped order does not count
        ("order-sign", "combo-azathioprine", ["hydroxychloroquine"]),  # no baricitinib ordered
        ("patient-view", "combo-azathioprine", None),  # not on baricitinib
        ("order-sign", "sle-on-baricitinib", ["combo-tofacitinib"]),  # another drug ordered for a patient on it
    ],
)
def test_silent_without_a_combination_or_where_the_rule_does_not_run(evaluate, hook, patient, orders):
    assert combination(evaluate(hook, patient, orders)) == []


@pytest.mark.parametrize(
    "patient", ["combo-cyclosporine-ophthalmic", "combo-tacrolimus-topical-route", "combo-ruxolitinib-cream"]
)
def test_an_eye_drop_or_a_skin_product_is_not_systemic_immunosuppression(evaluate, patient):
    assert [c for c in evaluate("order-sign", patient, ORDER) if c.topic == "combination-not-recommended"] == []


def test_the_same_drug_by_mouth_still_counts(evaluate):
    card = only(evaluate("order-sign", "combo-tacrolimus-oral", ORDER), "combination-not-recommended")
    assert "tacrolimus" in card.summary
