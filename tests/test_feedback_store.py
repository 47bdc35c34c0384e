from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, StatementError

from cds_service.feedback import (
    MAX_ACCEPTED_SUGGESTIONS,
    MAX_COMMENT_LENGTH,
    MAX_DISPLAY_LENGTH,
    MAX_FEEDBACK_ITEMS,
    MAX_ID_LENGTH,
    MAX_URI_LENGTH,
    FeedbackRequest,
)
from cds_service.feedback_store import (
    FeedbackStore,
    TopicReport,
    card_feedback,
    card_shown,
    get_store,
    init_app,
)
from cds_service.settings import Settings
from cds_service.store_deadline import StoreUnavailable
from tests import db_helpers
from tests.db_helpers import (
    CONTENTION_TIMEOUT,
    SERVICE_ID,
    accepted,
    feedback_request,
    overridden,
    read_only,
    read_rows,
    shown_card,
    sqlite_write_lock,
    write_from_process,
)

# The shared database fixtures; pytest finds fixtures among a module's attributes.
store_url = db_helpers.store_url
store = db_helpers.store
postgres_proxy = db_helpers.postgres_proxy

PARIS = timezone(timedelta(hours=2))
AT = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


# --- the feedback request model -------------------------------------------------------------


def test_feedback_request_reads_the_json_a_cds_client_sends() -> None:
    request = FeedbackRequest.model_validate(
        {
            "feedback": [
                {
                    "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
                    "outcome": "overridden",
                    "overrideReason": {
                        "reason": {"code": "not-sle", "system": "urn:test:reasons", "display": "Not SLE"},
                        "userComment": "Diagnosis revised",
                    },
                    "outcomeTimestamp": "2025-03-14T11:30:00+02:00",
                    "extension": {"org.example.ward": "rheumatology"},
                }
            ]
        }
    )

    item = request.feedback[0]
    assert item.override_reason is not None and item.override_reason.reason is not None
    assert item.override_reason.reason.code == "not-sle"
    assert item.override_reason.user_comment == "Diagnosis revised"
    assert item.outcome_timestamp == AT
    assert item.extension == {"org.example.ward": "rheumatology"}
    assert request.to_json_dict()["feedback"][0]["overrideReason"]["userComment"] == "Diagnosis revised"


ON_TIME = "2025-03-14T09:30:00Z"


@pytest.mark.parametrize(
    ("feedback", "where", "kind"),
    [
        ([{"card": "c1", "outcome": "ignored", "outcomeTimestamp": ON_TIME}], ("feedback", 0, "outcome"),
         "literal_error"),
        ([{"card": "c1", "outcome": "accepted", "outcomeTimestamp": "2025-03-14T09:30:00"}],
         ("feedback", 0, "outcomeTimestamp"), "timezone_aware"),
        ([{"card": "c1", "outcome": "overridden", "acceptedSuggestions": [{"id": "s1"}],
           "outcomeTimestamp": ON_TIME}], ("feedback", 0), "value_error"),
        ([{"card": "c1", "outcome": "accepted", "overrideReason": {"userComment": "no"},
           "outcomeTimestamp": ON_TIME}], ("feedback", 0), "value_error"),
        ([{"card": "c1", "outcome": "accepted", "outcomeTimestamp": ON_TIME, "extension": []}],
         ("feedback", 0, "extension"), "dict_type"),
        ([{"outcome": "accepted", "outcomeTimestamp": ON_TIME}], ("feedback", 0, "card"), "missing"),
        ([], ("feedback",), "too_short"),
    ],
    ids=[
        "bad-outcome",
        "naive-timestamp",
        "suggestions-on-override",
        "reason-on-accept",
        "extension-not-object",
        "no-card",
        "empty-feedback-list",
    ],
)
def test_feedback_request_rejects_what_the_specification_forbids(
    feedback: list[dict], where: tuple, kind: str
) -> None:
    with pytest.raises(ValidationError) as error:
        FeedbackRequest.model_validate({"feedback": feedback})
    assert [(problem["loc"], problem["type"]) for problem in error.value.errors()] == [(where, kind)]


def test_feedback_request_says_which_detail_does_not_match_the_outcome() -> None:
    with pytest.raises(ValidationError, match="acceptedSuggestions is only allowed when outcome is 'acc"):
        FeedbackRequest.model_validate(
            {"feedback": [{"card": "c1", "outcome": "overridden", "acceptedSuggestions": [],
                           "outcomeTimestamp": ON_TIME}]}
        )
    with pytest.raises(ValidationError, match="overrideReason is only allowed when outcome is 'overridden'"):
        FeedbackRequest.model_validate(
            {"feedback": [{"card": "c1", "outcome": "accepted", "overrideReason": {},
                           "outcomeTimestamp": ON_TIME}]}
        )


# --- writing and reading back ---------------------------------------------------------------


def test_feedback_round_trip_keeps_every_field_in_utc(store: FeedbackStore, store_url: str) -> None:
    written = store.record_feedback(
        SERVICE_ID,
        feedback_request(
            accepted("card-1", AT.astimezone(PARIS), "suggestion-a", "suggestion-b"),
            overridden("card-2", AT, code="not-sle", display="Not SLE", comment="Diagnosis revised"),
        ),
    )

    assert written == 2
    first, second = sorted(read_rows(store_url, card_feedback), key=lambda row: row["id"])
    assert first["service_id"] == SERVICE_ID
    assert first["card_uuid"] == "card-1"
    assert first["outcome"] == "accepted"
    assert json.loads(first["accepted_suggestions"]) == ["suggestion-a", "suggestion-b"]
    assert first["override_code"] is None and first["user_comment"] is None
    assert first["outcome_timestamp"] == AT
    assert first["outcome_timestamp"].utcoffset() == timedelta(0)
    assert abs(first["received_at"] - datetime.now(UTC)) < timedelta(minutes=1)
    assert second["outcome"] == "overridden"
    assert second["accepted_suggestions"] is None
    assert (second["override_code"], second["override_system"], second["override_display"]) == (
        "not-sle",
        "urn:test:reasons",
        "Not SLE",
    )
    assert second["user_comment"] == "Diagnosis revised"


def test_cards_round_trip_and_a_repeated_uuid_is_logged_once(store: FeedbackStore, store_url: str) -> None:
    card = shown_card("renal-dosing", AT.astimezone(PARIS), indicator="critical")

    store.record_cards(SERVICE_ID, [card])
    store.record_cards(SERVICE_ID, [card])
    store.record_cards(SERVICE_ID, [])

    assert read_rows(store_url, card_shown) == [
        {
            "card_uuid": card.uuid,
            "service_id": SERVICE_ID,
            "topic": "renal-dosing",
            "indicator": "critical",
            "shown_at": AT,
            "patient_key": None,
        }
    ]


def test_naive_times_are_refused(store: FeedbackStore) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        store.record_cards(SERVICE_ID, [shown_card("renal-dosing", datetime(2025, 3, 14, 9, 30))])


def test_everything_survives_a_restart(store_url: str) -> None:
    card = shown_card("renal-dosing", AT)
    before = FeedbackStore(store_url)
    before.record_cards(SERVICE_ID, [card])
    before.record_feedback(SERVICE_ID, feedback_request(overridden(card.uuid, AT, code="not-sle")))
    before.dispose()

    after = FeedbackStore(store_url)
    try:
        after.record_feedback(SERVICE_ID, feedback_request(accepted(card.uuid, AT, "suggestion-a")))
        assert after.report() == [
            TopicReport("renal-dosing", shown=1, accepted=1, overridden=1, override_rate=0.5,
                        override_reasons=[("not-sle", 1)])
        ]
    finally:
        after.dispose()


# --- many writers at once -------------------------------------------------------------------


def test_no_write_is_lost_with_16_threads(store_url: str) -> None:
    # A write that outlives the store's deadline is refused (503, retried by the client), not lost; on a
    # loaded test machine 16 writers can wait that long, so this test of contention alone lifts it.
    store = FeedbackStore(store_url, timeout=CONTENTION_TIMEOUT)
    threads, requests = 16, 25
    start_together = threading.Barrier(threads)

    def write(thread: int) -> int:
        start_together.wait(timeout=10)
        written = 0
        for _ in range(requests):
            card = shown_card(f"topic-{thread % 4}", AT)
            store.record_cards(SERVICE_ID, [card])
            written += store.record_feedback(
                SERVICE_ID, feedback_request(accepted(card.uuid, AT), overridden(card.uuid, AT, code="busy"))
            )
        return written

    with ThreadPoolExecutor(max_workers=threads) as pool:
        written = sum(pool.map(write, range(threads)))

    rows = store.report()
    assert written == threads * requests * 2
    assert [row.topic for row in rows] == ["topic-0", "topic-1", "topic-2", "topic-3"]
    assert sum(row.shown for row in rows) == threads * requests
    assert sum(row.accepted for row in rows) == threads * requests
    assert sum(row.overridden for row in rows) == threads * requests
    store.dispose()


def test_no_write_is_lost_with_3_processes(store_url: str) -> None:
    processes, requests = 3, 30
    spawn = multiprocessing.get_context("spawn")
    start_together = spawn.Barrier(processes)
    workers = [
        spawn.Process(target=write_from_process, args=(store_url, start_together, requests, AT))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert [worker.exitcode for worker in workers] == [0] * processes
    store = FeedbackStore(store_url)
    try:
        assert store.report() == [
            TopicReport("process", shown=processes * requests, accepted=0, overridden=processes * requests,
                        override_rate=1.0, override_reasons=[("busy", processes * requests)])
        ]
    finally:
        store.dispose()


# --- SQLite specifics and configuration -----------------------------------------------------


def test_sqlite_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "cds.sqlite3"
    store = FeedbackStore(f"sqlite:///{path}")
    other_writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        assert other_writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        other_writer.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.5, other_writer.execute, args=("COMMIT",))
        release.start()
        started = time.monotonic()

        store.record_feedback(SERVICE_ID, feedback_request(accepted("card-1", AT)))

        assert time.monotonic() - started >= 0.4
        release.join()
        assert store.report()[0].accepted == 1
    finally:
        other_writer.close()
        store.dispose()


def test_plain_postgres_urls_are_served_by_psycopg() -> None:
    for scheme in ("postgres", "postgresql"):
        with pytest.raises(OperationalError) as error:
            FeedbackStore(f"{scheme}://nobody@127.0.0.1:1/nothing")
        assert type(error.value.orig).__module__.startswith("psycopg")


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        FeedbackStore("mysql://nobody:secret@127.0.0.1/cds")


def test_sqlite_file_and_its_folder_are_created(tmp_path: Path) -> None:
    path = tmp_path / "instance" / "nested" / "cds.sqlite3"

    FeedbackStore(f"sqlite:///{path}").dispose()

    assert path.is_file()


def test_init_app_opens_the_configured_store(store_url: str) -> None:
    app = Flask(__name__)

    store = init_app(app, Settings(database_url=store_url))
    try:
        assert get_store(app) is store
        store.check_writable()
    finally:
        store.dispose()


# --- bounds on what a client may store ------------------------------------------------------------

LONG = "x" * (MAX_ID_LENGTH + 1)


@pytest.mark.parametrize(
    ("item", "where", "kind"),
    [
        ({"card": LONG}, ("feedback", 0, "card"), "string_too_long"),
        ({"outcome": "overridden", "overrideReason": {"reason": {"code": LONG}}},
         ("feedback", 0, "overrideReason", "reason", "code"), "string_too_long"),
        ({"outcome": "overridden",
          "overrideReason": {"reason": {"code": "c", "system": "u" * (MAX_URI_LENGTH + 1)}}},
         ("feedback", 0, "overrideReason", "reason", "system"), "string_too_long"),
        ({"outcome": "overridden",
          "overrideReason": {"reason": {"code": "c", "display": "d" * (MAX_DISPLAY_LENGTH + 1)}}},
         ("feedback", 0, "overrideReason", "reason", "display"), "string_too_long"),
        ({"outcome": "overridden", "overrideReason": {"userComment": "c" * (MAX_COMMENT_LENGTH + 1)}},
         ("feedback", 0, "overrideReason", "userComment"), "string_too_long"),
        ({"acceptedSuggestions": [{"id": LONG}]}, ("feedback", 0, "acceptedSuggestions", 0, "id"),
         "string_too_long"),
        ({"acceptedSuggestions": [{"id": f"s{n}"} for n in range(MAX_ACCEPTED_SUGGESTIONS + 1)]},
         ("feedback", 0, "acceptedSuggestions"), "too_long"),
    ],
    ids=["card", "override-code", "override-system", "override-display", "user-comment", "suggestion-id",
         "suggestion-count"],
)  # fmt: skip
def test_feedback_fields_over_their_bounds_are_refused(item: dict, where: tuple, kind: str) -> None:
    feedback = {"card": "c1", "outcome": "accepted", "outcomeTimestamp": ON_TIME, **item}
    with pytest.raises(ValidationError) as error:
        FeedbackRequest.model_validate({"feedback": [feedback]})
    assert [(problem["loc"], problem["type"]) for problem in error.value.errors()] == [(where, kind)]


def test_a_request_with_too_many_items_is_refused() -> None:
    item = {"card": "c1", "outcome": "accepted", "outcomeTimestamp": ON_TIME}
    with pytest.raises(ValidationError) as error:
        FeedbackRequest.model_validate({"feedback": [item] * (MAX_FEEDBACK_ITEMS + 1)})
    problems = [(problem["loc"], problem["type"]) for problem in error.value.errors()]
    assert problems == [(("feedback",), "value_error")]


def test_every_field_at_its_bound_is_stored(store: FeedbackStore, store_url: str) -> None:
    """The longest values the models accept fit the columns, the indexed card uuid included (PostgreSQL
    refuses an index entry over about 2.7 KB and a value over a VARCHAR's size)."""
    card = "é" * MAX_ID_LENGTH  # two bytes each in UTF-8
    suggestions = ["\x01" * MAX_ID_LENGTH] * MAX_ACCEPTED_SUGGESTIONS  # the longest JSON: \u0001 each
    override = overridden(card, AT, code="c" * MAX_ID_LENGTH, display="d" * MAX_DISPLAY_LENGTH,
                          comment="m" * MAX_COMMENT_LENGTH)  # fmt: skip
    override["overrideReason"]["reason"]["system"] = "s" * MAX_URI_LENGTH

    store.record_feedback(SERVICE_ID, feedback_request(accepted(card, AT, *suggestions), override))

    first, second = sorted(read_rows(store_url, card_feedback), key=lambda row: row["id"])
    assert first["card_uuid"] == card and json.loads(first["accepted_suggestions"]) == suggestions
    assert len(second["user_comment"]) == MAX_COMMENT_LENGTH
    assert len(second["override_system"]) == MAX_URI_LENGTH


# --- faults: the store slow, locked, read-only, hung or gone ----------------------------------------


def rows_not_written(reason: str) -> float:
    return REGISTRY.get_sample_value("cds_card_log_rows_not_written_total", {"reason": reason}) or 0.0


def test_feedback_waits_no_longer_than_the_timeout_for_a_locked_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "cds.sqlite3"
    store = FeedbackStore(f"sqlite:///{path}", timeout=0.3)
    try:
        with sqlite_write_lock(path):
            with pytest.raises(StoreUnavailable):
                store.record_feedback(SERVICE_ID, feedback_request(accepted("card-1", AT)))
            with pytest.raises(StoreUnavailable):
                store.check_writable()
        store.check_writable()
    finally:
        store.dispose()


def test_a_read_only_sqlite_file_is_not_writable_and_recovers_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cds.sqlite3"
    store = FeedbackStore(f"sqlite:///{path}", timeout=1.0)
    try:
        store.check_writable()
        store.dispose()  # the service starts on a file that is, or becomes, read-only
        with read_only(path):
            with pytest.raises(StoreUnavailable):
                store.check_writable()
            with pytest.raises(StoreUnavailable):
                store.record_feedback(SERVICE_ID, feedback_request(accepted("card-1", AT)))
        store.check_writable()
        store.record_feedback(SERVICE_ID, feedback_request(accepted("card-1", AT)))
        assert store.report()[0].accepted == 1
    finally:
        store.dispose()


def test_card_log_rows_are_written_behind_the_call_and_drained_on_close(store, store_url: str) -> None:
    cards = [shown_card("renal-dosing", AT), shown_card("lab-hold", AT)]

    store.card_log.submit(SERVICE_ID, cards)
    store.card_log.close()

    logged = sorted(row["card_uuid"] for row in read_rows(store_url, card_shown))
    assert logged == sorted(c.uuid for c in cards)


def test_card_log_drops_and_counts_the_calls_a_locked_database_leaves_waiting(tmp_path: Path) -> None:
    path = tmp_path / "cds.sqlite3"
    store = FeedbackStore(f"sqlite:///{path}", timeout=3.0, card_log_queue=1)  # 3 s to drain
    before = rows_not_written("queue_full")
    try:
        with sqlite_write_lock(path):
            for _ in range(20):  # the writer waits on one call, the queue holds one more, the rest go
                store.card_log.submit(SERVICE_ID, [shown_card("lab-hold", AT)])
            dropped = rows_not_written("queue_full") - before
        store.card_log.close()  # the lock gone: what was taken is written
        assert dropped >= 18
        assert len(read_rows(f"sqlite:///{path}", card_shown)) + dropped == 20
    finally:
        store.dispose()


def test_card_log_counts_the_rows_a_read_only_file_refuses(tmp_path: Path) -> None:
    path = tmp_path / "cds.sqlite3"
    store = FeedbackStore(f"sqlite:///{path}", timeout=1.0)
    store.dispose()
    before = rows_not_written("store_error")
    try:
        with read_only(path):
            store.card_log.submit(SERVICE_ID, [shown_card("lab-hold", AT), shown_card("renal-dosing", AT)])
            store.card_log.close()
        assert rows_not_written("store_error") - before == 2
        assert read_rows(f"sqlite:///{path}", card_shown) == []
    finally:
        store.dispose()


@db_helpers.needs_postgres
@pytest.mark.parametrize(
    ("fault", "repair"), [("freeze", "thaw"), ("shut", "reopen")], ids=["frozen", "closed-port"]
)
def test_postgres_frozen_or_gone_costs_a_request_the_timeout_then_serves_again(postgres_proxy, fault, repair):
    """Frozen: connections open, no byte moves (a stopped server); closed port: connections refused. Once
    the server is back the pooled connections serve again without a restart."""
    url, proxy = postgres_proxy
    store = FeedbackStore(url, timeout=1.0)
    try:
        store.record_feedback(SERVICE_ID, feedback_request(accepted("before", AT)))
        getattr(proxy, fault)()
        with pytest.raises(StoreUnavailable):
            store.record_feedback(SERVICE_ID, feedback_request(accepted("during", AT)))
        with pytest.raises(StoreUnavailable):
            store.check_writable()
        getattr(proxy, repair)()
        store.check_writable()
        store.record_feedback(SERVICE_ID, feedback_request(accepted("after", AT)))
        # "during" was answered 503 (nothing kept), so it must not land later: the client sends it again
        assert sorted(row["card_uuid"] for row in read_rows(url, card_feedback)) == ["after", "before"]
    finally:
        proxy.thaw()
        store.dispose()
