"""Fewer cards: at a new start one "Before starting baricitinib" card lists what is missing, at a chart open
one card what is due; each item keeps its own suggestion and its topic (in the extension); a safety check
that waits on a listed result is said there and not again on the data-quality card."""

from __future__ import annotations

from cds_service import bundles
from cds_service.cards import EXTENSION_KEY, Card, Coding, Source, Suggestion
from tests.conftest import evaluator, only, topics

ORDER = ["baricitinib-2mg"]
NEW_START = "new-start-no-workup-on-mycophenolate"  # no labs, no vaccines, on mycophenolate


def items(card: Card) -> list[str]:
    return card.extension[EXTENSION_KEY]["items"]


def test_a_new_start_with_no_work_up_gets_one_card_for_labs_and_vaccines_with_a_suggestion_per_item(evaluate):
    cards = evaluate("order-select", NEW_START, ORDER)
    assert "baseline-labs" not in topics(cards) and "vaccination-reminder" not in topics(cards)
    before = only(cards, "before-starting")
    assert items(before) == ["baseline-labs", "vaccination-reminder"]
    assert before.summary == "Before starting baricitinib: complete baseline tests and vaccines"
    assert before.indicator == "warning"
    assert before.selection_behavior == "any"
    labels = [s.label for s in before.suggestions]
    assert labels[0] == "Order the missing baseline tests"
    assert any("Zoster" in label for label in labels[1:]) and len(labels) == len({s.uuid for s in before.suggestions})
    # The baseline order holds one ServiceRequest per missing test, as the baseline card's did.
    assert all(a.resource["resourceType"] == "ServiceRequest" for a in before.suggestions[0].actions)
    assert before.source.topic.code == "before-starting"
    assert {link.url for link in before.links} >= {before.source.url}


def test_the_items_are_the_rules_own_cards(evaluate, runtime):
    unbundled = evaluator(runtime, bundled=False)("order-select", NEW_START, ORDER)
    held = [c for c in unbundled if c.topic in ("baseline-labs", "vaccination-reminder")]
    before = only(evaluate("order-select", NEW_START, ORDER), "before-starting")
    for card in held:
        assert card.summary in before.detail
    assert sum(len(c.suggestions) for c in held) == len(before.suggestions)


def test_a_renal_check_waiting_on_the_listed_creatinine_is_said_on_the_card_that_orders_it(evaluate, runtime):
    unbundled = evaluator(runtime, bundled=False)("order-select", NEW_START, ORDER)
    assert "Renal dose check" in only(unbundled, "data-quality").summary  # the rule's own finding
    cards = evaluate("order-select", NEW_START, ORDER)
    assert "data-quality" not in topics(cards)  # nothing else was wrong with the data
    assert "Not checked until these results are in: Renal dose check." in only(cards, "before-starting").detail


def test_a_chart_open_with_overdue_monitoring_gets_one_due_card_and_the_lab_hold_gap_on_it(evaluate):
    cards = evaluate("patient-view", "baseline-on-baricitinib-no-labs")
    due = only(cards, "due-on-therapy")
    assert items(due) == ["monitoring-due"]
    assert due.indicator == "warning"  # a lab-hold check cannot run until the ordered CBC is back
    assert "Not checked until these results are in: Renal dose check, Lab-hold check." in due.detail
    assert "creatinine/eGFR" in due.detail
    assert "data-quality" not in topics(cards)  # both gaps are said once, next to the order for their results


def test_a_stable_patient_on_therapy_gets_no_card_at_a_chart_open(evaluate):
    assert evaluate("patient-view", "sle-on-baricitinib") == []


def test_an_order_while_on_baricitinib_is_not_a_new_start(evaluate):
    assert "before-starting" not in topics(evaluate("order-select", "baseline-on-baricitinib-no-labs", ORDER))


def test_a_card_whose_suggestions_are_alternatives_keeps_its_own_card(content):
    alternatives = Card(
        summary="Order baseline tests",
        indicator="warning",
        source=Source(label="x", url="https://example.org", topic=Coding(code="baseline-labs")),
        suggestions=[Suggestion(label="one"), Suggestion(label="other")],
        selection_behavior="at-most-one",
    )
    assert bundles.plan({"new-start"}, [alternatives], content) == []
    assert len(bundles.plan({"new-start"}, [alternatives.model_copy(update={"selection_behavior": "any"})], content)) == 1
