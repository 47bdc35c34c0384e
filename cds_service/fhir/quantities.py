"""A measured value as a lab sent it: the number, its comparator and its unit as written.

Results arrive as ``valueQuantity`` (``{"value": 0.5, "comparator": "<", "unit": "K/uL"}``) or as text in
``valueString`` (``"<0.5"``, ``">60 mL/min/1.73 m2"``). A comparator bounds the true value on one side, so a
result answers a threshold question only when the bound decides it: ``<0.5`` is below 1.0, ``>60`` is not
below 30, but ``<1.5`` says nothing about 1.0. ``below`` and ``above`` answer True, False or None
(undetermined); a caller must treat None as "not known", never as normal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

Comparator = Literal["<", "<=", ">", ">="]
COMPARATORS: frozenset[str] = frozenset({"<", "<=", ">", ">="})
_WRITTEN = {"≤": "<=", "≥": ">=", "=<": "<=", "=>": ">="}
_NUMBER_TEXT = re.compile(
    r"^\s*(?P<comparator><=|>=|=<|=>|<|>|≤|≥)?\s*(?P<number>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[^\s\d.,<>=].*?)?\s*$"
)


@dataclass(frozen=True)
class Measured:
    value: float
    comparator: Comparator | None
    unit: str | None  # the human-readable unit as written (Quantity.unit, or the text after the number)
    code: str | None  # Quantity.code when its system is UCUM or not given
    element: str  # "valueQuantity", "valueString", ...

    @property
    def written(self) -> str:
        return f"{self.comparator or ''}{self.value:g} {self.unit or self.code or '(no unit)'}"


def read_quantity(quantity: Any, element: str, ucum_system: str) -> Measured | str:
    """A Quantity as Measured, or why it cannot be read."""
    if not isinstance(quantity, dict):
        return f"{element} is not a Quantity"
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "no numeric value"
    comparator = quantity.get("comparator")
    if comparator in (None, ""):
        comparator = None
    elif comparator not in COMPARATORS:
        return f"comparator {str(comparator)[:10]!r} is not one of <, <=, >, >="
    system, code, unit = quantity.get("system"), quantity.get("code"), quantity.get("unit")
    ucum_code = code if isinstance(code, str) and code and system in (None, "", ucum_system) else None
    written = unit if isinstance(unit, str) and unit else None
    return Measured(float(value), comparator, written, ucum_code, element)


def read_number_text(text: Any) -> Measured | None:
    """``"<0.5"``, ``">60 mL/min/1.73 m2"``, ``"7.2"`` as Measured; None when the text is not a number."""
    match = _NUMBER_TEXT.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    comparator = match["comparator"]
    comparator = _WRITTEN.get(comparator, comparator) if comparator else None
    return Measured(float(match["number"]), comparator, match["unit"] or None, None, "valueString")  # type: ignore[arg-type]


def below(value: float, comparator: str | None, limit: float) -> bool | None:
    """Whether the true value is below ``limit``: True, False, or None when the comparator leaves it open."""
    if comparator is None:
        return value < limit
    if comparator == "<":
        return True if value <= limit else None
    if comparator == "<=":
        return True if value < limit else None
    # ">" and ">=": the true value is at least ``value``.
    return False if value >= limit else None


def above(value: float, comparator: str | None, limit: float) -> bool | None:
    """Whether the true value is above ``limit``: True, False, or None when the comparator leaves it open."""
    if comparator is None:
        return value > limit
    if comparator == ">":
        return True if value >= limit else None
    if comparator == ">=":
        return True if value > limit else None
    # "<" and "<=": the true value is at most ``value``.
    return False if value <= limit else None


def to_precision(value: float, digits: int) -> str:
    """``value`` written with at most ``digits`` significant digits (0.80546 to 3: "0.805"; 1000.0: "1000")."""
    return f"{float(f'{value:.{digits}g}'):g}"


def significant_digits(value: float) -> int:
    """The significant digits a number was written with, as far as its JSON form shows (4.9: 2; 0.499: 3;
    1000: 1, its trailing zeros telling nothing)."""
    mantissa = repr(abs(value)).lower().split("e")[0].removesuffix(".0")
    digits = mantissa.replace(".", "").lstrip("0") if "." in mantissa else mantissa.lstrip("0").rstrip("0")
    return max(len(digits), 1)
