"""Kidney function: the newest renal evidence wins.

The lab's eGFR is used unless a creatinine is newer (a later day), in which case eGFR is computed from it
with the race-free CKD-EPI 2021 equation; on the same day the lab's eGFR is used. The newest evidence
that cannot be read or used (no age or sex for the equation) is never replaced by older evidence: the
renal check is then reported as not done, with the reason.
"""

from __future__ import annotations

from ..content import EgfrEquation
from .model import Egfr, LabReading, LabResult

_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}  # eGFR falls as creatinine rises


def estimate_egfr(
    egfr: LabReading, creatinine: LabReading, age: int | None, sex: str | None, equation: EgfrEquation
) -> tuple[Egfr | None, str | None]:
    """The eGFR the renal checks use, or None and why there is none."""
    use_creatinine = creatinine.taken is not None and (egfr.taken is None or creatinine.taken > egfr.taken)
    if not use_creatinine:
        if isinstance(egfr.current, LabResult):
            result = egfr.current
            return Egfr(result.value, result.day, _reported(result), result.comparator), None
        if egfr.status in ("stale", "unreadable"):
            return None, _why_not(egfr)
        return None, "no current eGFR or serum creatinine result"
    if not isinstance(creatinine.current, LabResult):
        return None, _why_not(creatinine)
    scr = creatinine.current
    if age is None or sex not in ("female", "male"):
        missing = " and ".join(
            w for w, gone in (("age", age is None), ("sex", sex not in ("female", "male"))) if gone
        )
        return (
            None,
            f"eGFR cannot be computed from the creatinine of {scr.day.isoformat()} without the patient's {missing}",
        )
    return Egfr(_ckd_epi_2021(scr.value, age, sex, equation), scr.day, _computed(scr),
                _FLIPPED.get(scr.comparator or "")), None  # fmt: skip


def _ckd_epi_2021(scr: float, age: int, sex: str, eq: EgfrEquation) -> float:
    kappa, alpha = (eq.kappa_female, eq.alpha_female) if sex == "female" else (eq.kappa_male, eq.alpha_male)
    ratio = scr / kappa
    value = (
        eq.constant * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** eq.exponent_above_kappa * eq.age_base**age
    )
    return round(value * (eq.female_factor if sex == "female" else 1.0), 1)


def _reported(result: LabResult) -> str:
    how = f"reported on {result.day.isoformat()}, {result.resource}"
    return f"{how}; {result.how}" if result.how else how


def _computed(scr: LabResult) -> str:
    """How a computed eGFR was had, in few words (age and sex, the equation's other inputs, are the chart's)."""
    how = f"CKD-EPI 2021 from creatinine {scr.shown} of {scr.day.isoformat()}"
    return f"{how}; reported as {scr.reported}" if scr.reported != scr.shown else how


def _why_not(reading: LabReading) -> str:
    if reading.status == "stale" and reading.result is not None:
        return f"the newest {reading.label} ({reading.result.day.isoformat()}) is out of date"
    if reading.status == "unreadable":
        return f"the newest {reading.label} cannot be read: {reading.problem}"
    return f"no {reading.label} result"
