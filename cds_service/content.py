"""The clinical content schema (pydantic models of ``cards/``) and ``load()``, run once at start-up.

Content is reviewed data, not code. Anything wrong with it (a code that is not well formed for its
system, a threshold without a unit, a value set no one defined, a rule file with no rule) raises
``ContentError`` naming the file, and the service does not start.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from . import codes
from .cards import SUMMARY_MAX, word_count

Indicator = Literal["info", "warning", "critical"]
Situation = Literal[
    "baricitinib-ordered",  # an order hook whose draft orders include baricitinib
    "new-start",  # baricitinib ordered for a patient not on it
    "order-while-on-baricitinib",  # an order hook for any order, for a patient already on baricitinib
    "patient-view-on-baricitinib",  # a chart opened for a patient on baricitinib
]

DataKey = Literal["patient", "conditions", "observations", "immunizations", "medications", "encounters"]


class ContentError(Exception):
    """Clinical content is missing or invalid; the message names the file and the problem."""


class ContentModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- value sets -------------------------------------------------------------------------------


class ValueSetEntry(ContentModel):
    system: str
    code: str | None = None
    prefix: str | None = None
    display: str
    verified: bool = True
    note: str | None = None

    @model_validator(mode="after")
    def _code_or_prefix(self) -> ValueSetEntry:
        if (self.code is None) == (self.prefix is None):
            raise ValueError(f"{self.display!r}: give exactly one of code or prefix")
        if self.prefix is not None and self.system != codes.ICD10CM:
            raise ValueError(f"{self.prefix!r}: prefix matching is only allowed for ICD-10-CM")
        problem = codes.malformed(self.system, self.code or self.prefix or "", prefix=self.prefix is not None)
        if problem:
            raise ValueError(problem)
        if not self.verified and not self.note:
            raise ValueError(f"{self.code}: an unverified code needs a note saying how it may be used")
        return self


class ValueSet(ContentModel):
    """Codes matched exactly (ICD-10-CM also by prefix). No terminology server: descendants of a
    SNOMED CT concept match only when listed. ``exclude`` carves codes out of an included prefix."""

    name: str
    title: str
    include: list[ValueSetEntry] = Field(min_length=1)
    exclude: list[ValueSetEntry] = Field(default_factory=list)

    # Built with the value set, at start-up: matching runs for every coding of every call.
    _included: _EntryIndex = PrivateAttr()
    _excluded: _EntryIndex = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        self._included, self._excluded = _EntryIndex(self.include), _EntryIndex(self.exclude)

    @property
    def included(self) -> _EntryIndex:
        return self._included

    def matches(self, system: str | None, code: str | None) -> ValueSetEntry | None:
        if not system or not code:
            return None
        code = codes.normalise(system, code)
        if self._excluded.find(system, code):
            return None
        return self._included.find(system, code)

    def exact_codes(self) -> set[tuple[str, str]]:
        return {(e.system, e.code) for e in self.include if e.code is not None}


class _EntryIndex:
    """The first entry, in file order, that a (system, normalised code) matches: exactly by code, or by
    prefix. The same answer as scanning the entries in order, in a few dictionary lookups whatever the
    number of entries: one, and for an ICD-10-CM code one per prefix of it."""

    def __init__(self, entries: list[ValueSetEntry]):
        self.exact: dict[tuple[str, str], tuple[int, ValueSetEntry]] = {}
        self.prefixes: dict[tuple[str, str], tuple[int, ValueSetEntry]] = {}
        for position, entry in enumerate(entries):
            if entry.code is not None:
                self.exact.setdefault((entry.system, codes.normalise(entry.system, entry.code)), (position, entry))
            elif entry.prefix is not None:
                self.prefixes.setdefault((entry.system, entry.prefix), (position, entry))

    def find(self, system: str, code: str) -> ValueSetEntry | None:
        found = self.exact.get((system, code))
        for prefix in _prefixes(system, code):
            by_prefix = self.prefixes.get((system, prefix))
            if by_prefix is not None and (found is None or by_prefix[0] < found[0]):
                found = by_prefix
        return found[1] if found is not None else None


def _prefixes(system: str, code: str) -> list[str]:
    """The prefixes a value set entry could give for this code: only ICD-10-CM entries have prefixes
    (ValueSetEntry checks it), and none is longer than a whole ICD-10-CM code."""
    if system != codes.ICD10CM:
        return []
    return [code[:length] for length in range(1, min(len(code), codes.ICD10CM_LONGEST) + 1)]


class GroupIndex:
    """Which of several value sets (condition groups, vaccine groups...) a code belongs to, without asking
    each of them: every call's conditions, immunizations and medications go through here, and adding a
    group or a code to cards/ must not make a call slower."""

    def __init__(self, groups: dict[str, ValueSet]):
        self._groups = groups
        self._order = {key: position for position, key in enumerate(groups)}
        self._candidates: dict[tuple[str, str], list[str]] = {}
        for key, valueset in groups.items():
            for system_and_code in [*valueset.included.exact, *valueset.included.prefixes]:
                self._candidates.setdefault(system_and_code, []).append(key)

    def find(self, system: str | None, code: str | None) -> list[tuple[str, ValueSetEntry]]:
        """(group key, matching entry) of each group the code belongs to, in the groups' file order."""
        if not system or not code:
            return []
        code = codes.normalise(system, code)
        keys = list(self._candidates.get((system, code), ()))
        for prefix in _prefixes(system, code):
            keys += self._candidates.get((system, prefix), ())
        found = []
        for key in sorted(set(keys), key=self._order.__getitem__):
            entry = self._groups[key].matches(system, code)
            if entry is not None:
                found.append((key, entry))
        return found


class NameIndex:
    """Drug names found in free text (an order written as text only), as whole words and ignoring case,
    in lookups that do not grow with the number of names: each run of up to as many words as the longest
    name is looked up once."""

    _WORD = re.compile(r"\w+")

    def __init__(self, names_by_group: dict[str, list[str]]):
        self._by_words: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for key, names in names_by_group.items():
            for name in names:
                self._by_words.setdefault(tuple(self._WORD.findall(name.lower())), []).append((key, name))
        self._longest = max((len(words) for words in self._by_words), default=0)

    def find(self, texts: list[str]) -> dict[str, str]:
        """Group key -> the first of its names found, reading the texts in order."""
        found: dict[str, str] = {}
        for text in texts:
            words = self._WORD.findall(text.lower())
            for start in range(len(words)):
                for length in range(1, self._longest + 1):
                    for key, name in self._by_words.get(tuple(words[start : start + length]), ()):
                        found.setdefault(key, name)
        return found


# --- shared building blocks of rule content -----------------------------------------------------


class Quantity(ContentModel):
    """A threshold always carries its unit; it is converted to the lab's canonical unit at load."""

    value: float
    unit: str


class SourceRef(ContentModel):
    id: str
    label: str
    url: str = Field(pattern=r"^https?://")
    section: str | None = None
    quote: str | None = None
    secondary: bool = False  # a mirror, summary or news page, not the label or the guidance itself

    @property
    def shown(self) -> str:
        """The label as a card shows it, saying when the source is secondary."""
        return f"{self.label} (secondary source)" if self.secondary else self.label


class OverrideReason(ContentModel):
    code: str = Field(pattern=r"^[a-z0-9-]+$")
    display: str


class CardWords(ContentModel):
    """Words many cards share (card_shape.toml ``[words]``)."""

    recorded_header: str
    more_text: str = Field(pattern=r"\{count\}")
    ordered_now: str
    active: str


class RuleContent(ContentModel):
    """What every rule file holds. Rules subclass it with their own thresholds and texts."""

    placeholders: ClassVar[frozenset[str]] = frozenset()

    rule: str
    topic: str
    title: str
    indicator: Indicator
    basis: Literal["label", "practice", "label-and-practice"]
    when: str
    then: str
    runs_on: list[Situation] = Field(min_length=1)
    content_version: str
    reviewed_by: str
    reviewed_on: date
    sources: list[SourceRef] = Field(min_length=1)
    override_reasons: list[OverrideReason] = Field(default_factory=list)
    reads: list[DataKey] = Field(min_length=1)
    # Filled in by load() from vocabulary.toml and card_shape.toml, so every card names the same code
    # systems and says its basis the same way.
    topic_system: str = ""
    topic_display: str = ""
    override_reason_system: str = ""
    basis_line: str = ""
    words: CardWords | None = None

    def indicators(self) -> set[str]:
        """Every indicator this rule's cards can carry (a rule whose cards vary says so by overriding this)."""
        return {self.indicator}

    @model_validator(mode="after")
    def _templates_use_known_placeholders(self) -> RuleContent:
        for name, text in _template_fields(self):
            used = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            unknown = used - self.placeholders
            if unknown:
                raise ValueError(f"{name}: unknown placeholder(s) {sorted(unknown)}")
        return self


def _template_fields(model: BaseModel, prefix: str = "") -> list[tuple[str, str]]:
    """Every string field whose name ends in _text or _summary (the card templates), recursively."""
    found: list[tuple[str, str]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, str) and (name.endswith("_text") or name.endswith("summary")):
            found.append((prefix + name, value))
        elif isinstance(value, BaseModel):
            found.extend(_template_fields(value, f"{prefix}{name}."))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found.extend(_template_fields(item, f"{prefix}{name}[{i}]."))
    return found


class CardShape(ContentModel):
    """The shape every card keeps (card_shape.toml): how long a summary and a detail may be, which words are
    not for clinicians, and the line that says a card's basis."""

    summary_chars_aim: int = Field(gt=0, le=SUMMARY_MAX)
    detail_words_max: int = Field(gt=0)
    template_words_max: int = Field(gt=0)
    placeholder_chars: int = Field(ge=0)
    placeholder_words: int = Field(ge=0)
    developer_words: list[str] = Field(min_length=1)
    words: CardWords
    basis: dict[Literal["label", "practice", "label-and-practice"], str]

    @model_validator(mode="after")
    def _every_basis_said(self) -> CardShape:
        missing = {"label", "practice", "label-and-practice"} - set(self.basis)
        if missing:
            raise ValueError(f"basis: no line for {sorted(missing)}")
        return self

    def problems(self, rule: RuleContent) -> list[str]:
        """Why the rule's templates cannot make cards of this shape (none: they can)."""
        found = []
        for name, text in _template_fields(rule):
            lowered = text.lower()
            found += [f"{name}: {word!r} is not for clinicians" for word in self.developer_words if word in lowered]
            parts = list(string.Formatter().parse(text))
            if name.endswith("summary"):
                length = sum(len(literal) + (self.placeholder_chars if field else 0) for literal, field, _, _ in parts)
                if length > self.summary_chars_aim:
                    found.append(f"{name}: about {length} characters, aim {self.summary_chars_aim}")
            else:
                words = sum(word_count(literal) + (self.placeholder_words if field else 0) for literal, field, _, _ in parts)
                if words > self.template_words_max:
                    found.append(f"{name}: {words} words, at most {self.template_words_max}")
        return found


# --- facts-layer content: labs, conditions, medications, vaccines -------------------------------


class ReadAs(ContentModel):
    """A unit a lab writes that its LOINC code defines more exactly (eGFR "mL/min" is per 1.73 m2)."""

    unit: str
    why: str


class DerivedCount(ContentModel):
    """An absolute count derived from a total count and a percentage of it taken at the same time."""

    count: str  # the lab key of the total (white cells)
    percent: str  # the lab key of the percentage (neutrophils per 100 white cells)


class LabDefinition(ContentModel):
    label: str
    valueset: str
    kind: Literal["quantity", "coded", "category"]
    lookback_days: int = Field(gt=0)
    canonical_unit: str | None = None
    display_unit: str | None = None  # how the canonical unit is written for clinicians ("cells/uL")
    units: dict[str, float] = Field(default_factory=dict)
    plausible: tuple[float, float] | None = None
    read_as: dict[str, ReadAs] = Field(default_factory=dict)
    text_unit: ReadAs | None = None  # the unit of a number written as text with none (">60" for eGFR)
    derived: DerivedCount | None = None
    categories: dict[str, str] = Field(default_factory=dict)  # a category lab: meaning -> answer value set
    remember_positive: bool = False  # a coded lab whose positive stays positive when a later result is negative

    @model_validator(mode="after")
    def _quantity_has_units(self) -> LabDefinition:
        if (self.kind == "category") != bool(self.categories):
            raise ValueError(f"{self.label}: a category lab, and only one, lists its categories")
        if self.remember_positive and self.kind != "coded":
            raise ValueError(f"{self.label}: only a coded lab can remember a positive result")
        if self.kind == "quantity":
            if not self.canonical_unit or self.units.get(self.canonical_unit) != 1.0:
                raise ValueError(f"{self.label}: canonical_unit must be listed in units with factor 1")
            if any(f <= 0 for f in self.units.values()):
                raise ValueError(f"{self.label}: unit factors must be positive")
        return self

    def to_canonical(self, quantity: Quantity) -> float:
        factor = self.units.get(quantity.unit)
        if factor is None:
            raise ValueError(f"unit {quantity.unit!r} is not one of {self.label}'s units {sorted(self.units)}")
        return quantity.value * factor


class EgfrEquation(ContentModel):
    """Race-free CKD-EPI 2021 creatinine equation (coefficients as published)."""

    source: SourceRef
    constant: float
    kappa_female: float
    kappa_male: float
    alpha_female: float
    alpha_male: float
    exponent_above_kappa: float
    age_base: float
    female_factor: float


class CodedAnswers(ContentModel):
    positive: str
    negative: str
    indeterminate: str
    positive_words: list[str]
    negative_words: list[str]
    indeterminate_words: list[str]

    # Lower-cased once at load, not per result; in the order a result's words are read (indeterminate,
    # negative, positive), as facts/labs.py reads them.
    _words: tuple[tuple[str, frozenset[str]], ...] = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        self._words = tuple(
            (meaning, frozenset(w.lower() for w in words))
            for meaning, words in (("indeterminate", self.indeterminate_words), ("negative", self.negative_words),
                                   ("positive", self.positive_words))
        )  # fmt: skip

    @property
    def words_by_meaning(self) -> tuple[tuple[str, frozenset[str]], ...]:
        return self._words


class Labs(ContentModel):
    labs: dict[str, LabDefinition]
    coded_answers: CodedAnswers
    egfr_equation: EgfrEquation


class WrittenUnit(ContentModel):
    """A unit string lab feeds write in Quantity.unit (or after a number in text), and its UCUM code."""

    written: str = Field(min_length=1)
    ucum: str = Field(min_length=1)
    source: str
    seen: bool  # the string was seen as written at the source (else a near variant was)


class Units(ContentModel):
    written: list[WrittenUnit]
    sources: dict[str, SourceRef]

    _ucum_of: dict[str, str] = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        self._ucum_of = {w.written: w.ucum for w in self.written}

    def ucum_of(self, written: str) -> str | None:
        return self._ucum_of.get(written.strip())


class ConditionGroup(ContentModel):
    label: str
    valueset: str
    counts: Literal["current", "history"]


class Conditions(ContentModel):
    groups: dict[str, ConditionGroup]


class ProductStrength(ContentModel):
    code: str
    strength_mg: float = Field(gt=0)


class Baricitinib(ContentModel):
    valueset: str
    ingredient: str  # the verified RxNorm ingredient code, written into orders the service suggests
    names: list[str] = Field(min_length=1)
    products: list[ProductStrength]
    tablet_units: list[str]
    mass_units: dict[str, float]
    _strength_by_code: dict[str, float] = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        self._strength_by_code = {p.code: p.strength_mg for p in self.products}

    @property
    def strength_by_code(self) -> dict[str, float]:
        return self._strength_by_code


class MedicationGroup(ContentModel):
    label: str
    valueset: str | None = None
    names: list[str] = Field(default_factory=list)
    basis: Literal["label", "project-reading"]
    systemic_only: bool = False  # an eye drop or a skin ointment of the drug is not a member

    @model_validator(mode="after")
    def _some_way_to_match(self) -> MedicationGroup:
        if not self.valueset and not self.names:
            raise ValueError(f"{self.label}: needs a valueset or names")
        return self


class Dosing(ContentModel):
    """How a Dosage's timing is read: timing.code and timing.repeat.when events, in times a day."""

    timing_codes: dict[str, float]
    timing_events: dict[str, float]
    source: SourceRef

    @model_validator(mode="after")
    def _positive(self) -> Dosing:
        for name, per_day in [*self.timing_codes.items(), *self.timing_events.items()]:
            if per_day <= 0:
                raise ValueError(f"{name}: times a day must be positive")
        if any(code != code.upper() for code in self.timing_codes):
            raise ValueError("timing_codes: write codes in upper case (they are matched ignoring case)")
        return self


class Medications(ContentModel):
    baricitinib: Baricitinib
    dosing: Dosing
    local_use_words: list[str] = Field(min_length=1)
    groups: dict[str, MedicationGroup]


class VaccineGroup(ContentModel):
    label: str
    valueset: str


class Vaccines(ContentModel):
    groups: dict[str, VaccineGroup]


class Encounters(ContentModel):
    inpatient_valueset: str


class LeftOutItem(ContentModel):
    what: str
    pack: str  # how the reference pack marks it
    instead: str  # what the service does without it


class LeftOut(ContentModel):
    items: list[LeftOutItem] = Field(min_length=1)


INDICATOR_RANK = {"info": 0, "warning": 1, "critical": 2}


class IndicatorPolicy(ContentModel):
    """The highest indicator each card topic may carry."""

    highest: dict[str, Indicator]


class Bundle(ContentModel):
    """Cards of ``holds`` (topic: the item's short name for the summary) that become one card of ``topic``."""

    topic: str
    applies_to: Literal["new-start", "patient-view-on-baricitinib"]
    basis: Literal["label", "practice", "label-and-practice"]  # of the items together, said when only their summaries fit
    summary: str
    waiting_text: str
    holds: dict[str, str] = Field(min_length=1)


class Bundles(ContentModel):
    content_version: str
    reviewed_by: str
    reviewed_on: date
    bundles: list[Bundle]

    def check_against(self, vocabulary: Vocabulary, policy: IndicatorPolicy, rule_topics: set[str]) -> None:
        for bundle in self.bundles:
            if bundle.topic not in vocabulary.topics or bundle.topic in rule_topics:
                raise ValueError(f"{bundle.topic}: a bundle's topic must be in vocabulary.toml and no rule's")
            unknown = sorted(set(bundle.holds) - rule_topics)
            if unknown:
                raise ValueError(f"{bundle.topic}: holds {unknown}, which no rule's cards carry")
            # A folded safety check makes the card a warning, so the line is at least that.
            highest = max(["warning", *(policy.highest[t] for t in bundle.holds)], key=INDICATOR_RANK.__getitem__)
            if INDICATOR_RANK[policy.highest[bundle.topic]] < INDICATOR_RANK[highest]:
                raise ValueError(f"{bundle.topic}: the policy's line is below {highest!r}, which its items reach")
        for situation in {b.applies_to for b in self.bundles}:
            held = [t for b in self.bundles if b.applies_to == situation for t in b.holds]
            if len(held) != len(set(held)):
                raise ValueError(f"{situation}: a topic is held by two bundles")


class Silence(ContentModel):
    topic: str
    reason: str
    days: int = Field(gt=0)


class Silencing(ContentModel):
    """Topics a clinician can silence for one patient by overriding a card with a reason (silencing.toml)."""

    silence: list[Silence] = Field(default_factory=list)

    def check_against(self, policy: IndicatorPolicy, rules: dict[str, RuleContent]) -> None:
        by_topic = {r.topic: r for r in rules.values()}
        for entry in self.silence:
            rule = by_topic.get(entry.topic)
            if rule is None:
                raise ValueError(f"{entry.topic}: no rule's cards carry this topic")
            if policy.highest[entry.topic] == "critical":
                raise ValueError(f"{entry.topic}: its cards can be critical, and a critical card is never silenced")
            if entry.reason not in {r.code for r in rule.override_reasons}:
                raise ValueError(f"{entry.topic}: {entry.reason!r} is not one of its cards' override reasons")
        topics = [e.topic for e in self.silence]
        if len(topics) != len(set(topics)):
            raise ValueError("a topic is listed twice")


class Vocabulary(ContentModel):
    topic_system: str = Field(pattern=r"^(https?|urn):")
    override_reason_system: str = Field(pattern=r"^(https?|urn):")
    topics: dict[str, str]


# --- the loaded whole ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    vocabulary: Vocabulary
    valuesets: dict[str, ValueSet]
    labs: Labs
    units: Units
    conditions: Conditions
    medications: Medications
    vaccines: Vaccines
    encounters: Encounters
    left_out: LeftOut
    indicator_policy: IndicatorPolicy
    card_shape: CardShape
    rules: dict[str, RuleContent]
    bundles: Bundles
    silencing: Silencing
    # Indexes for the facts step, built once here so that no call does work that grows with cards/.
    lab_by_loinc: dict[str, str] = field(init=False)
    loinc_codes: tuple[str, ...] = field(init=False)  # every lab's LOINC codes, sorted
    condition_groups: GroupIndex = field(init=False)
    vaccine_groups: GroupIndex = field(init=False)
    medication_groups: GroupIndex = field(init=False)
    medication_names: NameIndex = field(init=False)
    baricitinib_names: NameIndex = field(init=False)
    local_use_words: NameIndex = field(init=False)

    def __post_init__(self) -> None:
        indexes = {
            "lab_by_loinc": {  # load() has checked that no LOINC code belongs to two labs
                code: key
                for key, lab in self.labs.labs.items()
                for system, code in self.valuesets[lab.valueset].exact_codes()
                if system == codes.LOINC
            },
            "condition_groups": self._group_index(self.conditions.groups),
            "vaccine_groups": self._group_index(self.vaccines.groups),
            "medication_groups": self._group_index(self.medications.groups),
            "medication_names": NameIndex({key: g.names for key, g in self.medications.groups.items()}),
            "baricitinib_names": NameIndex({"baricitinib": self.medications.baricitinib.names}),
            "local_use_words": NameIndex({"local": self.medications.local_use_words}),
        }
        indexes["loinc_codes"] = tuple(sorted(indexes["lab_by_loinc"]))
        for name, index in indexes.items():
            object.__setattr__(self, name, index)  # a frozen dataclass, filled in once

    def _group_index(self, groups: dict[str, Any]) -> GroupIndex:
        return GroupIndex({key: self.valuesets[g.valueset] for key, g in groups.items() if g.valueset})

    def valueset(self, name: str) -> ValueSet:
        return self.valuesets[name]

    def observation_codes(self) -> tuple[str, ...]:
        """Every LOINC code a lab definition uses, sorted: the filter of the `observations` prefetch."""
        return self.loinc_codes


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ContentError(f"{path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"{path}: not valid TOML ({exc})") from None


def _validate(model: type[BaseModel], data: dict[str, Any], path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ContentError(f"{path}: {where + ': ' if where else ''}{first['msg']}") from None


def load(content_dir: Path, rule_models: dict[str, type[RuleContent]]) -> Content:
    """Read and check every content file; raise ContentError on the first problem found."""
    if not content_dir.is_dir():
        raise ContentError(f"{content_dir}: content folder not found")

    valuesets: dict[str, ValueSet] = {}
    for path in sorted((content_dir / "valuesets").glob("*.toml")):
        vs = _validate(ValueSet, _read_toml(path), path)
        if vs.name != path.stem:
            raise ContentError(f"{path}: name {vs.name!r} does not match the file name")
        valuesets[vs.name] = vs

    def need_valueset(name: str | None, path: Path, where: str) -> None:
        if name is not None and name not in valuesets:
            raise ContentError(f"{path}: {where}: value set {name!r} not found in valuesets/")

    vocab_path = content_dir / "vocabulary.toml"
    vocabulary = _validate(Vocabulary, _read_toml(vocab_path), vocab_path)
    policy_path = content_dir / "indicator_policy.toml"
    policy = _validate(IndicatorPolicy, _read_toml(policy_path), policy_path)
    unlisted = sorted(set(vocabulary.topics) ^ set(policy.highest))
    if unlisted:
        raise ContentError(f"{policy_path}: topics {unlisted} must be listed here and in vocabulary.toml alike")
    shape_path = content_dir / "card_shape.toml"
    shape = _validate(CardShape, _read_toml(shape_path), shape_path)

    labs_path = content_dir / "labs.toml"
    labs = _validate(Labs, _read_toml(labs_path), labs_path)
    lab_of_loinc: dict[str, str] = {}
    for key, lab in labs.labs.items():
        need_valueset(lab.valueset, labs_path, f"labs.{key}")
        for meaning, answers in lab.categories.items():
            need_valueset(answers, labs_path, f"labs.{key}.categories.{meaning}")
        for system, code in sorted(valuesets[lab.valueset].exact_codes()):
            other = lab_of_loinc.setdefault(code, key) if system == codes.LOINC else key
            if other != key:
                raise ContentError(f"{labs_path}: labs.{key}: LOINC {code} is already a code of labs.{other}")
        for unit in lab.units:
            if not re.fullmatch(r"[^\s]+( [^\s]+)?", unit):
                raise ContentError(f"{labs_path}: labs.{key}: unit {unit!r} is not a unit string")
        for written, read_as in [*lab.read_as.items(), *([("text", lab.text_unit)] if lab.text_unit else [])]:
            if read_as.unit not in lab.units:
                raise ContentError(f"{labs_path}: labs.{key}: {written!r} is read as {read_as.unit!r}, not one of its units")
        if lab.derived is not None:
            count, percent = labs.labs.get(lab.derived.count), labs.labs.get(lab.derived.percent)
            if count is None or percent is None:
                raise ContentError(f"{labs_path}: labs.{key}.derived: names a lab that is not defined")
            if count.canonical_unit != lab.canonical_unit or percent.canonical_unit != "%":
                raise ContentError(
                    f"{labs_path}: labs.{key}.derived: the count must be in {lab.canonical_unit!r} and the percentage in '%'"
                )

    units_path = content_dir / "units.toml"
    units = _validate(Units, _read_toml(units_path), units_path)
    accepted = {unit for lab in labs.labs.values() for unit in lab.units}
    seen: set[str] = set()
    for entry in units.written:
        if entry.written in seen:
            raise ContentError(f"{units_path}: {entry.written!r} is listed twice")
        seen.add(entry.written)
        if entry.ucum not in accepted:
            raise ContentError(f"{units_path}: {entry.written!r} maps to {entry.ucum!r}, which no lab in labs.toml accepts")
        if entry.source not in units.sources:
            raise ContentError(f"{units_path}: {entry.written!r}: source {entry.source!r} is not in [sources]")

    conditions_path = content_dir / "conditions.toml"
    conditions = _validate(Conditions, _read_toml(conditions_path), conditions_path)
    for key, group in conditions.groups.items():
        need_valueset(group.valueset, conditions_path, f"groups.{key}")

    medications_path = content_dir / "medications.toml"
    medications = _validate(Medications, _read_toml(medications_path), medications_path)
    need_valueset(medications.baricitinib.valueset, medications_path, "baricitinib")
    for key, med in medications.groups.items():
        need_valueset(med.valueset, medications_path, f"groups.{key}")
    product_codes = valuesets[medications.baricitinib.valueset].exact_codes()
    ingredient = valuesets[medications.baricitinib.valueset].matches(codes.RXNORM, medications.baricitinib.ingredient)
    if ingredient is None or not ingredient.verified:
        raise ContentError(f"{medications_path}: ingredient must be a verified code of the baricitinib value set")
    for product in medications.baricitinib.products:
        if (codes.RXNORM, product.code) not in product_codes:
            raise ContentError(f"{medications_path}: product {product.code} is not in the baricitinib value set")

    vaccines_path = content_dir / "vaccines.toml"
    vaccines = _validate(Vaccines, _read_toml(vaccines_path), vaccines_path)
    for key, group in vaccines.groups.items():
        need_valueset(group.valueset, vaccines_path, f"groups.{key}")

    encounters_path = content_dir / "encounters.toml"
    encounters = _validate(Encounters, _read_toml(encounters_path), encounters_path)
    need_valueset(encounters.inpatient_valueset, encounters_path, "inpatient_valueset")
    left_out_path = content_dir / "left_out.toml"
    left_out = _validate(LeftOut, _read_toml(left_out_path), left_out_path)

    facts_content = _FactsContent(valuesets, labs, conditions, medications, vaccines)
    rules: dict[str, RuleContent] = {}
    for path in sorted((content_dir / "rules").glob("*.toml")):
        data = _read_toml(path)
        name = data.get("rule")
        if name != path.stem:
            raise ContentError(f"{path}: rule = {name!r} must name the file's rule, {path.stem!r}")
        if name not in rule_models:
            raise ContentError(f"{path}: no rule module implements {name!r}")
        rule = _validate(rule_models[name], data, path)
        if rule.topic not in vocabulary.topics:
            raise ContentError(f"{path}: topic {rule.topic!r} is not in vocabulary.toml")
        highest = policy.highest[rule.topic]
        above = sorted(i for i in rule.indicators() if INDICATOR_RANK[i] > INDICATOR_RANK[highest])
        if above:
            raise ContentError(
                f"{path}: indicator {above[-1]!r} is above the policy's {highest!r} for {rule.topic} (indicator_policy.toml)"
            )
        misshapen = shape.problems(rule)
        if misshapen:
            raise ContentError(f"{path}: {misshapen[0]} (card_shape.toml)")
        check = getattr(rule, "check_against", None)
        if check is not None:
            try:
                check(facts_content)
            except ValueError as exc:
                raise ContentError(f"{path}: {exc}") from None
        rules[name] = rule.model_copy(
            update={
                "topic_system": vocabulary.topic_system,
                "topic_display": vocabulary.topics[rule.topic],
                "override_reason_system": vocabulary.override_reason_system,
                "basis_line": shape.basis[rule.basis],
                "words": shape.words,
            }
        )
    missing = sorted(set(rule_models) - set(rules))
    if missing:
        raise ContentError(f"{content_dir / 'rules'}: no content file for rule(s) {missing}")
    bundles_path = content_dir / "bundles.toml"
    bundles = _validate(Bundles, _read_toml(bundles_path), bundles_path)
    try:
        bundles.check_against(vocabulary, policy, {r.topic for r in rules.values()})
    except ValueError as exc:
        raise ContentError(f"{bundles_path}: {exc}") from None
    misshapen = [p for b in bundles.bundles for p in shape.problems(b)]
    if misshapen:
        raise ContentError(f"{bundles_path}: {misshapen[0]} (card_shape.toml)")
    silencing_path = content_dir / "silencing.toml"
    silencing = _validate(Silencing, _read_toml(silencing_path), silencing_path)
    try:
        silencing.check_against(policy, rules)
    except ValueError as exc:
        raise ContentError(f"{silencing_path}: {exc}") from None

    return Content(
        vocabulary, valuesets, labs, units, conditions, medications, vaccines, encounters, left_out, policy, shape,
        rules, bundles, silencing,
    )


@dataclass(frozen=True)
class _FactsContent:
    """What a rule's ``check_against`` may look at to check its references at load time."""

    valuesets: dict[str, ValueSet]
    labs: Labs
    conditions: Conditions
    medications: Medications
    vaccines: Vaccines

