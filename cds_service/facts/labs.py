"""Lab results: the newest result of each lab in ``cards/labs.toml``, read as lab feeds send it.

- The newest result by instant is the reading. When it cannot be read (malformed where read, a unit that
  cannot be converted, an implausible value, an unreadable date) the reading is ``unreadable``: an older
  result never stands in for it, and the check that needed it says it was not done.
- Units: a UCUM ``code`` the lab accepts wins over the written ``unit``; a written unit is looked up in the
  lab's UCUM units, then in ``cards/units.toml`` (K/uL, mg/dl...), then in the lab's ``read_as``.
- Comparators (``<0.5``) and numbers written as text (``valueString ">60"``) are kept as bounds.
- A count with a ``derived`` recipe (ANC = WBC x neutrophil % / 100, same specimen time) is derived when no
  absolute count is as new.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from .. import codes
from ..content import Content, LabDefinition
from ..fhir import Json
from ..fhir.codings import as_list, codings, concept_label, concept_words
from ..fhir.dates import TakenAt, observation_time
from ..fhir.elements import Observation, readable
from ..fhir.quantities import Measured, read_number_text, read_quantity, significant_digits, to_precision
from ..fhir.references import reference
from .model import CodedResult, LabReading, LabResult
from .notes import Notes

IGNORED_OBSERVATION_STATUS = {"entered-in-error", "cancelled", "registered"}

Candidate = tuple[TakenAt, Json]


def read_labs(
    observations: list[Json] | None, content: Content, as_of: date, notes: Notes
) -> dict[str, LabReading]:
    """The reading of every lab the content defines (``observations``: None when they could not be had)."""
    definitions = content.labs.labs
    if observations is None:
        return {k: LabReading(k, d.label, "unavailable") for k, d in definitions.items()}
    candidates: dict[str, list[Candidate]] = defaultdict(list)
    for resource in observations:
        key = _lab_key(resource.get("code"), content.lab_by_loinc)
        if key is None:
            continue
        taken = observation_time(resource)
        if taken.when is None:
            notes.skip(resource, f"{definitions[key].label} result has no usable date and was ignored")
            continue
        candidates[key].append((taken, resource))
    for found in candidates.values():
        found.sort(key=lambda pair: pair[0].when, reverse=True)  # type: ignore[arg-type, return-value]
    reader = _LabReader(content, as_of, notes)
    readings = {key: reader.newest(key, lab, candidates.get(key, [])) for key, lab in definitions.items()}
    for key, lab in definitions.items():
        if lab.derived is not None:
            readings[key] = reader.derived(key, lab, readings[key], candidates)
    return readings


def _lab_key(concept: Any, lab_by_code: dict[str, str]) -> str | None:
    """The lab of a concept's first LOINC coding the content knows. Reads the concept inline: this runs
    once per Observation, for tens of thousands of them."""
    if not isinstance(concept, dict):
        return None
    for coding in as_list(concept.get("coding")):
        if isinstance(coding, dict) and coding.get("system") == codes.LOINC:
            code = coding.get("code")
            if isinstance(code, str) and code in lab_by_code:
                return lab_by_code[code]
    return None


class _LabReader:
    def __init__(self, content: Content, as_of: date, notes: Notes):
        self.content = content
        self.as_of = as_of
        self.notes = notes

    def _counted(self, lab: LabDefinition, found: list[Candidate]) -> Candidate | None:
        """The newest result that counts: entered-in-error, cancelled and registered ones do not."""
        for taken, resource in found:
            if _counts(resource):
                return taken, resource
            if resource.get("status") == "entered-in-error":
                self.notes.skip(
                    resource,
                    f"{lab.label} result of {_day(taken)} is marked entered-in-error and was ignored",
                )
        return None

    def newest(self, key: str, lab: LabDefinition, found: list[Candidate]) -> LabReading:
        newest = self._counted(lab, found)
        if newest is None:
            return LabReading(key, lab.label, "missing")
        reading = self.read(key, lab, *newest)
        if not lab.remember_positive:
            return reading
        if isinstance(reading.result, CodedResult) and reading.result.result == "positive":
            return replace(reading, positive_ever=reading.result)  # the newest is the newest positive
        return replace(reading, positive_ever=self._newest_positive(key, lab, found))

    def _newest_positive(self, key: str, lab: LabDefinition, found: list[Candidate]) -> CodedResult | None:
        """A screening result stays positive when a later one is negative (a positive IGRA is latent TB until
        treated): the newest readable positive among all counted results."""
        for taken, resource in found:
            if _counts(resource) and self._answer(resource)[0] == "positive":  # cheap, before validating
                result = self.read(key, lab, taken, resource).result
                if isinstance(result, CodedResult) and result.result == "positive":
                    return result
        return None

    def read(self, key: str, lab: LabDefinition, taken: TakenAt, resource: Json) -> LabReading:
        day = _day(taken)
        unreadable = LabReading(key, lab.label, "unreadable", taken=day)
        if taken.problem:
            return replace(unreadable, problem=f"{lab.label} result of {day}: {taken.problem}")
        lenient = readable(Observation, resource)
        if lenient is None:
            return replace(unreadable, problem=f"{lab.label} result of {day} is malformed where it is read")
        assert taken.when is not None
        reader = {"coded": self._coded, "category": self._category}.get(lab.kind, self._quantity)
        result = reader(key, lab, taken.when, lenient)
        if isinstance(result, str):
            return replace(unreadable, problem=result)
        return self._dated(key, lab, result, day)

    def _dated(self, key: str, lab: LabDefinition, result: LabResult | CodedResult, day: date) -> LabReading:
        """A readable result, current or stale by the lab's look-back window."""
        stale = day < self.as_of - timedelta(days=lab.lookback_days)
        return LabReading(key, lab.label, "stale" if stale else "current", result, None, lab.lookback_days, day)

    # --- quantities ---------------------------------------------------------------------------
    def _quantity(self, key: str, lab: LabDefinition, when: datetime, resource: Json) -> LabResult | str:
        day = when.date().isoformat()
        measured = _measured(resource)
        if isinstance(measured, str):
            return f"{lab.label} result of {day}: {measured}"
        converted = self._factor(measured, lab, resource)
        if isinstance(converted, str):
            return f"{lab.label} {measured.written} of {day}: {converted}"
        factor, how = converted
        value = round(measured.value * factor, 6)
        digits = max(3, significant_digits(measured.value))  # no more precision than the lab reported
        if lab.plausible and not lab.plausible[0] <= value <= lab.plausible[1]:
            return (f"{lab.label} {measured.written} of {day} is implausible ({to_precision(value, digits)} "
                    f"{lab.canonical_unit}); the unit may be wrong")  # fmt: skip
        assert lab.canonical_unit is not None
        shown = lab.display_unit or lab.canonical_unit
        high = self._reference_high(resource, lab)
        return LabResult(key, lab.label, value, lab.canonical_unit, measured.written, when, reference(resource),
                         high, shown, measured.comparator, how, digits)  # fmt: skip

    def _factor(
        self, measured: Measured, lab: LabDefinition, resource: Json | None
    ) -> tuple[float, str | None] | str:
        """The factor to the lab's canonical unit, and a note when the unit was read as its code defines it."""
        if measured.code and measured.code in lab.units:
            return lab.units[measured.code], None
        for text in (measured.unit, measured.code):
            if not text:
                continue
            ucum = text if text in lab.units else self.content.units.ucum_of(text)
            if ucum in lab.units:
                return lab.units[ucum], None
            if text in lab.read_as:
                read_as = lab.read_as[text]
                return lab.units[read_as.unit], f"unit written as {text} ({read_as.why})"
        if measured.unit or measured.code:
            return f"unit cannot be converted to {lab.canonical_unit}"
        range_unit = _reference_range_unit(resource) if resource is not None else None
        if range_unit is not None:
            from_range = self._factor(replace(measured, unit=range_unit), lab, None)
            if not isinstance(from_range, str):
                return from_range[0], f"unit {range_unit} taken from the result's reference range"
        if lab.text_unit is not None:
            return lab.units[lab.text_unit.unit], None
        return "no unit"

    def _reference_high(self, resource: Json, lab: LabDefinition) -> float | None:
        for ranges in as_list(resource.get("referenceRange")):
            high = ranges.get("high") if isinstance(ranges, dict) else None
            measured = read_quantity(high, "referenceRange.high", codes.UCUM)
            if isinstance(measured, Measured) and measured.comparator is None:
                converted = self._factor(measured, lab, None)
                if not isinstance(converted, str):
                    return round(measured.value * converted[0], 6)
        return None

    # --- coded results ------------------------------------------------------------------------
    def _coded(self, key: str, lab: LabDefinition, when: datetime, resource: Json) -> CodedResult | str:
        result, reported = self._answer(resource)
        if result is None:
            return f"{lab.label} result '{reported}' of {when.date().isoformat()} cannot be interpreted"
        return CodedResult(key, lab.label, result, reported, when, reference(resource))

    def _meaning(self, concept: Any, valuesets: Iterable[tuple[str, str]]) -> str | None:
        """The meaning whose answer value set holds one of the concept's codings, in the order given."""
        for meaning, valueset_name in valuesets:
            valueset = self.content.valueset(valueset_name)
            if any(valueset.matches(s, c) for s, c, _ in codings(concept)):
                return meaning
        return None

    def _category(self, key: str, lab: LabDefinition, when: datetime, resource: Json) -> CodedResult | str:
        concept = resource.get("valueCodeableConcept")
        meaning = self._meaning(concept, lab.categories.items())
        if meaning is not None:
            return CodedResult(key, lab.label, meaning, concept_label(concept), when, reference(resource))
        shown = concept_label(concept) if concept else "no coded answer"
        return f"{lab.label} '{shown}' of {when.date().isoformat()} is not an answer the service reads"

    def _answer(self, resource: Json) -> tuple[Literal["positive", "negative", "indeterminate"] | None, str]:
        answers = self.content.labs.coded_answers
        concept = resource.get("valueCodeableConcept")
        meaning = self._meaning(concept, (("positive", answers.positive), ("negative", answers.negative),
                                          ("indeterminate", answers.indeterminate)))  # fmt: skip
        if meaning is not None:
            return meaning, concept_label(concept)  # type: ignore[return-value]
        words = [resource["valueString"]] if isinstance(resource.get("valueString"), str) else []
        words += concept_words(concept)
        for interpretation in as_list(resource.get("interpretation")):
            words += concept_words(interpretation) + [c for _, c, _ in codings(interpretation) if c]
        normalised = {w.strip().lower() for w in words}
        for meaning, vocabulary in answers.words_by_meaning:
            if normalised & vocabulary:
                return meaning, words[0]  # type: ignore[return-value]
        return None, words[0] if words else concept_label(concept) if concept else "no value"

    # --- derived counts -----------------------------------------------------------------------
    def derived(
        self, key: str, lab: LabDefinition, absolute: LabReading, candidates: dict[str, list[Candidate]]
    ) -> LabReading:
        """The count derived from total x percentage taken at the same instant, when no absolute count is as new."""
        assert lab.derived is not None
        definitions = self.content.labs.labs
        count_lab, percent_lab = definitions[lab.derived.count], definitions[lab.derived.percent]
        counts = {
            taken.when: (taken, r)
            for taken, r in reversed(candidates.get(lab.derived.count, []))
            if _counts(r)
        }
        pair = next(((taken, r, counts[taken.when]) for taken, r in candidates.get(lab.derived.percent, [])
                     if taken.when in counts and _counts(r)), None)  # fmt: skip
        if pair is None:
            return absolute
        percent_taken, percent_resource, (count_taken, count_resource) = pair
        if absolute.taken is not None and absolute.taken >= _day(percent_taken):
            return absolute  # an absolute count as new as the pair (a missing one has no date)
        count = self.read(lab.derived.count, count_lab, count_taken, count_resource)
        percent = self.read(lab.derived.percent, percent_lab, percent_taken, percent_resource)
        day = _day(percent_taken)
        for part in (count, percent):
            if part.status == "unreadable":
                problem = f"{lab.label} of {day} could not be derived: {part.problem}"
                return LabReading(key, lab.label, "unreadable", problem=problem, taken=day)
        assert isinstance(count.result, LabResult) and isinstance(percent.result, LabResult)
        comparator = _product_comparator(count.result.comparator, percent.result.comparator)
        if comparator == "mixed":
            problem = (f"{lab.label} of {day} could not be derived: {count.result.shown} and "
                       f"{percent.result.shown} bound it in opposite directions")  # fmt: skip
            return LabReading(key, lab.label, "unreadable", problem=problem, taken=day)
        value = round(count.result.value * percent.result.value / 100, 6)
        how = f"calculated as {count.result.label} {count.result.shown} x {percent.result.label} {percent.result.shown}"
        assert lab.canonical_unit is not None and percent_taken.when is not None
        digits = min(count.result.digits, percent.result.digits)
        result = LabResult(key, lab.label, value, lab.canonical_unit, "", percent_taken.when,
                           f"{count.result.resource} and {percent.result.resource}", None,
                           lab.display_unit or lab.canonical_unit, comparator, how, digits)  # fmt: skip
        result = replace(result, reported=result.shown)
        return self._dated(key, lab, result, day)


def _product_comparator(a: str | None, b: str | None) -> str | None:
    """The comparator of a product of two positive values bounded by ``a`` and ``b``."""
    kinds = {c[0] for c in (a, b) if c}
    if len(kinds) > 1:
        return "mixed"
    if not kinds:
        return None
    strict = any(c in ("<", ">") for c in (a, b))
    kind = kinds.pop()
    return kind if strict else f"{kind}="


def _counts(resource: Json) -> bool:
    status = resource.get("status")
    return not (isinstance(status, str) and status in IGNORED_OBSERVATION_STATUS)


def _measured(resource: Json) -> Measured | str:
    if "valueQuantity" in resource:
        return read_quantity(resource["valueQuantity"], "valueQuantity", codes.UCUM)
    text = resource.get("valueString")
    if isinstance(text, str):
        measured = read_number_text(text)
        return measured if measured is not None else f"'{text[:40]}' is not a number"
    return "no numeric value"


def _reference_range_unit(resource: Json) -> str | None:
    for ranges in as_list(resource.get("referenceRange")):
        for end in ("low", "high"):
            quantity = ranges.get(end) if isinstance(ranges, dict) else None
            if isinstance(quantity, dict):
                for element in ("code", "unit"):
                    if isinstance(quantity.get(element), str) and quantity[element]:
                        return quantity[element]
    return None


def _day(taken: TakenAt) -> date:
    assert taken.when is not None
    return taken.when.date()
