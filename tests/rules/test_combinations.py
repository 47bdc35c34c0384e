"""Combination not recommended: another JAK inhibitor, a biologic DMARD or a potent immunosuppressant,
active or ordered together with baricitinib; the card says which drugs the label names and which are the
practice counts as potent immunosuppressants."""

from __future__ import annotations

import pytest

from tests.conftest import only

ORDER = ["baricitinib-2mg"]
NOT_NAMED = "not named by the label."  # and the basis line says such drugs are practice
PRACTICE_BASIS = "_US label; unnamed drugs: practice._"


def combination(cards):
    return [c for c in cards if c.topic == "combination-not-recommended"]


def test_active_azathioprine_is_named_by_the_label(evaluate):
    card = only(evaluate("order-sign", "combo-azathioprine", ORDER), "combination-not-recommended")
    assert card.indicator == "warning"
    assert card.summary == "Combination not recommended: baricitinib with azathioprine; stop one or record why"
    assert "- **azathioprine** (active): named by the label." in card.detail
    assert "such as azathioprine and cyclosporine." in card.detail
    assert NOT_NAMED not in card.detail
    assert "Stop one, or record why with an override reason." in card.detail
    assert card.suggestions is None


def test_override_reasons_are_offered(evaluate):
    card = only(evaluate("order-select", "combo-azathioprine", ORDER), "combination-not-recommended")
    assert [r.code for r in card.override_reasons] == ["specialist-decision-to-combine", "co-medication-being-stopped"]


def test_mycophenolate_by_text_is_a_practice_reading(evaluate):
    card = only(evaluate("order-sign", "combo-mycophenolate-text", ORDER), "combination-not-recommended")
    assert card.summary == "Combination not recommended: baricitinib with mycophenolate; stop one or record why"
    line = next(line for line in card.detail.splitlines() if line.startswith("- **mycophenolate**"))
    assert line == "- **mycophenolate** (active): " + NOT_NAMED
    assert card.detail.endswith(PRACTICE_BASIS)


def test_belimumab_by_text_is_a_biologic_with_its_classification_said_to_be_a_reading(evaluate):
    card = only(evaluate("order-sign", "combo-belimumab-text", ORDER), "combination-not-recommended")
    assert "- **belimumab** (active): a biologic DMARD. Counting this SLE biologic is practice." in card.detail


def test_each_drug_says_whether_the_label_names_it(evaluate):
    card = only(evaluate("medication-prescribe", "combo-several", ORDER), "combination-not-recommended")
    assert card.summary == (
        "Combination not recommended: baricitinib with azathioprine, tacrolimus, rituximab, cyclosporine; stop one or "
        "record why"
    )
    lines = {line.split("**")[1]: line for line in card.detail.splitlines() if line.startswith("- **")}
    assert set(lines) == {"azathioprine", "tacrolimus", "rituximab", "cyclosporine"}
    assert "named by the label" in lines["azathioprine"] and NOT_NAMED not in lines["azathioprine"]
    assert "named by the label" in lines["cyclosporine"] and NOT_NAMED not in lines["cyclosporine"]
    assert "a biologic DMARD" in lines["rituximab"]
    assert NOT_NAMED in lines["tacrolimus"]


def test_a_jak_inhibitor_ordered_together_is_flagged_as_a_draft(evaluate):
    card = only(evaluate("order-sign", "sle-baseline", ORDER + ["combo-tofacitinib"]), "combination-not-recommended")
    assert card.summary == "Combination not recommended: baricitinib with tofacitinib; stop one or record why"
    assert "- **tofacitinib** (ordered now): another JAK inhibitor." in card.detail


def test_voclosporin_ordered_together_by_text_is_a_practice_reading(evaluate):
    card = only(evaluate("order-select", "sle-baseline", ORDER + ["combo-voclosporin"]), "combination-not-recommended")
    assert "- **voclosporin** (ordered now): " + NOT_NAMED in card.detail


def test_patient_view_on_baricitinib_with_azathioprine(evaluate):
    card = only(evaluate("patient-view", "combo-azathioprine-on-baricitinib"), "combination-not-recommended")
    assert card.indicator == "warning"
    assert "- **azathioprine** (active): named by the label." in card.detail


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
