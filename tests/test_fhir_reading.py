"""The FHIR-reading core (cds_service/fhir/): comparators, numbers written as text, dates, references,
timing and the lenient reading of empty values, each at its boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cds_service.fhir.dates import observation_time, parse_datetime
from cds_service.fhir.elements import Observation, readable, without_empty
from cds_service.fhir.quantities import (
    Measured,
    above,
    below,
    read_number_text,
    read_quantity,
    significant_digits,
)
from cds_service.fhir.references import about_patient, referenced_patient_id
from cds_service.fhir.timing import times_per_day

UCUM = "http://unitsofmeasure.org"

# --- comparators: what a bound decides against a threshold of 1.0 --------------------------------------
# True: known to be past the threshold; False: known not to be; None: the bound leaves it open.
BELOW_1 = [
    (None, 0.99, True), (None, 1.0, False), (None, 1.01, False),
    ("<", 0.99, True), ("<", 1.0, True), ("<", 1.01, None),
    ("<=", 0.99, True), ("<=", 1.0, None), ("<=", 1.01, None),
    (">", 0.99, None), (">", 1.0, False), (">", 1.01, False),
    (">=", 0.99, None), (">=", 1.0, False), (">=", 1.01, False),
]  # fmt: skip
ABOVE_1 = [
    (None, 0.99, False), (None, 1.0, False), (None, 1.01, True),
    (">", 0.99, None), (">", 1.0, True), (">", 1.01, True),
    (">=", 0.99, None), (">=", 1.0, None), (">=", 1.01, True),
    ("<", 0.99, False), ("<", 1.0, False), ("<", 1.01, None),
    ("<=", 0.99, False), ("<=", 1.0, False), ("<=", 1.01, None),
]  # fmt: skip


@pytest.mark.parametrize(("comparator", "value", "expected"), BELOW_1)
def test_below_a_threshold_with_each_comparator_at_just_below_and_just_above(comparator, value, expected):
    assert below(value, comparator, 1.0) is expected


@pytest.mark.parametrize(("comparator", "value", "expected"), ABOVE_1)
def test_above_a_threshold_with_each_comparator_at_just_below_and_just_above(comparator, value, expected):
    assert above(value, comparator, 1.0) is expected


@pytest.mark.parametrize(
    ("text", "comparator", "value", "unit"),
    [("<0.5", "<", 0.5, None), (">60", ">", 60.0, None), ("> 60 mL/min/1.73 m2", ">", 60.0, "mL/min/1.73 m2"),
     ("<=1.5 K/uL", "<=", 1.5, "K/uL"), ("≥90", ">=", 90.0, None), ("7.2", None, 7.2, None), (".5", None, 0.5, None),
     (" 3 g/dL ", None, 3.0, "g/dL")],
)  # fmt: skip
def test_a_number_written_as_text_is_read_with_its_comparator_and_unit(text, comparator, value, unit):
    measured = read_number_text(text)
    assert measured is not None
    assert (measured.comparator, measured.value, measured.unit, measured.element) == (comparator, value, unit, "valueString")


@pytest.mark.parametrize("text", ["Non-reactive", "Reactive", "Detected", "1,200", "<", "", "see note", "1.2.3", "-4"])
def test_text_that_is_not_a_number_is_not_read_as_one(text):
    assert read_number_text(text) is None


def test_a_quantity_keeps_its_comparator_and_a_ucum_code_only_from_ucum():
    measured = read_quantity({"value": 0.5, "comparator": "<", "unit": "K/uL", "system": UCUM, "code": "10*3/uL"},
                             "valueQuantity", UCUM)  # fmt: skip
    assert measured == Measured(0.5, "<", "K/uL", "10*3/uL", "valueQuantity")
    local = read_quantity({"value": 1, "unit": "K/uL", "system": "http://lab.example/units", "code": "KUL"}, "v", UCUM)
    assert isinstance(local, Measured) and local.code is None and local.unit == "K/uL"


@pytest.mark.parametrize(
    ("quantity", "problem"),
    [({"value": "0.5"}, "no numeric value"), ({"value": True}, "no numeric value"), ({}, "no numeric value"),
     ({"value": 1, "comparator": "~"}, "comparator '~' is not one of <, <=, >, >=")],
)  # fmt: skip
def test_a_quantity_that_cannot_be_read_says_why(quantity, problem):
    assert read_quantity(quantity, "valueQuantity", UCUM) == problem


# --- time ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elements", "when", "element"),
    [
        ({"effectiveDateTime": "2026-11-10T08:00:00Z", "issued": "2026-11-11T00:00:00Z"},
         "2026-11-10T08:00:00+00:00", "effectiveDateTime"),
        ({"effectivePeriod": {"start": "2026-11-09", "end": "2026-11-10"}}, "2026-11-09T00:00:00+00:00",
         "effectivePeriod.start"),
        ({"effectivePeriod": {"end": "2026-11-10T10:00:00+01:00"}}, "2026-11-10T09:00:00+00:00", "effectivePeriod.end"),
        ({"effectiveInstant": "2026-11-10T08:00:00.123Z"}, "2026-11-10T08:00:00.123000+00:00", "effectiveInstant"),
        ({"issued": "2026-11-10T08:00:00Z"}, "2026-11-10T08:00:00+00:00", "issued"),
        ({"effectiveDateTime": "2026-11"}, "2026-11-01T00:00:00+00:00", "effectiveDateTime"),
        ({"effectiveDateTime": "2026"}, "2026-01-01T00:00:00+00:00", "effectiveDateTime"),
        ({"effectiveDateTime": "", "issued": "2026-11-10T08:00:00Z"}, "2026-11-10T08:00:00+00:00", "issued"),
    ],
    ids=["dateTime-before-issued", "period-start", "period-end-only", "instant", "issued-alone", "year-month",
         "year", "empty-string-is-absent"],
)  # fmt: skip
def test_when_a_result_was_taken(elements, when, element):
    taken = observation_time(elements)
    assert (taken.when.astimezone(UTC).isoformat(), taken.element, taken.problem) == (when, element, None)


def test_an_unreadable_effective_date_is_not_replaced_by_issued_but_orders_by_it():
    taken = observation_time({"effectiveDateTime": "10/11/2026", "issued": "2026-11-10T08:00:00Z"})
    assert taken.when == datetime(2026, 11, 10, 8, tzinfo=UTC) and taken.element == "issued"
    assert taken.problem == "its effectiveDateTime '10/11/2026' cannot be read"


def test_newest_is_by_instant_not_by_string():
    # As strings the first sorts later; as instants it is 1.5 hours earlier.
    new_york = parse_datetime("2026-11-10T23:30:00-05:00")
    utc = parse_datetime("2026-11-11T01:00:00Z")
    assert new_york is not None and utc is not None and new_york > utc
    assert new_york.utcoffset() == timedelta(hours=-5) and new_york.tzinfo == timezone(timedelta(hours=-5))


# --- references -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "patient"),
    [("Patient/123", "123"), ("https://ehr.example/fhir/Patient/123", "123"), ("Patient/123/_history/4", "123"),
     ("urn:uuid:9bf5-aa", "9bf5-aa"), ("Group/7", None), ("#contained", None), ("", None)],
)  # fmt: skip
def test_the_patient_a_reference_names(reference, patient):
    assert referenced_patient_id({"reference": reference}) == patient


@pytest.mark.parametrize(
    ("resource", "verdict"),
    [({"resourceType": "Observation", "subject": {"reference": "Patient/p1"}}, "yes"),
     ({"resourceType": "Observation", "subject": {"reference": "Patient/p2"}}, "other"),
     ({"resourceType": "Observation", "subject": {"reference": "Group/g1"}}, "other"),
     ({"resourceType": "Observation"}, "unstated"),
     ({"resourceType": "Observation", "subject": {"display": "Jane"}}, "unstated"),
     ({"resourceType": "Immunization", "patient": {"reference": "urn:uuid:p2"}}, "other"),
     ({"resourceType": "MedicationRequest", "subject": {"reference": "Patient/p1/_history/2"}}, "yes")],
)  # fmt: skip
def test_whether_a_resource_is_about_the_context_patient(resource, verdict):
    assert about_patient(resource, "p1") == verdict


# --- timing ---------------------------------------------------------------------------------------------
CODES = {"QD": 1.0, "BID": 2.0, "TID": 3.0, "QID": 4.0, "Q12H": 2.0, "Q24H": 1.0, "QOD": 0.5, "QAM": 1.0,
         "QPM": 1.0}  # fmt: skip
EVENTS = {"MORN": 1.0, "EVE": 1.0, "HS": 1.0}


@pytest.mark.parametrize(
    ("timing", "low", "high"),
    [
        ({"code": {"coding": [{"code": "BID"}]}}, 2.0, 2.0),
        ({"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": "QD"}]}}, 1.0, 1.0),
        ({"code": {"coding": [{"code": "q12h"}]}}, 2.0, 2.0),
        ({"code": {"coding": [{"code": "QOD"}]}}, 0.5, 0.5),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, 1.0, 1.0),
        ({"repeat": {"period": 1, "periodUnit": "d"}}, 1.0, 1.0),
        ({"repeat": {"frequency": 1, "period": 12, "periodUnit": "h"}}, 2.0, 2.0),
        ({"repeat": {"frequency": 1, "frequencyMax": 2, "period": 1, "periodUnit": "d"}}, 1.0, 2.0),
        ({"repeat": {"frequency": 1, "period": 1, "periodMax": 2, "periodUnit": "d"}}, 0.5, 1.0),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}, 1 / 7, 1 / 7),
        ({"repeat": {"timeOfDay": ["08:00:00", "20:00:00"]}}, 2.0, 2.0),
        ({"repeat": {"when": ["MORN", "HS"]}}, 2.0, 2.0),
        ({"repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "timeOfDay": ["08:00:00", "20:00:00"]}}, 2.0, 2.0),
        ({"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}, "code": {"coding": [{"code": "BID"}]}}, 2.0, 2.0),
    ],
    ids=["BID", "QD-with-system", "lower-case", "QOD", "repeat-daily", "frequency-defaults-to-1", "every-12-h",
         "frequency-range", "period-range", "weekly", "timeOfDay", "when", "repeat-and-times-agree",
         "repeat-and-code-agree"],
)  # fmt: skip
def test_times_a_day(timing, low, high):
    found = times_per_day(timing, CODES, EVENTS)
    assert not isinstance(found, str), found
    assert (found.low, found.high) == pytest.approx((low, high))


@pytest.mark.parametrize(
    ("timing", "problem"),
    [
        (None, "no timing (frequency and period)"),
        ({}, "no timing (frequency and period)"),
        ({"code": {"coding": [{"code": "PRN"}]}}, "timing code 'PRN' is not one the service reads"),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "fortnight"}}, "timing period unit 'fortnight' is not understood"),
        ({"repeat": {"frequency": 1, "period": 0, "periodUnit": "d"}}, "timing has no usable frequency and period"),
        ({"repeat": {"when": ["C"]}}, "timing event 'C' does not say how many times a day"),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["08:00:00", "20:00:00"]}},
         "timing says 1 per 1 d but lists 2 times of day"),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}, "code": {"coding": [{"code": "BID"}]}},
         "timing code BID disagrees with its repeat (1 per 1 d)"),
    ],
    ids=["absent", "empty", "unknown-code", "unknown-unit", "zero-period", "at-meals", "times-disagree",
         "code-disagrees"],
)  # fmt: skip
def test_a_timing_that_cannot_be_read_says_why_and_is_never_guessed(timing, problem):
    assert times_per_day(timing, CODES, EVENTS) == problem


# --- lenient where it costs nothing -----------------------------------------------------------------------


def test_empty_values_are_removed_at_any_depth():
    assert without_empty({"a": "", "b": {}, "c": [], "d": None, "e": [{"f": ""}, 1], "g": {"h": {"i": []}}, "k": 0}) == {
        "e": [1], "k": 0}  # fmt: skip


def test_a_resource_valid_as_sent_is_returned_as_it_is():
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "ANC"}}
    assert readable(Observation, resource) is resource


def test_a_malformed_read_element_is_refused_even_leniently():
    assert readable(Observation, {"resourceType": "Observation", "status": "final", "code": {"coding": {"code": "x"}}}) is None


@pytest.mark.parametrize(("value", "digits"), [(4.9, 2), (0.499, 3), (1000, 1), (1000.0, 1), (3.2, 2), (0.00123, 3),
                                               (12.5, 3), (104.409, 6)])  # fmt: skip
def test_the_significant_digits_a_lab_wrote(value, digits):
    assert significant_digits(value) == digits
