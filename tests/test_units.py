"""The unit factors in cards/labs.toml and the lab-feed unit strings in cards/units.toml, held to UCUM.

The service converts with the reviewed factors in cards/, not with a UCUM library at run time: every
molar conversion still needs a reviewed molar mass, UCUM ignores annotations (so it cannot tell eGFR
"mL/min" from "mL/min/{1.73_m2}"), [IU] is arbitrary, and "K/uL" is valid UCUM for kelvin per microlitre.
Here ucumvert (pint with the UCUM grammar) checks each reviewed factor where UCUM can convert, so a typo
in a factor fails a test instead of silently scaling a result.
"""

from __future__ import annotations

import pytest
from ucumvert import InvalidUcumError, PintUcumRegistry

from cds_service.content import Content

# Molar masses behind the reviewed mmol/L and umol/L factors (codes.md §4): creatinine 113.12 g/mol
# (1 mg/dL = 88.4 umol/L), hemoglobin on the monomer (per heme) basis 16114 g/mol, cholesterol
# 386.65 g/mol, triglycerides as triolein 885.7 g/mol.
MOLAR_MASS = {"creatinine": 113.12, "hemoglobin": 16114.0, "ldl": 386.65, "cholesterol_total": 386.65,
              "hdl": 386.65, "triglycerides": 885.7}  # fmt: skip
# Factors UCUM cannot derive, reviewed as clinical convention: an international unit of an enzyme
# activity is read as U/L (codes.md §4).
CONVENTION = {("[IU]/L", "U/L")}
# The reviewed factors are rounded to four significant figures in the source notes.
REVIEWED_PRECISION = 1e-3


@pytest.fixture(scope="module")
def ucum() -> PintUcumRegistry:
    return PintUcumRegistry()


def ucum_factor(ucum: PintUcumRegistry, source: str, target: str, molar_mass: float | None = None) -> float:
    q_source, q_target = ucum.from_ucum(source), ucum.from_ucum(target)
    if molar_mass is not None and not q_source.is_compatible_with(q_target):
        converted = q_source.to(q_target.units, "chemistry", mw=q_source._REGISTRY.Quantity(molar_mass, "g/mol"))
    else:
        converted = q_source.to(q_target.units)
    return converted.magnitude / q_target.magnitude


def lab_units(content: Content) -> list[tuple[str, str, str, float]]:
    return [(key, unit, lab.canonical_unit, factor) for key, lab in content.labs.labs.items()
            for unit, factor in lab.units.items() if lab.canonical_unit]  # fmt: skip


def test_every_lab_unit_is_valid_ucum(content, ucum):
    invalid = []
    for key, unit, _, _ in lab_units(content):
        try:
            ucum.from_ucum(unit)
        except InvalidUcumError:
            invalid.append((key, unit))
    assert invalid == []


def test_every_reviewed_factor_agrees_with_ucum_or_is_a_reviewed_convention(content, ucum):
    checked, disagree = 0, []
    for key, unit, canonical, factor in lab_units(content):
        if (unit, canonical) in CONVENTION:
            continue
        expected = ucum_factor(ucum, unit, canonical, MOLAR_MASS.get(key))
        checked += 1
        if abs(factor - expected) > REVIEWED_PRECISION * expected:
            disagree.append((key, unit, factor, round(expected, 6)))
    assert disagree == []
    assert checked >= 40  # every count, mass, molar and enzyme unit of every lab


def test_a_factor_typo_would_be_caught(ucum):
    """The check is not vacuous: 88.57 (triglycerides) in place of 38.67 (cholesterol) fails it."""
    expected = ucum_factor(ucum, "mmol/L", "mg/dL", MOLAR_MASS["ldl"])
    assert abs(88.57 - expected) > REVIEWED_PRECISION * expected
    assert abs(38.67 - expected) <= REVIEWED_PRECISION * expected


def test_a_written_unit_that_is_also_ucum_maps_to_the_same_quantity_or_is_a_known_false_friend(content, ucum):
    """"mg/dl" is valid UCUM and must map to mg/dL (factor 1); "K/uL" is valid UCUM but means kelvin
    per microlitre, which is why the table maps it: it must not be commensurable with its target."""
    same, false_friends = [], []
    for entry in content.units.written:
        try:
            written = ucum.from_ucum(entry.written)
        except InvalidUcumError:
            continue
        target = ucum.from_ucum(entry.ucum)
        if written.is_compatible_with(target):
            if abs(written.to(target.units).magnitude / target.magnitude - 1) > 1e-9:
                same.append(entry.written)
        else:
            false_friends.append(entry.written)
    assert same == []
    assert false_friends == ["K/uL"]


def test_every_written_unit_maps_to_a_unit_a_lab_reads(content):
    accepted = {unit for lab in content.labs.labs.values() for unit in lab.units}
    assert [w.written for w in content.units.written if w.ucum not in accepted] == []
    assert {w.source for w in content.units.written} <= set(content.units.sources)
