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
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, StatementError

from cds_service.feedback import FeedbackRequest
from cds_service.feedback_store import (
    FeedbackStore,
    TopicReport,
    card_feedback,
    card_shown,
    get_store,
    init_app,
)
from cds_service.settings import Settings
from tests import db_helpers
from tests.db_helpers import (
    SERVICE_ID,
    accepted,
    feedback_request,
    overridden,
    read_rows,
    shown_card,
    write_from_process,
)

# The shared database fixtures; pytest finds fixtures among a module's attributes.
store_url = db_helpers.store_url
store = db_helpers.store

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


def test_no_write_is_lost_with_16_threads(store: FeedbackStore) -> None:
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
        store.ping()
    finally:
        store.dispose()
