"""The R4 elements the rules read, as typed models: how the facts step decides a resource can be read.

A resource the facts step has selected (the newest result of a lab, a condition or immunization that
matches a value set, the Patient) is checked here before it is read. Each element a rule reads is checked
against its R4 datatype with fhir.resources' own primitive types (dateTime, code, decimal...), so a value
is accepted or refused exactly as the full R4B model would; a required element must be there and a
choice element ([x]) may appear once. Elements no rule reads are not checked: a malformed ``meta`` or
``performer`` must not hide a patient's newest neutrophil count, and validating them with the full
models cost about 0.1 ms a resource, most of a small patient's call.

Lenient where it costs nothing, as HAPI FHIR's lenient parser is: an empty string, object or array (and a
JSON null) is read as absent, so ``"display": ""`` in a code, common in real exports, does not set a
newest result aside. Strict where a rule reads: a value of the wrong type or format there still does.

tests/test_fhir_elements.py holds the models to the full R4B models on every element listed here.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.fhirtypes import (
    BooleanType,
    CodeType,
    DateTimeType,
    DateType,
    DecimalType,
    IdType,
    InstantType,
    StringType,
    UriType,
)
from pydantic import BaseModel, ConfigDict, model_validator

from . import EMPTY


class _Element(BaseModel):
    """Unread elements and primitive extensions (``_status``) are ignored, not refused."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Coding(_Element):
    system: UriType | None = None
    version: StringType | None = None
    code: CodeType | None = None
    display: StringType | None = None
    userSelected: BooleanType | None = None


class CodeableConcept(_Element):
    coding: list[Coding] | None = None
    text: StringType | None = None


class Quantity(_Element):
    value: DecimalType | None = None
    comparator: CodeType | None = None
    unit: StringType | None = None
    system: UriType | None = None
    code: CodeType | None = None


class Period(_Element):
    start: DateTimeType | None = None
    end: DateTimeType | None = None


class ReferenceRange(_Element):
    low: Quantity | None = None
    high: Quantity | None = None


def _one_of(resource: Any, prefix: str, variants: tuple[str, ...], required: bool) -> Any:
    if isinstance(resource, dict):
        present = [v for v in variants if resource.get(prefix + v) is not None]
        if len(present) > 1:
            raise ValueError(f"{prefix}[x] given more than once: {', '.join(prefix + v for v in present)}")
        if required and not present:
            raise ValueError(f"{prefix}[x] is required")
    return resource


# Every variant of the choice elements the rules read, so that two of them at once are refused.
EFFECTIVE = ("DateTime", "Period", "Timing", "Instant")
VALUE = ("Quantity", "CodeableConcept", "String", "Boolean", "Integer", "Range", "Ratio", "SampledData",
         "Time", "DateTime", "Period")  # fmt: skip
OCCURRENCE = ("DateTime", "String")


class Patient(_Element):
    id: IdType | None = None
    birthDate: DateType | None = None
    gender: CodeType | None = None


class Condition(_Element):
    id: IdType | None = None
    code: CodeableConcept | None = None
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    onsetDateTime: DateTimeType | None = None
    recordedDate: DateTimeType | None = None


class Observation(_Element):
    id: IdType | None = None
    status: CodeType
    code: CodeableConcept
    effectiveDateTime: DateTimeType | None = None
    effectiveInstant: InstantType | None = None
    effectivePeriod: Period | None = None
    issued: InstantType | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueString: StringType | None = None
    interpretation: list[CodeableConcept] | None = None
    referenceRange: list[ReferenceRange] | None = None

    @model_validator(mode="before")
    @classmethod
    def _choices(cls, resource: Any) -> Any:
        _one_of(resource, "effective", EFFECTIVE, required=False)
        return _one_of(resource, "value", VALUE, required=False)


class Immunization(_Element):
    id: IdType | None = None
    status: CodeType
    vaccineCode: CodeableConcept
    occurrenceDateTime: DateTimeType | None = None

    @model_validator(mode="before")
    @classmethod
    def _occurrence(cls, resource: Any) -> Any:
        return _one_of(resource, "occurrence", OCCURRENCE, required=True)


def well_formed(model: type[_Element], resource: Any) -> bool:
    """Whether the elements of ``resource`` that the rules read are valid R4."""
    try:
        model.model_validate(resource)
    except Exception:  # pydantic's ValidationError, and the plain ValueErrors of fhir.resources' types
        return False
    return True




def without_empty(value: Any) -> Any:
    """``value`` with every empty string, object, array and null removed, at any depth."""
    if isinstance(value, dict):
        kept = {k: without_empty(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in EMPTY}
    if isinstance(value, list):
        kept_items = [without_empty(v) for v in value]
        return [v for v in kept_items if v not in EMPTY]
    return value


def readable(model: type[_Element], resource: Any) -> Any | None:
    """``resource`` as the rules may read it, or None when an element they read is malformed.

    Valid resources (nearly all) are returned as they are, at the cost of one validation; only one that
    fails is read again without its empty values.
    """
    if well_formed(model, resource):
        return resource
    lenient = without_empty(resource)
    return lenient if lenient != resource and well_formed(model, lenient) else None
