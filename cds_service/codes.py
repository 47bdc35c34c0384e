"""Code systems the service matches on, and whether a code is well formed for its system.

Well-formedness is checked at start-up so that a typo in ``cards/`` (a LOINC code with a wrong check
digit, a SNOMED CT id failing its Verhoeff check) stops the service instead of silently matching nothing.
"""

from __future__ import annotations

import re

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10CM_LONGEST = 8  # characters of the longest ICD-10-CM code, "S72.001A"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]  # fmt: skip
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]  # fmt: skip


def verhoeff_valid(number: str) -> bool:
    check = 0
    for i, digit in enumerate(reversed(number)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(digit)]]
    return check == 0


def loinc_check_digit_valid(code: str) -> bool:
    """LOINC's mod-10 check digit (the Luhn variant LOINC documents) over the part before the hyphen."""
    body, _, check = code.partition("-")
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            n = n - 9 if n > 9 else n
        total += n
    return (10 - total % 10) % 10 == int(check)


def malformed(system: str, code: str, *, prefix: bool = False) -> str | None:
    """Why ``code`` is not a well-formed code of ``system``, or None when it is."""
    if system == LOINC:
        if re.fullmatch(r"LA\d{1,8}-\d", code):
            return None  # answer codes (LA...) use their own numbering; shape is all we can check
        if re.fullmatch(r"\d{1,7}-\d", code):
            return None if loinc_check_digit_valid(code) else f"LOINC {code}: check digit is wrong"
        return f"LOINC {code}: not of the form NNNNN-N"
    if system == SNOMED:
        if not re.fullmatch(r"[1-9]\d{5,17}", code):
            return f"SNOMED CT {code}: not a 6-18 digit concept id"
        return None if verhoeff_valid(code) else f"SNOMED CT {code}: Verhoeff check digit is wrong"
    if system == ICD10CM:
        pattern = r"[A-Z]\d[0-9A-Z](\.[0-9A-Z]{0,4})?" if prefix else r"[A-Z]\d[0-9A-Z](\.[0-9A-Z]{1,4})?"
        return None if re.fullmatch(pattern, code) else f"ICD-10-CM {code}: not a valid code shape"
    if system == RXNORM:
        return None if re.fullmatch(r"[1-9]\d{0,8}", code) else f"RxNorm {code}: not an RxCUI"
    if system == CVX:
        return None if re.fullmatch(r"\d{1,3}", code) else f"CVX {code}: not a 1-3 digit CVX code"
    if system == ACT_CODE:
        return None if re.fullmatch(r"[A-Z][A-Z0-9_]{1,30}", code) else f"ActCode {code}: not an ActCode code"
    return f"{system}: not a code system this service knows"


def normalise(system: str, code: str) -> str:
    """CVX codes are sent both zero-padded ("03") and not ("3"); everything else compares as sent."""
    code = code.strip()
    if system == CVX:
        return code.lstrip("0") or "0"
    return code
