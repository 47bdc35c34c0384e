"""Recognising baricitinib and deriving its daily dose (cds_service/facts/medications.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.facts.medications import BaricitinibOrder, read_baricitinib_order, recognise_baricitinib

RXNORM, UCUM = "http://www.nlm.nih.gov/research/umls/rxnorm", "http://unitsofmeasure.org"
INGREDIENT = {"system": RXNORM, "code": "2047232", "display": "baricitinib"}
ONCE_DAILY = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
TWICE_DAILY = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}


def tablets(n: float) -> dict[str, Any]:
    return {"value": n, "unit": "tablet", "system": UCUM, "code": "{tablet}"}


def milligrams(n: float) -> dict[str, Any]:
    return {"value": n, "unit": "mg", "system": UCUM, "code": "mg"}


def request(concept: dict[str, Any], *dosages: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "MedicationRequest", "id": "draft", "status": "draft",
                                "intent": "order", "medicationCodeableConcept": concept}  # fmt: skip
    if dosages:
        resource["dosageInstruction"] = list(dosages)
    return resource


def r4(quantity: dict[str, Any], timing: dict[str, Any] = ONCE_DAILY) -> dict[str, Any]:
    return {"timing": timing, "doseAndRate": [{"doseQuantity": quantity}]}


def stu3(quantity: dict[str, Any], timing: dict[str, Any] = ONCE_DAILY) -> dict[str, Any]:
    return {"timing": timing, "doseQuantity": quantity}


def read(content, resource: dict[str, Any]) -> BaricitinibOrder:
    concept = resource["medicationCodeableConcept"]
    recognised = recognise_baricitinib(concept, content)
    assert recognised is not None, "baricitinib not recognised"
    return read_baricitinib_order(resource, concept, recognised, True, content)


CODED_2MG = {"coding": [INGREDIENT], "text": "baricitinib 2 MG Oral Tablet"}
CODED_4MG = {"coding": [INGREDIENT], "text": "baricitinib 4 MG Oral Tablet"}


@pytest.mark.parametrize(
    ("concept", "dosage", "strength", "daily"),
    [
        (CODED_2MG, r4(tablets(1)), 2.0, 2.0),  # R4 doseAndRate
        (CODED_2MG, stu3(tablets(2)), 2.0, 4.0),  # STU3 doseQuantity on the dosage itself
        (CODED_4MG, r4(tablets(1), TWICE_DAILY), 4.0, 8.0),  # twice daily
        ({"text": "Olumiant 2 mg tablet"}, r4(tablets(1)), 2.0, 2.0),  # text only
        (CODED_4MG, stu3(milligrams(4)), 4.0, 4.0),  # dose in mg
        ({"coding": [INGREDIENT]}, r4(milligrams(2)), None, 2.0),  # mg dose needs no strength
        (CODED_2MG, r4(tablets(1), {"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}}), 2.0, 1.0),
        (CODED_2MG, r4(tablets(1), {"code": {"coding": [{"code": "BID"}]}}), 2.0, 4.0),  # timing.code
        (CODED_2MG, r4(tablets(1), {"code": {"text": "twice a day", "coding": [{"code": "Q12H"}]}}), 2.0, 4.0),
        (CODED_2MG, r4(tablets(1), {"code": {"coding": [{"code": "QAM"}]}}), 2.0, 2.0),
        (CODED_2MG, r4(tablets(1), {"repeat": {"when": ["MORN"]}}), 2.0, 2.0),
        (CODED_2MG, r4(tablets(1), {"repeat": {"timeOfDay": ["08:00:00", "20:00:00"]}}), 2.0, 4.0),
        # A unitless dose, as Synthea and many EHRs write it, is a number of tablets.
        (CODED_2MG, r4({"value": 1}), 2.0, 2.0),
    ],
)
def test_the_daily_dose_is_derived_from_strength_and_dosage(content, concept, dosage, strength, daily):
    order = read(content, request(concept, dosage))
    assert order.strength_mg == strength
    assert order.daily_dose_mg == daily
    assert order.dose_problem is None
    assert order.dose_text == f"{daily:g} mg/day"


def test_a_text_only_olumiant_order_is_recognised_by_name(content):
    order = read(content, request({"text": "Olumiant 2 mg tablet"}, r4(tablets(1))))
    assert order.recognised_by == "name 'olumiant'"
    assert order.name == "Olumiant 2 mg tablet"


def test_conflicting_strengths_make_the_dose_unknown(content):
    concept = {"coding": [{"system": RXNORM, "code": "2047232", "display": "baricitinib 4 MG Oral Tablet"}],
               "text": "Olumiant 2 mg tablet"}  # fmt: skip
    order = read(content, request(concept, r4(tablets(1))))
    assert order.strength_mg is None
    assert order.daily_dose_mg is None
    assert order.dose_problem == (
        "dose is in tablets and the tablet strength is unknown: "
        "the order names conflicting strengths (2 mg, 4 mg)"
    )
    assert order.dose_text.startswith("unknown (")


def test_a_dose_range_gives_a_daily_range_and_the_highest_is_checked(content):
    dosage = {"timing": TWICE_DAILY, "doseAndRate": [{"doseRange": {"low": tablets(1), "high": tablets(2)}}]}
    order = read(content, request(CODED_2MG, dosage))
    assert (order.daily_dose_low_mg, order.daily_dose_mg) == (4.0, 8.0)
    assert order.dose_text == "4 to 8 mg/day"


@pytest.mark.parametrize(
    ("dosages", "problem"),
    [
        ((), "no dosage instruction"),
        ((r4(tablets(1)), r4(tablets(1))), "more than one dosage instruction"),
        (({"timing": ONCE_DAILY},), "no dose quantity"),
        (({"doseAndRate": [{"doseQuantity": tablets(1)}]},), "no timing (frequency and period)"),
        (
            (r4({"value": 1, "unit": "mL", "system": UCUM, "code": "mL"}),),
            "dose unit 'mL' is not a tablet or mass unit",
        ),
        ((r4(tablets(1), {"code": {"coding": [{"code": "PRN"}]}}),), "timing code 'PRN' is not one the service reads"),
        ((r4(tablets(1), {"code": {"text": "as directed"}}),), "no timing (frequency and period)"),
        ((r4(tablets(1), {"repeat": {"when": ["C"]}}),), "timing event 'C' does not say how many times a day"),
        ((r4(tablets(1), {"repeat": TWICE_DAILY["repeat"], "code": {"coding": [{"code": "QD"}]}}),),
         "timing code QD disagrees with its repeat (2 per 1 d)"),
    ],
)
def test_a_dose_that_cannot_be_derived_is_unknown_with_the_reason(content, dosages, problem):
    order = read(content, request(CODED_2MG, *dosages))
    assert order.daily_dose_mg is None
    assert order.dose_problem == problem


@pytest.mark.parametrize(("code", "strength"), [("2047241", 2.0), ("2047247", 2.0), ("2205472", 1.0), ("2205474", 1.0)])
def test_a_product_code_of_codes_2026_gives_the_strength_and_asks_to_confirm_the_product(content, code, strength):
    order = read(content, request({"coding": [{"system": RXNORM, "code": code}]}, r4(tablets(1))))
    assert (order.strength_mg, order.daily_dose_mg) == (strength, strength)
    assert order.recognised_by.startswith(f"product code RxNorm {code}")  # the data-quality card asks to confirm it


@pytest.mark.parametrize("code", ["2047237", "2474014", "2474018"])
def test_codes_that_codes_2026_shows_wrong_or_never_found_are_not_read(content, code):
    concept = {"coding": [{"system": RXNORM, "code": code}]}
    assert recognise_baricitinib(concept, content) is None
    assert code not in content.medications.baricitinib.strength_by_code
