"""The clinical content: it loads, each kind of mistake stops start-up with its own message, every code
is well formed and comes from the checked sources, and no card repeats a claim the record contradicts."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from cds_service import Settings, create_app
from cds_service.cli import content_table
from cds_service.content import ContentError, load
from cds_service.rules import load_rules

CARDS = Settings().content_dir
SHARED = Path(__file__).resolve().parents[2] / "shared" / "clinical"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/clinical (the checked sources) is not beside this clone")

# Each broken variant: (file under cards/, text to replace, replacement, the start-up error expected).
BROKEN = {
    "loinc-check-digit": ("valuesets/anc.toml", 'code = "751-8"', 'code = "751-9"',
                          "valuesets/anc.toml: include.0: Value error, LOINC 751-9: check digit is wrong"),
    "snomed-verhoeff": ("valuesets/sle.toml", 'code = "55464009"', 'code = "55464008"',
                        "valuesets/sle.toml: include.0: Value error, SNOMED CT 55464008: Verhoeff check digit is wrong"),
    "prefix-on-snomed": ("valuesets/sle.toml", 'code = "55464009"', 'prefix = "55464"',
                         "valuesets/sle.toml: include.0: Value error, '55464': prefix matching is only allowed for ICD-10-CM"),
    "unverified-without-note": ("valuesets/baricitinib.toml", 'verified = false\nnote = "VERIFIED-2nd in codes-2026.md (seen only in an OMOP export; confirm in RxNav): read for recognition and strength only; recognition also needs the name or the ingredient, else a data-quality note says so; never written into a suggested order"', "verified = false",
                                "valuesets/baricitinib.toml: include.1: Value error, 2047241: an unverified code needs a note"),
    "threshold-without-unit": ("rules/lab_holds.toml", 'below = { value = 1000, unit = "/uL" }', "below = { value = 1000 }",
                               "rules/lab_holds.toml: thresholds.0.below.unit: Field required"),
    "threshold-unit-not-canonical": ("rules/lab_holds.toml", 'below = { value = 1000, unit = "/uL" }', 'below = { value = 1, unit = "10*9/L" }',
                                     "rules/lab_holds.toml: anc: unit '10*9/L' must be the lab's unit '/uL'"),
    "positive-not-remembered": ("labs.toml", 'valueset = "igra"\nkind = "coded"\nlookback_days = 365\nremember_positive = true',
                                'valueset = "igra"\nkind = "coded"\nlookback_days = 365',
                                "rules/baseline_labs.toml: TB IGRA: not_after_positive needs labs that remember a positive result"),
    "critical-above-policy": ("rules/off_label.toml", 'indicator = "warning"', 'indicator = "critical"',
                              "rules/off_label.toml: indicator 'critical' is above the policy's 'warning' for off-label-use (indicator_policy.toml)"),
    "practice-threshold-critical": ("indicator_policy.toml", 'lab-hold = "critical"', 'lab-hold = "warning"',
                                    "rules/lab_holds.toml: indicator 'critical' is above the policy's 'warning' for lab-hold (indicator_policy.toml)"),
    "unknown-topic": ("rules/lab_holds.toml", 'topic = "lab-hold"', 'topic = "lab-alert"',
                      "rules/lab_holds.toml: topic 'lab-alert' is not in vocabulary.toml"),
    "unknown-placeholder": ("rules/lab_holds.toml", 'below_summary = "Hold baricitinib: {lab}', 'below_summary = "Hold baricitinib: {patient_name} {lab}',
                            "rules/lab_holds.toml: Value error, below_summary: unknown placeholder(s) ['patient_name']"),
    "source-not-a-url": ("rules/lab_holds.toml", 'url = "https://www.drugs.com/dosage/olumiant.html"', 'url = "drugs.com/dosage"',
                         "rules/lab_holds.toml: sources.1.url: String should match pattern '^https?://'"),
    "invalid-toml": ("rules/lab_holds.toml", 'topic = "lab-hold"', "topic = lab-hold", "rules/lab_holds.toml: not valid TOML"),
    "rule-names-other-file": ("rules/lab_holds.toml", 'rule = "lab_holds"', 'rule = "renal_alert"',
                              "rules/lab_holds.toml: rule = 'renal_alert' must name the file's rule, 'lab_holds'"),
    "unknown-valueset": ("labs.toml", 'valueset = "anc"', 'valueset = "neutrophils"',
                         "labs.toml: labs.anc: value set 'neutrophils' not found in valuesets/"),
    "ingredient-unverified": ("medications.toml", 'ingredient = "2047232"', 'ingredient = "2047241"',
                              "medications.toml: ingredient must be a verified code of the baricitinib value set"),
    "unit-factor-not-positive": ("labs.toml", '"g/L" = 0.1', '"g/L" = 0.0',
                                 "labs.toml: labs.hemoglobin: Value error, Hemoglobin: unit factors must be positive"),
    "loinc-in-two-labs": ("labs.toml", 'valueset = "lymphocytes"', 'valueset = "anc"',
                          "labs.toml: labs.lymphocytes: LOINC 26499-4 is already a code of labs.anc"),
    "summary-too-long": ("rules/lab_holds.toml", 'below_summary = "Hold baricitinib: {lab}', 'below_summary = "Hold baricitinib now, today, before the next dose is taken, for this patient whose {lab}',
                         "rules/lab_holds.toml: below_summary: about 1"),
    "text-template-too-long": ("rules/data_quality.toml", 'intro_text = "', 'intro_text = "' + "word " * 41,
                               "rules/data_quality.toml: intro_text: 5"),
    "developer-words": ("rules/data_quality.toml", 'intro_text = "', 'intro_text = "Per the project\'s reading, ',
                        "rules/data_quality.toml: intro_text: 'project' is not for clinicians (card_shape.toml)"),
    "bundle-holds-unknown-topic": ("bundles.toml", 'vaccination-reminder = "vaccines"\n\n', 'vaccine-reminder = "vaccines"\n\n',
                                   "bundles.toml: before-starting: holds ['vaccine-reminder'], which no rule's cards carry"),
    "bundle-below-its-items": ("indicator_policy.toml", 'before-starting = "warning"', 'before-starting = "info"',
                               "bundles.toml: before-starting: the policy's line is below 'warning', which its items reach"),
    "bundle-topic-is-a-rules": ("bundles.toml", 'topic = "due-on-therapy"', 'topic = "monitoring-due"',
                                "bundles.toml: monitoring-due: a bundle's topic must be in vocabulary.toml and no rule's"),
}  # fmt: skip


def test_the_shipped_content_loads(content):
    assert set(content.rules) == set(load_rules())
    assert "lab_holds" in content.rules and "data_quality" in content.rules


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_bad_content_stops_start_up_with_a_clear_message(tmp_path, case):
    relative, old, new, message = BROKEN[case]
    broken = tmp_path / "cards"
    shutil.copytree(CARDS, broken)
    target = broken / relative
    text = target.read_text()
    assert old in text, f"{relative} no longer contains {old!r}: update this case"
    target.write_text(text.replace(old, new, 1))
    with pytest.raises(ContentError) as failure:
        load(broken, load_rules())
    assert str(failure.value).removeprefix(f"{broken}/").startswith(message)
    with pytest.raises(ContentError):
        create_app(Settings(content_dir=broken, database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}"))


def test_a_rule_without_a_content_file_stops_start_up(tmp_path):
    broken = tmp_path / "cards"
    shutil.copytree(CARDS, broken)
    (broken / "rules" / "lab_holds.toml").unlink()
    with pytest.raises(ContentError, match=r"no content file for rule\(s\) \['lab_holds'\]"):
        load(broken, load_rules())


def test_a_content_file_without_a_rule_stops_start_up(tmp_path):
    broken = tmp_path / "cards"
    shutil.copytree(CARDS, broken)
    text = (broken / "rules" / "lab_holds.toml").read_text().replace('rule = "lab_holds"', 'rule = "renal_alert"')
    (broken / "rules" / "renal_alert.toml").write_text(text)
    with pytest.raises(ContentError, match="no rule module implements 'renal_alert'"):
        load(broken, load_rules())


def all_codes(content) -> list[tuple[str, str, str]]:
    return [(vs.name, e.system, e.code or e.prefix or "") for vs in content.valuesets.values() for e in vs.include + vs.exclude]


def expand_ranges(text: str) -> str:
    """codes.md writes some codes as ranges ("211–213", "J12–J18", an ICD-10-CM chapter block "C00–C96",
    "E10.A0–E10.A2"): append each code they stand for."""
    extra = []
    for letter, first, letter2, last in re.findall(r"\b([A-Z]?)(\d{2,3})\s*–\s*([A-Z]?)(\d{2,3})\b", text):
        if letter == letter2 and int(first) < int(last) <= int(first) + (100 if letter else 20):
            extra += [f"{letter}{n:0{len(first)}d}" for n in range(int(first), int(last) + 1)]
    for stem, first, stem2, last in re.findall(r"\b([A-Z]\d{2}\.[A-Z]?)(\d)\s*–\s*([A-Z]\d{2}\.[A-Z]?)(\d)\b", text):
        if stem == stem2 and int(first) < int(last):
            extra += [f"{stem}{n}" for n in range(int(first), int(last) + 1)]
    for letter, first, letter2, tens in re.findall(r"\b([A-Z])(\d{2})\s*–\s*([A-Z])(\d)[A-Z]\b", text):  # "O00–O9A"
        if letter == letter2:
            extra += [f"{letter}{n:02d}" for n in range(int(first), int(tens) * 10 + 10)]
    extra += re.findall(r"\b([A-Z]\d{2}\.\d)x\b", text)  # "K57.0x": the prefix K57.0
    for line in text.splitlines():  # "K57.x2 / K57.x3 (x = 1,3,5,9)"
        values = re.search(r"\(x = ([\d,\s]+)\)", line)
        if values:
            for stem, tail in re.findall(r"\b([A-Z]\d{2}\.)x(\d?)", line):
                extra += [f"{stem}{x.strip()}{tail}" for x in values.group(1).split(",")]
    return text + "\n" + " ".join(extra)


def test_code_ranges_are_expanded():
    assert expand_ranges("CVX 217–221 and range `J12`–`J18`".replace("`", "")).split("\n")[1].split() == [
        "217", "218", "219", "220", "221", "J12", "J13", "J14", "J15", "J16", "J17", "J18"]  # fmt: skip
    assert expand_ranges("E10.A0–E10.A2").split("\n")[1].split() == ["E10.A0", "E10.A1", "E10.A2"]
    assert expand_ranges("K57.x2 / K57.x3 (x = 1,3)").split("\n")[1].split() == ["K57.12", "K57.32", "K57.13", "K57.33"]


@needs_shared
def test_every_code_comes_from_the_checked_sources(content):
    sources = expand_ranges("".join((SHARED / n).read_text().replace("`", "") for n in ("codes.md", "codes-2026.md", "vaccines.md", "vaccines-2026.md")))
    missing = [
        (name, code) for name, system, code in all_codes(content)
        if not re.search(rf"(?<![\w.-]){re.escape(code.lstrip('0') if 'cvx' in system else code)}(?![\w-])", sources)
    ]  # fmt: skip
    assert missing == []


@needs_shared
def test_every_rule_source_url_is_one_the_checked_sources_cite(content):
    cited = "".join(p.read_text() for p in SHARED.glob("*.md"))

    def is_cited(url: str) -> bool:
        # The notes abbreviate sibling pages of one site as ".../<last segment>".
        host, last = url.split("/")[2], url.rstrip("/").rsplit("/", 1)[-1]
        return url in cited or (host in cited and f".../{last}" in cited)

    urls = {s.url for rule in content.rules.values() for s in rule.sources}
    assert sorted(u for u in urls if not is_cited(u)) == []


# Hosts of primary sources: the label (FDA, DailyMed, the manufacturer), the guidance bodies and journals.
PRIMARY_HOSTS = ("fda.gov", "nlm.nih.gov", "cdc.gov", "lilly.com", "lillymedical.com", "lillymedical.eu",
                 "olumiant.com", "nejm.org", "acrjournals.onlinelibrary.wiley.com", "clinicaltrials.gov",
                 "thelancet.com", "bmj.com")  # fmt: skip


def test_a_source_that_is_not_primary_says_it_is_secondary_and_no_card_leads_with_one(content):
    def primary(url: str) -> bool:
        host = url.split("/")[2].split(":")[0]
        return any(host == h or host.endswith("." + h) for h in PRIMARY_HOSTS)

    unmarked = [(name, s.url) for name, rule in content.rules.items() for s in rule.sources
                if not primary(s.url) and not s.secondary]  # fmt: skip
    assert unmarked == []
    assert [name for name, rule in content.rules.items() if rule.sources[0].secondary] == []


# Claims that ../shared/clinical/evidence.md §3 marks contradicted or not found.
CONTRADICTED = ["EMBARK", "SHIFT-Lupus", "SHIFT Lupus", "NCT03704406", "atopic dermatitis", "47% vs 21%",
                "511 patients", "61%", "escalate to 4 mg", "FDA review"]  # fmt: skip


def test_no_content_names_a_contradicted_claim():
    text = "\n".join(p.read_text() for p in CARDS.rglob("*.toml")).lower()
    assert [claim for claim in CONTRADICTED if claim.lower() in text] == []


def test_every_rule_cites_a_source_and_says_its_basis(content):
    for rule in content.rules.values():
        assert rule.sources and all(s.url.startswith("http") for s in rule.sources)
        assert rule.basis in {"label", "practice", "label-and-practice"}
        assert rule.when.strip() and rule.then.strip()


def test_content_export_is_a_markdown_table_with_a_row_per_rule_then_the_unit_strings(content):
    rules, units, left_out, bundles, silencing = content_table(content).split("\n\n## ")
    table = rules.splitlines()
    assert len(units.splitlines()) == 4 + len(content.units.written)
    assert len(left_out.splitlines()) == 4 + len(content.left_out.items)
    assert "| Label section 5.8 (06/2026 change): title and text | NOT FOUND" in left_out
    assert len(bundles.splitlines()) == 4 + len(content.bundles.bundles)
    assert len(silencing.splitlines()) == 4 + len(content.silencing.silence)
    assert table[0].startswith("| topic | rule |")
    assert len(table) == 2 + len(content.rules)
    assert any("| lab-hold | lab_holds | critical |" in row for row in table)
    assert all(row.count("|") >= 11 for row in table[2:])


def test_content_toml_files_are_all_read(content):
    rule_files = {p.stem for p in (CARDS / "rules").glob("*.toml")}
    valueset_files = {p.stem for p in (CARDS / "valuesets").glob("*.toml")}
    assert rule_files == set(content.rules)
    assert valueset_files == set(content.valuesets)
    for path in CARDS.rglob("*.toml"):
        tomllib.loads(path.read_text())
