"""Live vaccine: a live vaccine ordered with baricitinib or for a patient on it (whatever the resource type
of the draft order), or given within the last 4 weeks (boundaries at 27, 28 and 29 days); JYNNEOS never;
CVX 188 (zoster, unspecified) said to be ambiguous; and an order hook for any other order stays silent."""

from __future__ import annotations

from datetime import date

import pytest

from cds_service import codes
from cds_service.facts import PatientFacts, VaccineOrder
from cds_service.fixtures import FIXTURE_DATE
from cds_service.rules.live_vaccines import _summary, live_vaccines
from tests.conftest import only, topics

ORDER = ["baricitinib-2mg"]
TOPIC = "live-vaccine"
MMR_ORDERS = {
    "live-mmr-medicationrequest": "MedicationRequest/draft-mmr",
    "live-mmr-servicerequest": "ServiceRequest/draft-mmr-sr",
    "live-mmr-immunization": "Immunization/draft-mmr-imm",
    "live-mmr-contained-medication": "MedicationRequest/draft-mmr-contained",
    "live-mmr-unpadded-code": "MedicationRequest/draft-mmr-3",
}


def live(cards):
    return [c for c in cards if c.topic == TOPIC]


def removed(card):
    [suggestion] = card.suggestions
    return [(a.type, a.resource_id) for a in suggestion.actions]


# --- live vaccine ordered together with baricitinib ------------------------------------------------


@pytest.mark.parametrize(("order", "reference"), MMR_ORDERS.items())
def test_a_live_vaccine_ordered_with_baricitinib_is_recognised_in_any_resource_type(evaluate, order, reference):
    card = only(evaluate("order-select", "sle-baseline", [*ORDER, order]), TOPIC)
    assert card.indicator == "warning"
    assert card.summary.startswith("Live vaccine ")
    assert card.summary.endswith("ordered with baricitinib: give it ≥ 4 weeks before starting")
    assert f", {reference}) is a live vaccine." in card.detail
    assert "give it first and start baricitinib ≥ 4 weeks later (ACIP/IDSA); otherwise remove the order." in card.detail
    assert card.detail.endswith("_US label; thresholds and timing are practice._")
    assert card.selection_behavior == "at-most-one"
    assert removed(card) == [("delete", reference)]
    assert card.suggestions[0].label == "Remove the live-vaccine order"


@pytest.mark.parametrize("hook", ["order-sign", "medication-prescribe"])
def test_the_other_order_hooks_flag_a_live_vaccine_ordered_with_baricitinib(evaluate, hook):
    card = only(evaluate(hook, "sle-baseline", [*ORDER, "live-varicella-servicerequest"]), TOPIC)
    assert "**varicella** (CVX 21, ServiceRequest/draft-varicella) is a live vaccine." in card.detail
    assert removed(card) == [("delete", "ServiceRequest/draft-varicella")]


def test_the_live_intranasal_influenza_vaccine_is_a_live_vaccine(evaluate):
    card = only(evaluate("order-select", "sle-baseline", [*ORDER, "live-laiv-immunization"]), TOPIC)
    assert "(CVX 111, Immunization/draft-laiv) is a live vaccine." in card.detail


def test_a_live_vaccine_order_without_an_id_gets_no_remove_action(evaluate):
    card = only(evaluate("order-select", "sle-baseline", [*ORDER, "live-mmr-no-id"]), TOPIC)
    assert "(CVX 03, MedicationRequest (no id)) is a live vaccine." in card.detail
    assert card.suggestions is None


def test_without_baricitinib_a_live_vaccine_order_for_a_patient_not_on_it_gives_no_card(evaluate):
    assert evaluate("order-select", "sle-baseline", ["live-mmr-medicationrequest"]) == []


# --- live vaccine ordered for a patient on baricitinib: the one card another order may bring --------------


@pytest.mark.parametrize(
    ("order", "reference"),
    [
        ("live-mmr-medicationrequest", "MedicationRequest/draft-mmr"),
        ("live-mmr-servicerequest", "ServiceRequest/draft-mmr-sr"),
        ("live-mmr-immunization", "Immunization/draft-mmr-imm"),
    ],
)
def test_an_mmr_order_for_a_patient_on_baricitinib_brings_only_the_live_vaccine_card(evaluate, order, reference):
    cards = evaluate("order-select", "sle-on-baricitinib", [order])
    assert topics(cards) == [TOPIC]
    card = cards[0]
    assert card.indicator == "warning"
    assert card.summary == "Live vaccine MMR ordered on baricitinib: remove it; the label says avoid"
    assert "The US label says avoid live vaccines with baricitinib" in card.detail
    assert "holding baricitinib for it is the prescriber's decision" in card.detail
    assert removed(card) == [("delete", reference)]
    assert card.source.label == "US Olumiant label (DailyMed)"


@pytest.mark.parametrize(
    "orders",
    [
        ["hydroxychloroquine"],
        ["live-rzv-medicationrequest"],
        ["live-jynneos-medicationrequest"],
        ["live-jynneos-servicerequest"],
        ["vaccines-influenza-order"],
    ],
)
def test_any_other_order_for_a_patient_on_baricitinib_returns_no_cards(evaluate, orders):
    assert evaluate("order-select", "sle-on-baricitinib", orders) == []


def test_a_recent_live_dose_does_not_make_another_order_alert(evaluate):
    assert evaluate("order-select", "live-on-baricitinib-mmr-14-days-ago", ["hydroxychloroquine"]) == []


def test_jynneos_ordered_with_baricitinib_is_not_a_live_vaccine_alert(evaluate):
    assert live(evaluate("order-select", "sle-baseline", [*ORDER, "live-jynneos-medicationrequest"])) == []


def test_jynneos_is_not_in_the_live_value_set(content):
    assert content.valueset("live_vaccines").matches(codes.CVX, "206") is None
    assert content.valueset("jynneos").matches(codes.CVX, "206") is not None


def test_a_never_flagged_group_stays_silent_even_if_its_code_were_called_live(content):
    entry = content.rules["live_vaccines"]
    jynneos = VaccineOrder(frozenset({"live", "jynneos"}), "206", "JYNNEOS", "MedicationRequest/draft-jynneos")
    facts = PatientFacts(as_of=FIXTURE_DATE, hook="order-select", patient_id="sle-baseline", vaccine_orders=[jynneos])
    assert live_vaccines(facts, entry) == []
    assert len(live_vaccines(facts, entry.model_copy(update={"never_flagged_groups": []}))) == 1


def test_a_non_live_look_alike_rzv_is_not_flagged(evaluate):
    assert live(evaluate("order-select", "sle-baseline", [*ORDER, "live-rzv-medicationrequest"])) == []


# --- CVX 188: zoster vaccine of unspecified type ------------------------------------------------------


@pytest.mark.parametrize(("patient", "orders"), [("sle-baseline", [*ORDER, "live-zoster-unspecified"]), ("sle-on-baricitinib", ["live-zoster-unspecified"])])
def test_an_unspecified_zoster_vaccine_order_is_called_ambiguous(evaluate, patient, orders):
    cards = evaluate("order-select", patient, orders)
    card = only(cards, TOPIC)
    assert card.indicator == "info"
    assert card.summary == "Zoster vaccine of unspecified type (CVX 188) could be live: order RZV instead"
    assert "does not say whether this is the live zoster vaccine (Zostavax, CVX 121)" in card.detail
    [suggestion] = card.suggestions
    assert suggestion.label == "Replace with recombinant zoster vaccine (RZV, CVX 187)"
    delete, create = suggestion.actions
    assert (delete.type, delete.resource_id) == ("delete", "MedicationRequest/draft-zoster-188")
    assert create.type == "create"
    assert create.resource["medicationCodeableConcept"]["coding"][0]["code"] == "187"


# --- live vaccine given within the last 4 weeks --------------------------------------------------------


def test_a_live_vaccine_given_14_days_before_a_baricitinib_order_fires(evaluate):
    card = only(evaluate("order-select", "live-mmr-14-days-ago", ORDER), TOPIC)
    assert card.indicator == "warning"
    assert card.summary == "Live vaccine MMR given 2026-11-11: start baricitinib no sooner than 2026-12-09"
    assert "**MMR** (CVX 03) given on 2026-11-11, 14 days ago (Immunization/mmr), is a live vaccine." in card.detail
    assert "Start baricitinib no sooner than 2026-12-09: ACIP/IDSA give live vaccines ≥ 4 weeks before" in card.detail
    assert card.suggestions is None


@pytest.mark.parametrize(
    ("as_of", "fires"),
    [(date(2026, 11, 24), True), (date(2026, 11, 25), False), (date(2026, 11, 26), False)],
    ids=["27-days", "28-days", "29-days"],
)
def test_the_4_week_boundary(evaluate, as_of, fires):
    cards = live(evaluate("order-select", "live-mmr-2026-10-28", ORDER, as_of=as_of))
    assert len(cards) == (1 if fires else 0)
    if fires:
        assert "given on 2026-10-28, 27 days ago" in cards[0].detail


def test_a_live_dose_entered_in_error_does_not_count(evaluate):
    assert live(evaluate("order-select", "live-mmr-entered-in-error", ORDER)) == []


def test_a_recent_jynneos_dose_is_not_a_live_vaccine_alert(evaluate):
    assert live(evaluate("order-select", "live-jynneos-14-days-ago", ORDER)) == []


def test_a_recent_live_dose_and_a_live_order_give_one_card_each(evaluate):
    cards = live(evaluate("order-select", "live-mmr-14-days-ago", [*ORDER, "live-mmr-servicerequest"]))
    assert sorted(c.summary.split(":")[0] for c in cards) == [
        "Live vaccine MMR given 2026-11-11",
        "Live vaccine MMR ordered with baricitinib",
    ]


def test_unavailable_immunizations_leave_the_order_check_and_name_the_gap(evaluate):
    keys = {"patient", "conditions", "observations", "medications"}
    cards = evaluate("order-select", "live-mmr-14-days-ago", [*ORDER, "live-mmr-servicerequest"], prefetch_keys=keys)
    [card] = live(cards)
    assert "ordered with baricitinib" in card.summary
    assert "Not checked: Live vaccine" in only(cards, "data-quality").detail


# --- patient-view --------------------------------------------------------------------------------------


def test_patient_view_on_baricitinib_with_a_live_dose_14_days_ago_fires(evaluate):
    card = only(evaluate("patient-view", "live-on-baricitinib-mmr-14-days-ago"), TOPIC)
    assert card.indicator == "warning"
    assert card.summary == "Live vaccine MMR given 2026-11-11 on baricitinib: review; the label says avoid"
    assert "given on 2026-11-11, 14 days ago (Immunization/mmr)" in card.detail
    assert card.suggestions is None


def test_patient_view_on_baricitinib_with_a_live_dose_28_days_ago_is_silent(evaluate):
    assert live(evaluate("patient-view", "live-on-baricitinib-mmr-2026-10-28")) == []


def test_patient_view_for_a_patient_not_on_baricitinib_returns_no_cards(evaluate):
    assert evaluate("patient-view", "live-mmr-14-days-ago") == []


def test_a_long_vaccine_name_is_shortened_to_keep_the_summary_under_140(evaluate):
    template = "Live vaccine {vaccine} ordered with baricitinib: give it ≥ 4 weeks before starting"
    summary = _summary(template, {"vaccine": "x" * 200})
    assert len(summary) == 139 and "x..." in summary
