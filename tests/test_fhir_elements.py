"""fhir/elements.py accepts and refuses what the full R4B models do, on the elements the rules read.

Hypothesis puts awkward values (partial dates, dates without a time zone, codes with spaces, decimals
as strings, booleans, nulls, objects where arrays belong...) into the elements a model lists and checks
that the light model agrees with the fhir.resources R4B model given the same elements. Elements the
rules do not read are deliberately not checked: the last tests say so, in the app too.
"""

from __future__ import annotations

import copy
import json
from types import UnionType
from typing import Any, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import full_parse
from cds_service.fhir import elements as fhir_elements
from cds_service.fixtures import FIXTURES, patient_resources

PATIENT = {"reference": "Patient/p1"}
# Elements the R4B model requires but no rule reads: carried, unchanged, into what the full model sees.
BASE = {
    "Observation": {
        "resourceType": "Observation", "id": "anc", "status": "final", "subject": PATIENT,
        "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
        "effectiveDateTime": "2026-11-11T13:20:48Z",
        "valueQuantity": {"value": 2.1, "unit": "10*3/uL", "system": "http://unitsofmeasure.org", "code": "10*3/uL"},
    },
    "Condition": {
        "resourceType": "Condition", "id": "sle", "subject": PATIENT,
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "55464009"}]},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
    },
    "Immunization": {
        "resourceType": "Immunization", "id": "flu", "status": "completed", "patient": PATIENT,
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
        "occurrenceDateTime": "2026-10-01",
    },
    "Patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1990-04-02", "gender": "female"},
}  # fmt: skip
REMOVED = object()
MODELS = {kind: getattr(fhir_elements, kind) for kind in BASE}
CHOICES = {
    "effective": fhir_elements.EFFECTIVE,
    "value": fhir_elements.VALUE,
    "occurrence": fhir_elements.OCCURRENCE,
}

odd_strings = st.sampled_from(["", " ", "final", "fin al", " final", "a\tb", "x\n", "Ünïcode", "a" * 70])
date_times = st.sampled_from([
    "2026", "2026-11", "2026-11-11", "2026-11-11T13:20:48Z", "2026-11-11T13:20:48.123+01:00",
    "2016-12-31T23:59:60Z", "2026-11-11T13:20:48", "2026-11-11T13:20Z", "2026-11-11T24:00:00Z",
    "2026-13-01", "2026-02-30", "2026-00", "26-11-11", "2026/11/11", " 2026-11-11", "2026-11-11T13:20:48+15:00",
])  # fmt: skip
numbers = st.sampled_from([0, 2, -1, 2.5, 1e308, 10**30, "2.0", "2", "01", "1e3", "abc", True, False])
primitives = st.one_of(odd_strings, date_times, numbers, st.none())


def nested(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """An element of a datatype, made only of that datatype's own sub-elements (unknown keys inside a read
    element are ignored by design), or something that is not an object at all."""
    return st.one_of(st.fixed_dictionaries({}, optional=fields), primitives, st.just([]))


codings = nested({
    "system": st.one_of(st.sampled_from(["http://loinc.org", "not a uri", "urn:oid:1.2"]), primitives),
    "code": st.one_of(st.sampled_from(["751-8", "active"]), primitives),
    "display": primitives, "version": primitives, "userSelected": primitives,
})  # fmt: skip
concepts = nested({"coding": st.one_of(st.lists(codings, max_size=2), codings), "text": primitives})
quantities = nested({
    "value": numbers, "comparator": st.one_of(st.sampled_from(["<", ">=", "~"]), primitives),
    "unit": primitives, "system": primitives, "code": primitives,
})  # fmt: skip
periods = nested({"start": st.one_of(date_times, primitives), "end": st.one_of(date_times, primitives)})
ranges = nested({"low": quantities, "high": quantities, "text": primitives})


def element_values(model: type[fhir_elements._Element], name: str) -> st.SearchStrategy[Any]:
    annotation = str(model.model_fields[name].annotation)
    if "ReferenceRange" in annotation:
        return st.one_of(st.lists(ranges, max_size=2), ranges)
    if "list[" in annotation and "CodeableConcept" in annotation:
        return st.one_of(st.lists(concepts, max_size=2), concepts)
    for marker, values in (("CodeableConcept", concepts), ("Quantity", quantities), ("Period", periods)):
        if marker in annotation:
            return values
    return st.one_of(date_times, primitives)


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """The base resource with up to three read elements replaced or removed; for Observation, sometimes a
    second value[x] or effective[x]."""
    model, resource = MODELS[kind], copy.deepcopy(BASE[kind])
    names = draw(st.lists(st.sampled_from(sorted(model.model_fields)), min_size=1, max_size=3, unique=True))
    for name in names:
        if draw(st.booleans()) and name in resource:
            del resource[name]
        else:
            resource[name] = draw(element_values(model, name))
    return resource


def full_model_accepts(resource: dict[str, Any]) -> bool:
    return full_parse.parse(resource) is not None


def full_r4b_verdict(resource: dict[str, Any]) -> bool:
    """The fhir.resources R4B model's verdict on the elements the light model reads (and the required
    ones it carries unchanged)."""
    model = MODELS[resource["resourceType"]]
    variants = {prefix + variant for prefix, group in CHOICES.items() for variant in group}
    kept = model.model_fields.keys() | BASE[resource["resourceType"]].keys() | variants
    return full_model_accepts({k: v for k, v in resource.items() if k in kept})


def null_in_a_required_concept(resource: dict[str, Any]) -> bool:
    """fhir.resources accepts ``"code": null`` on a required CodeableConcept; FHIR JSON allows no null,
    and the light model refuses it."""
    required = {"Observation": "code", "Immunization": "vaccineCode"}.get(resource["resourceType"])
    return required is not None and required in resource and resource[required] is None


@pytest.mark.parametrize("kind", sorted(BASE))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(data=st.data())
def test_the_light_model_agrees_with_the_full_r4b_model(kind: str, data: st.DataObject):
    resource = data.draw(mutated(kind))
    if null_in_a_required_concept(resource):
        assert not fhir_elements.well_formed(MODELS[kind], resource)
        return
    assert fhir_elements.well_formed(MODELS[kind], resource) == full_r4b_verdict(resource), json.dumps(
        resource, default=str
    )


ODD_VALUES = [
    None, "", " ", "final", "fin al", " final", "a\tb", "x\n", "a" * 70, "2026", "2026-11", "2026-11-11",
    "2026-11-11T13:20:48Z", "2026-11-11T13:20:48.123+01:00", "2016-12-31T23:59:60Z", "2026-11-11T13:20:48",
    "2026-11-11T13:20Z", "2026-11-11T24:00:00Z", "2026-13-01", "2026-02-30", "2026/11/11", " 2026-11-11",
    "2026-11-11T13:20:48+15:00", "not a uri", 0, 2, -1, 2.5, 1e308, 10**30, "2.0", "01", "1e3", "abc", True,
    False, [], {}, [None], [{}], ["final"],
]  # fmt: skip


def read_paths(model: type[Any], prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every element path the light model reads: ``("valueQuantity", "unit")``, ``("code", "coding", 0,
    "system")``..."""
    found = []
    for name, info in model.model_fields.items():
        found.append((*prefix, name))
        members = (
            get_args(info.annotation) if get_origin(info.annotation) is UnionType else (info.annotation,)
        )
        for member in members:
            is_list = get_origin(member) is list
            inner = get_args(member)[0] if is_list else member
            if isinstance(inner, type) and issubclass(inner, fhir_elements._Element):
                found += read_paths(inner, (*prefix, name, 0) if is_list else (*prefix, name))
    return found


def with_value_at(resource: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy with ``value`` at ``path``, making the objects and arrays on the way; a choice element
    replaces the other variants of its choice."""
    changed = copy.deepcopy(resource)
    for prefix, variants in CHOICES.items():
        if path[0] in {prefix + v for v in variants}:
            for variant in variants:
                changed.pop(prefix + variant, None)
    node: Any = changed
    for step, following in zip(path, path[1:], strict=False):
        if isinstance(step, int):
            while len(node) <= step:
                node.append({})
            node = node[step]
        else:
            if not isinstance(node.get(step), dict | list):
                node[step] = [] if isinstance(following, int) else {}
            node = node[step]
    if isinstance(path[-1], int):
        node.append(value)
    else:
        node[path[-1]] = value
    return changed


@pytest.mark.parametrize("kind", sorted(BASE))
def test_every_read_element_with_every_odd_value_is_judged_as_the_full_model_does(kind: str):
    """Exhaustive single changes: each element the light model reads, set to each odd value."""
    paths = read_paths(MODELS[kind])
    assert len(paths) >= {"Patient": 3, "Condition": 20, "Immunization": 10, "Observation": 50}[kind]
    disagreements = []
    for path in paths:
        for value in ODD_VALUES:
            resource = with_value_at(BASE[kind], path, value)
            if null_in_a_required_concept(resource):
                continue
            if fhir_elements.well_formed(MODELS[kind], resource) != full_r4b_verdict(resource):
                disagreements.append((path, value))
    assert not disagreements


@pytest.mark.parametrize(
    "kind, change",
    [
        ("Observation", {"valueString": "2.1"}),  # a second value[x]
        ("Observation", {"effectivePeriod": {"start": "2026-11-11"}}),  # a second effective[x]
        ("Observation", {"status": None}),
        ("Immunization", {"occurrenceDateTime": REMOVED}),  # occurrence[x] is required
        ("Immunization", {"occurrenceString": "last spring"}),
        ("Immunization", {"occurrenceDateTime": REMOVED, "occurrenceString": "last spring"}),
    ],
)
def test_choice_and_required_elements_are_judged_as_the_full_model_does(kind, change):
    resource = {k: v for k, v in {**BASE[kind], **change}.items() if v is not REMOVED}
    assert fhir_elements.well_formed(MODELS[kind], resource) == full_r4b_verdict(resource)


def test_every_fixture_resource_is_judged_as_the_full_model_judges_it():
    resources = [
        resource
        for path in sorted((FIXTURES / "patients").glob("*.json"))
        for resource in patient_resources(path.stem)
        if resource["resourceType"] in MODELS
    ]
    assert len(resources) > 1000
    for resource in resources:
        valid = full_model_accepts(resource)
        assert fhir_elements.well_formed(MODELS[resource["resourceType"]], resource) == valid, resource.get(
            "id"
        )


@pytest.mark.parametrize(
    "unread",
    [{"performer": [{"reference": 5}]}, {"meta": {"lastUpdated": "yesterday"}}, {"note": "not an array"}],
    ids=["performer", "meta", "unknown-element"],
)
def test_elements_no_rule_reads_are_not_checked(unread):
    resource = {**BASE["Observation"], **unread}
    assert fhir_elements.well_formed(fhir_elements.Observation, resource)
    assert not full_model_accepts(resource)
