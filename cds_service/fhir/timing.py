"""How many times a day a Dosage's Timing says to take a dose, from ``timing.repeat`` or ``timing.code``.

``timing.repeat`` (frequency per period, with frequencyMax / periodMax for a range, timeOfDay, when) is
read first; ``timing.code`` (BID, TID, Q12H...) when there is no repeat, or as a check of it. What the codes
and event names mean is reviewed content (``cards/medications.toml``), passed in. A timing that cannot be
read, or whose parts disagree, is a problem with its reason, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .codings import as_list, codings

PER_DAY = {"s": 86400.0, "min": 1440.0, "h": 24.0, "d": 1.0, "wk": 1 / 7, "mo": 1 / 30, "a": 1 / 365}


@dataclass(frozen=True)
class TimesPerDay:
    low: float
    high: float
    how: str  # what was read, for the card: "BID", "2 per 1 d", "timeOfDay 08:00, 20:00"


def _number(value: Any) -> float | None:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None
    )


def _from_repeat(repeat: Mapping[str, Any], events: Mapping[str, float]) -> TimesPerDay | str | None:
    period, unit = repeat.get("period"), repeat.get("periodUnit")
    times = [t for t in as_list(repeat.get("timeOfDay")) if isinstance(t, str) and t]
    when = [w for w in as_list(repeat.get("when")) if isinstance(w, str) and w]
    if period is not None or unit is not None or repeat.get("frequency") is not None:
        frequency = _number(repeat.get("frequency", 1))
        frequency_max = _number(repeat.get("frequencyMax", repeat.get("frequency", 1)))
        period_n, period_max = _number(period), _number(repeat.get("periodMax", period))
        if frequency is None or frequency_max is None or period_n is None or period_max is None:
            return "timing has no usable frequency and period"
        if not isinstance(unit, str) or unit not in PER_DAY:
            return f"timing period unit {str(unit)[:10]!r} is not understood"
        low = frequency * PER_DAY[unit] / period_max
        high = frequency_max * PER_DAY[unit] / period_n
        days = [d for d in as_list(repeat.get("dayOfWeek")) if isinstance(d, str)]
        if days and unit == "d" and period_n == 1:
            low, high = low * len(days) / 7, high * len(days) / 7
        how = (
            f"{repeat.get('frequency', 1)} per {period:g} {unit}"
            if isinstance(period, int | float)
            else "repeat"
        )
        count = len(times) or len(when)
        if count and unit == "d" and period_n == 1 and low == high and count != low:
            return f"timing says {how} but lists {count} times of day"
        return TimesPerDay(low, high, how)
    if times:
        return TimesPerDay(len(times), len(times), f"timeOfDay {', '.join(times)}")
    if when:
        unknown = [w for w in when if w not in events]
        if unknown:
            return f"timing event {unknown[0][:10]!r} does not say how many times a day"
        per_day = sum(events[w] for w in when)
        return TimesPerDay(per_day, per_day, f"when {', '.join(when)}")
    return None


def times_per_day(timing: Any, codes: Mapping[str, float], events: Mapping[str, float]) -> TimesPerDay | str:
    """Doses a day a Timing gives, or why it cannot be told. ``codes``: timing.code -> times a day;
    ``events``: timing.repeat.when event -> times a day (absent: the event is not a count, e.g. "at meals")."""
    if not isinstance(timing, dict):
        return "no timing (frequency and period)"
    repeat = timing.get("repeat")
    from_repeat = _from_repeat(repeat, events) if isinstance(repeat, dict) else None
    if isinstance(from_repeat, str):
        return from_repeat
    written = [c for _, c, _ in codings(timing.get("code")) if c]
    known = [c for c in written if c.upper() in codes]
    if from_repeat is not None:
        if known and codes[known[0].upper()] not in (from_repeat.low, from_repeat.high):
            return f"timing code {known[0]} disagrees with its repeat ({from_repeat.how})"
        return from_repeat
    if known:
        per_day = codes[known[0].upper()]
        return TimesPerDay(per_day, per_day, known[0])
    if written:
        return f"timing code {written[0][:10]!r} is not one the service reads"
    return "no timing (frequency and period)"
