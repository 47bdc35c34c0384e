"""PatientFacts built from FHIR resources (cds_service/facts.py), without HTTP or the rules."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import pytest

from cds_service.facts import PatientFacts, build_facts
from cds_service.fixtures import FIXTURE_DATE, PREFETCH_OF_TYPE
from cds_service.gather import Gathered, KeyData

LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
LAB_DAY = "2026-11-10"


def facts_for(content, resources: list[dict[str, Any]], as_of: date = FIXTURE_DATE) -> PatientFacts:
    """Facts for a patient-view of ``resources``, every prefetch key present."""
    keys: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resource in resources:
        keys[PREFETCH_OF_TYPE[resource["resourceType"]]].append(resource)
    gathered = Gathered(
        {key: KeyData("prefetched", keys.get(key, [])) for key in set(PREFETCH_OF_TYPE.values())}
    )
    return build_facts("patient-view", "p1", [], gathered, content, as_of)


def patient(sex: str | None, born: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": "p1"}
    if sex:
        resource["gender"] = sex
    if born:
        resource["birthDate"] = born
    return resource


def lab(rid: str, loinc: str, value: float, unit: str, day: str = LAB_DAY) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "effectiveDateTime": day,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def creatinine(value: float, unit: str = "mg/dL", day: str = LAB_DAY) -> dict[str, Any]:
    return lab("scr", "2160-0" if unit == "mg/dL" else "14682-9", value, unit, day)


# --- eGFR: race-free CKD-EPI 2021 from creatinine ---------------------------------------------------------
# eGFR = 142 x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200 x 0.9938^age x 1.012 (female);
# female k = 0.7, a = -0.241; male k = 0.9, a = -0.302. Worked by hand (4-5 significant figures per step):
#  - female 50, 0.9 mg/dL: Scr/k = 1.28571; 1.28571^-1.2 = 0.73963; 0.9938^50 = 0.73272;
#    142 x 0.73963 x 0.73272 x 1.012 = 77.9
#  - male 60, 1.2 mg/dL: Scr/k = 1.33333; ^-1.2 = 0.70805; 0.9938^60 = 0.68857; 142 x 0.70805 x 0.68857 = 69.2
#  - male 30, 0.7 mg/dL (below k): Scr/k = 0.77778; ^-0.302 = 1.07885; 0.9938^30 = 0.82979;
#    142 x 1.07885 x 0.82979 = 127.1
#  - female 40, 53 umol/L = 0.59943 mg/dL (x 0.01131, codes.md): Scr/k = 0.85633; ^-0.241 = 1.03809;
#    0.9938^40 = 0.77977; 142 x 1.03809 x 0.77977 x 1.012 = 116.3
#  - male 60, 106 umol/L = 1.19886 mg/dL: Scr/k = 1.33207; ^-1.2 = 0.70885; 142 x 0.70885 x 0.68857 = 69.3
@pytest.mark.parametrize(
    ("sex", "born", "value", "unit", "expected"),
    [
        ("female", "1976-01-01", 0.9, "mg/dL", 77.9),
        ("male", "1966-01-01", 1.2, "mg/dL", 69.2),
        ("male", "1996-01-01", 0.7, "mg/dL", 127.1),
        ("female", "1986-01-01", 53, "umol/L", 116.3),
        ("male", "1966-01-01", 106, "umol/L", 69.3),
    ],
)
def test_egfr_is_computed_from_creatinine_with_ckd_epi_2021(content, sex, born, value, unit, expected):
    facts = facts_for(content, [patient(sex, born), creatinine(value, unit)])
    assert facts.egfr is not None
    assert facts.egfr.value == expected
    assert facts.egfr.day == date(2026, 11, 10)
    assert "(CKD-EPI 2021 from creatinine" in facts.egfr.describe()
    assert facts.egfr.how.startswith("CKD-EPI 2021 from creatinine")  # the value above depends on sex and age


def test_a_computed_egfr_names_the_creatinine_as_reported(content):
    facts = facts_for(content, [patient("female", "1986-01-01"), creatinine(53, "umol/L")])
    assert facts.egfr is not None
    assert facts.egfr.describe() == (
        "eGFR 116.3 mL/min/1.73 m2 (CKD-EPI 2021 from creatinine 0.599 mg/dL of 2026-11-10; "
        "reported as 53 umol/L)"
    )


def test_a_current_egfr_result_is_used_rather_than_computed(content):
    egfr = lab("egfr", "98979-8", 45, "mL/min/{1.73_m2}")
    facts = facts_for(content, [patient("female", "1976-01-01"), creatinine(0.9), egfr])
    assert facts.egfr is not None
    assert facts.egfr.describe() == "eGFR 45 mL/min/1.73 m2 (reported on 2026-11-10, Observation/egfr)"


def test_egfr_is_not_computed_without_the_patients_sex(content):
    facts = facts_for(content, [patient(None, "1976-01-01"), creatinine(0.9)])
    assert facts.egfr is None
    assert facts.egfr_problem == "eGFR cannot be computed from the creatinine of 2026-11-10 without the patient's sex"


def test_egfr_is_not_computed_from_an_out_of_date_creatinine(content):
    facts = facts_for(content, [patient("female", "1976-01-01"), creatinine(0.9, day="2026-06-01")])
    assert facts.egfr is None
    assert facts.egfr_problem == "the newest Serum creatinine (2026-06-01) is out of date"


# --- look-back windows --------------------------------------------------------------------------------------


def test_a_reading_carries_its_look_back_window(content):
    facts = facts_for(content, [patient("female", "1976-01-01"), creatinine(0.9, day="2026-06-01")])
    reading = facts.lab("creatinine")
    assert (reading.status, reading.lookback_days) == ("stale", 90)


# --- a selected resource is checked on the elements the rules read (fhir_elements.py) ------------------
def anc(rid: str, value: float, day: str, **elements: Any) -> dict[str, Any]:
    return {**lab(rid, "751-8", value, "10*3/uL", day), **elements}


@pytest.mark.parametrize(
    "malformed",
    [{"status": "final "}, {"valueString": "0.4"}, {"referenceRange": {"high": {"value": 7.5}}},
     {"effectiveDateTime": "2026-11-10T09:00"}],
    ids=["status-with-trailing-space", "two-values", "range-not-an-array", "time-without-zone"],
)  # fmt: skip
def test_a_newest_result_malformed_where_the_rules_read_is_not_replaced_by_an_older_one(content, malformed):
    newest = anc("anc-new", 0.4, "2026-11-10", **malformed)
    facts = facts_for(content, [newest, anc("anc-old", 2.1, "2026-10-01")])
    reading = facts.lab("anc")
    assert (reading.status, reading.result, str(reading.taken)) == ("unreadable", None, "2026-11-10")
    assert reading.problem == "ANC result of 2026-11-10 is malformed where it is read"


@pytest.mark.parametrize(
    "empty",
    [{"code": {"coding": [{"system": LOINC, "code": "751-8", "display": ""}], "text": ""}},
     {"interpretation": [None]}, {"interpretation": []}, {"referenceRange": [{}]}, {"note": [{"text": ""}]},
     {"valueQuantity": {"value": 0.4, "unit": "", "system": UCUM, "code": "10*3/uL"}}],
    ids=["empty-display-and-text", "null-in-array", "empty-array", "empty-object", "empty-unread-string",
         "empty-unit-beside-a-code"],
)  # fmt: skip
def test_an_empty_string_object_or_array_is_read_as_absent(content, empty):
    """As HAPI FHIR's lenient parser: "display": "" (common in real exports) must not hide a low ANC."""
    newest = anc("anc-new", 0.4, "2026-11-10", **empty)
    facts = facts_for(content, [newest, anc("anc-old", 2.1, "2026-10-01")])
    reading = facts.lab("anc")
    assert (reading.status, reading.result.resource, reading.result.value) == ("current", "Observation/anc-new", 400)
    assert facts.data_issues == []


def test_a_newest_result_with_no_unit_at_all_is_unreadable_not_replaced(content):
    newest = anc("anc-new", 0.4, "2026-11-10", valueQuantity={"value": 0.4, "unit": ""})
    facts = facts_for(content, [newest, anc("anc-old", 2.1, "2026-10-01")])
    reading = facts.lab("anc")
    assert (reading.status, reading.problem) == ("unreadable", "ANC 0.4 (no unit) of 2026-11-10: no unit")


def test_a_newest_result_malformed_only_where_no_rule_reads_is_used(content):
    """A bad performer reference or an unknown element must not hide a low neutrophil count."""
    newest = anc("anc-new", 0.4, "2026-11-10", performer=[{"reference": 5}], unknownElement=True)
    facts = facts_for(content, [newest, anc("anc-old", 2.1, "2026-10-01")])
    reading = facts.lab("anc")
    assert (reading.status, reading.result.resource, reading.result.value) == ("current", "Observation/anc-new", 400)
    assert facts.data_issues == []


@pytest.mark.parametrize(
    "resource, why",
    [
        ({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1976-02-30"},
         "the Patient resource is malformed; age and sex are unknown"),
        ({"resourceType": "Immunization", "id": "flu", "status": "completed",
          "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
          "occurrenceDateTime": "2026-10-01T10:00:00"}, "malformed Immunization skipped"),
        ({"resourceType": "Condition", "id": "sle", "recordedDate": "yesterday",
          "code": {"coding": [{"system": "http://snomed.info/sct", "code": "55464009"}]}},
         "malformed Condition skipped"),
    ],
    ids=["impossible-birth-date", "time-without-zone", "date-not-a-date"],
)  # fmt: skip
def test_a_selected_patient_immunization_or_condition_malformed_where_read_is_skipped(content, resource, why):
    facts = facts_for(content, [resource])
    assert [(i.what, i.why) for i in facts.data_issues] == [(f"{resource['resourceType']}/{resource['id']}", why)]
    assert (facts.age, facts.vaccine_doses, facts.conditions) == (None, [], {})
