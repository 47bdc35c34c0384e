"""Data quality: a check that did not run is named once, with every reason it did not."""

from __future__ import annotations

from cds_service.facts import NotRun
from cds_service.rules.data_quality import _not_checked


def test_a_check_is_named_once_with_each_of_its_reasons():
    not_run = [
        NotRun("Lab-hold check", "no current ANC; the last, of 2026-05-01, is out of date", True, ("anc",)),
        NotRun("Renal dose check", "no current eGFR or serum creatinine result", True, ("egfr",)),
        NotRun("Lab-hold check", "no ALT or AST on record", True),
        NotRun("Lab-hold check", "no ALT or AST on record", True),
    ]
    assert _not_checked(not_run) == [
        "- **Not checked: Lab-hold check**: no current ANC; the last, of 2026-05-01, is out of date; no ALT or AST on record",
        "- **Not checked: Renal dose check**: no current eGFR or serum creatinine result",
    ]
