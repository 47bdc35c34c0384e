"""Off-label use: SLE (or lupus nephritis) with no US indication warns on order hooks and informs on
patient-view; RA, alopecia areata or COVID-19 silences it; refuted, entered-in-error and non-SLE lupus codes
do not count; without the problem list the card is not shown and the data-quality card says so."""

from __future__ import annotations

import pytest

from tests.conftest import only

ORDER = ["baricitinib-2mg"]
ALL_BUT_CONDITIONS = {"patient", "observations", "immunizations", "medications"}


def off_label(cards):
    return [c for c in cards if c.topic == "off-label-use"]


@pytest.mark.parametrize("hook", ["order-select", "order-sign", "medication-prescribe"])
def test_sle_without_an_indication_warns_on_every_order_hook(evaluate, hook):
    card = only(evaluate(hook, "sle-baseline", ORDER), "off-label-use")
    assert card.indicator == "warning"
    assert len(card.summary) < 140
    assert "not approved for SLE" in card.summary and "document informed consent" in card.summary
    assert "Systemic lupus erythematosus (55464009, 2019-03-01)" in card.detail
    assert "No US indication recorded (RA, alopecia areata, inpatient COVID-19); no SLE approval known anywhere." in card.detail
    assert card.source.topic.system == "https://cds.example.org/baricitinib-sle/CodeSystem/card-topic"
    assert card.source.url.startswith("https://")


def test_the_detail_says_why_in_one_line_and_the_links_give_the_real_sle_trial_record(evaluate):
    card = only(evaluate("order-sign", "sle-baseline", ORDER), "off-label-use")
    assert "Mixed evidence: 1 of 2 phase 3 trials positive; programme stopped 2022." in card.detail
    links = [(link.label, link.url) for link in card.links]
    assert links[0][0] == "US Olumiant label (DailyMed)"  # the primary source leads
    for label, url in (
        ("SLE-BRAVE-I (Morand, Lancet 2023): SRI-4 met at 4 mg, not at 2 mg", "https://pubmed.ncbi.nlm.nih.gov/36848918/"),
        ("SLE-BRAVE-II (Petri, Lancet 2023): SRI-4 not met at 4 mg or 2 mg", "https://medicine-matters.blogs.hopkinsmedicine.org/"),
        ("Lilly stops the SLE programme, 28 January 2022", "https://insights.citeline.com/"),
        ("Phase 2 (Wallace, Lancet 2018): better than placebo at 4 mg only", "https://jhu.pure.elsevier.com/"),
    ):
        assert any(shown.startswith(label) and link.startswith(url) for shown, link in links), label
    shown = "\n".join([card.summary, card.detail, *(label for label, _ in links)])
    for wrong in ("EMBARK", "SHIFT-Lupus", "NCT03704406", "atopic dermatitis"):
        assert wrong not in shown


def test_the_consent_step_says_how_to_record_it_once(evaluate):
    card = only(evaluate("order-sign", "sle-baseline", ORDER), "off-label-use")
    assert 'Document informed consent; override "informed consent documented" to silence it for this patient.' in card.detail
    assert card.detail.endswith("_US label; consent is practice._")


def test_override_reasons_are_consent_and_refractory_disease(evaluate):
    card = only(evaluate("order-select", "sle-baseline", ORDER), "off-label-use")
    assert [(r.code, r.display) for r in card.override_reasons] == [
        ("informed-consent-documented", "Informed consent to off-label use documented"),
        ("refractory-to-standard-therapy", "SLE refractory to standard therapy"),
    ]
    assert all(r.system == "https://cds.example.org/baricitinib-sle/CodeSystem/override-reason" for r in card.override_reasons)
    assert card.suggestions is None


def test_a_text_only_olumiant_order_is_recognised(evaluate):
    card = only(evaluate("order-sign", "sle-baseline", ["olumiant-2mg-text-only"]), "off-label-use")
    assert card.indicator == "warning"


def test_lupus_nephritis_is_named_with_the_missing_phase_3_data(evaluate):
    card = only(evaluate("order-sign", "offlabel-lupus-nephritis", ORDER), "off-label-use")
    assert card.summary.startswith("Off-label in lupus nephritis: no phase 3 data; SLE programme stopped")
    assert len(card.summary) < 140
    assert "Phase 3 trials excluded severe active LN; in SLE, 1 of 2 was positive." in card.detail
    assert "- SLE glomerulonephritis syndrome, WHO class IV (36402006, 2024-02-12)" in card.detail
    assert any(link.label.startswith("SLE-BRAVE-I eligibility: severe active lupus nephritis excluded") for link in card.links)


def test_an_icd10_lupus_nephritis_code_alone_counts_as_sle_and_is_listed_once(evaluate):
    card = only(evaluate("order-sign", "offlabel-nephritis-icd-only", ORDER), "off-label-use")
    assert card.detail.count("- Glomerular disease in systemic lupus erythematosus (M32.14, 2025-09-03)") == 1
    assert card.detail.count("\n- ") == 1
    assert "Off-label in lupus nephritis" in card.summary


@pytest.mark.parametrize(
    "patient", ["offlabel-ra-and-sle", "offlabel-alopecia-areata-icd", "offlabel-covid19-inpatient",
                "offlabel-covid19-acute-inpatient"],
)  # fmt: skip
def test_an_on_label_indication_silences_the_card(evaluate, patient):
    assert off_label(evaluate("order-sign", patient, ORDER)) == []


@pytest.mark.parametrize(
    "patient", ["offlabel-covid19-icd", "offlabel-covid19-ambulatory", "offlabel-covid19-discharged"],
    ids=["no-encounter", "ambulatory", "discharged"],
)  # fmt: skip
def test_covid19_outside_hospital_is_not_an_indication_and_says_why(evaluate, patient):
    [card] = off_label(evaluate("order-sign", patient, ORDER))
    assert "COVID-19 (U07.1, 2026-10-01): no inpatient encounter recorded." in card.detail


def test_covid19_when_the_setting_could_not_be_checked_is_not_an_indication(evaluate):
    keys = {"patient", "conditions", "observations", "immunizations", "medications"}
    cards = evaluate("order-sign", "offlabel-covid19-inpatient", ORDER, prefetch_keys=keys)
    [card] = off_label(cards)
    assert "COVID-19 (U07.1, 2026-10-01): inpatient status unknown." in card.detail
    assert all("encounters" not in c.detail for c in cards if c.topic == "data-quality")


def test_an_rheumatoid_arthritis_entry_marked_entered_in_error_does_not_silence_it(evaluate):
    assert len(off_label(evaluate("order-sign", "offlabel-ra-entered-in-error", ORDER))) == 1


def test_a_condition_without_clinical_status_counts_as_current(evaluate):
    assert len(off_label(evaluate("order-sign", "offlabel-sle-no-clinical-status", ORDER))) == 1


@pytest.mark.parametrize(
    "patient", ["offlabel-sle-refuted", "offlabel-sle-resolved", "offlabel-no-sle", "offlabel-cutaneous-lupus-only"]
)
def test_no_card_without_current_sle(evaluate, patient):
    assert off_label(evaluate("order-sign", patient, ORDER)) == []


@pytest.mark.parametrize(
    ("hook", "patient", "orders"),
    [("patient-view", "sle-on-baricitinib", None), ("patient-view", "offlabel-lupus-nephritis-on-baricitinib", None),
     ("order-sign", "sle-on-baricitinib", ORDER)],
    ids=["chart-open", "chart-open-lupus-nephritis", "refill"],
)  # fmt: skip
def test_the_off_label_card_is_for_a_new_start_only(evaluate, hook, patient, orders):
    assert off_label(evaluate(hook, patient, orders)) == []


@pytest.mark.parametrize(
    ("hook", "patient", "orders"),
    [
        ("patient-view", "sle-baseline", None),  # not on baricitinib
        ("order-sign", "sle-baseline", ["hydroxychloroquine"]),  # another drug
        ("order-sign", "sle-on-baricitinib", ["hydroxychloroquine"]),  # another drug, patient on baricitinib
    ],
)
def test_silent_where_the_rule_does_not_run(evaluate, hook, patient, orders):
    assert off_label(evaluate(hook, patient, orders)) == []


def test_without_the_problem_list_no_card_and_the_check_is_reported_not_done(evaluate):
    cards = evaluate("order-sign", "sle-baseline", ORDER, prefetch_keys=ALL_BUT_CONDITIONS)
    assert off_label(cards) == []
    assert "**Not checked: Off-label use in SLE**" in only(cards, "data-quality").detail
