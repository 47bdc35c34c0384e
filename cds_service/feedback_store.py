"""Durable log of the cards this service showed and of the feedback clinicians sent about them.

The log feeds the alert-fatigue report: how often each card topic is overridden, and why.
SQLite (one host, the default) and PostgreSQL (several hosts) run the same SQLAlchemy Core
code. Several gunicorn workers, each with several threads, write at once, and no write may be
lost: SQLite runs in WAL mode with a busy timeout and writes are retried while the file is
locked; PostgreSQL connections are checked before use so a restarted server costs no request.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    TypeDecorator,
    and_,
    create_engine,
    event,
    func,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from cds_service.feedback import FeedbackItem, FeedbackRequest, OverrideOnRecord, ShownCard

if TYPE_CHECKING:
    from flask import Flask

    from cds_service.settings import Settings

UNKNOWN_TOPIC = "unknown"
NO_REASON_GIVEN = "no reason given"

_EXTENSION_KEY = "feedback_store"
_SQLITE_BUSY_TIMEOUT_MS = 5_000
_ATTEMPTS = 5
_RETRY_PAUSE_SECONDS = 0.1


class _UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored and returned in UTC on every backend.

    SQLite keeps no offset, so values are converted to UTC before they are written (and
    naive ones refused) and marked as UTC when read back.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only accepts timezone-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

card_shown = Table(
    "card_shown",
    metadata,
    Column("card_uuid", String, primary_key=True),
    Column("service_id", String, nullable=False),
    Column("topic", String, nullable=False),
    Column("indicator", String, nullable=False),
    Column("shown_at", _UtcDateTime, nullable=False, index=True),
    # HMAC-SHA256 of FHIR server and patient id, hex; only on cards a clinician can silence for a patient.
    Column("patient_key", String(64), index=True),
)

card_feedback = Table(
    "card_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String, nullable=False),
    Column("card_uuid", String, nullable=False, index=True),
    Column("outcome", String, nullable=False),
    Column("accepted_suggestions", String, comment="JSON array of accepted suggestion uuids"),
    Column("override_code", String),
    Column("override_system", String),
    Column("override_display", String),
    Column("user_comment", String),
    Column("outcome_timestamp", _UtcDateTime, nullable=False, index=True),
    Column("received_at", _UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class TopicReport:
    """How one card topic fared: cards shown, clinicians' outcomes, and why they overrode it."""

    topic: str
    shown: int
    accepted: int
    overridden: int
    override_rate: float | None
    override_reasons: list[tuple[str, int]]


class FeedbackStore:
    """The card and feedback log behind one database URL; safe to share between threads."""

    def __init__(self, database_url: str) -> None:
        self._engine = _create_engine(database_url)
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        self._insert_shown_card = insert(card_shown).on_conflict_do_nothing(
            index_elements=[card_shown.c.card_uuid]
        )
        _with_retries(lambda: metadata.create_all(self._engine), _lost_table_creation_race)
        _with_retries(self._add_patient_key_column, _lost_table_creation_race)
        # Leave no open connection behind, so a server that forks after start-up does not
        # hand the same connection to several workers.
        self._engine.dispose()

    @property
    def engine(self) -> Engine:
        """The store's engine, shared by the other tables kept in the same database (the JWT replay cache)."""
        return self._engine

    def _add_patient_key_column(self) -> None:
        """A card log created before cards could be silenced gains the column (create_all adds no columns)."""
        if "patient_key" in {c["name"] for c in inspect(self._engine).get_columns("card_shown")}:
            return
        with self._engine.begin() as connection:
            connection.execute(text("ALTER TABLE card_shown ADD COLUMN patient_key VARCHAR(64)"))
            connection.execute(text("CREATE INDEX IF NOT EXISTS ix_card_shown_patient_key ON card_shown (patient_key)"))

    def silenced_topics(self, patient_key: str, reasons: Sequence[OverrideOnRecord]) -> set[str]:
        """The topics among ``reasons`` whose card a clinician overrode for this patient with that reason,
        at or after its ``since``."""
        if not reasons:
            return set()
        matches = [
            and_(
                card_shown.c.topic == r.topic,
                card_feedback.c.override_code == r.code,
                or_(card_feedback.c.override_system == r.system, card_feedback.c.override_system.is_(None)),
                card_feedback.c.outcome_timestamp >= r.since,
            )
            for r in reasons
        ]
        query = (
            select(card_shown.c.topic)
            .distinct()
            .select_from(card_feedback.join(card_shown, card_shown.c.card_uuid == card_feedback.c.card_uuid))
            .where(card_shown.c.patient_key == patient_key, card_feedback.c.outcome == "overridden", or_(*matches))
        )
        with self._engine.connect() as connection:
            return {topic for (topic,) in connection.execute(query)}

    def ping(self) -> None:
        """Raise if the database cannot be reached; for the health check."""
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def record_cards(self, service_id: str, cards: Sequence[ShownCard]) -> None:
        """Log the cards returned by one hook call.

        A card uuid is unique (CDS Hooks §Card), so logging the same uuid again is ignored:
        a repeated call cannot count a card twice.
        """
        rows = [
            {
                "card_uuid": card.uuid,
                "service_id": service_id,
                "topic": card.topic,
                "indicator": card.indicator,
                "shown_at": card.shown_at,
                "patient_key": card.patient_key,
            }
            for card in cards
        ]
        if rows:
            self._write(self._insert_shown_card, rows)

    def record_feedback(self, service_id: str, request: FeedbackRequest) -> int:
        """Store every item of one feedback request, all or none; return the rows written.

        ``extension`` is not kept: the report has no use for it.
        """
        received_at = datetime.now(UTC)
        rows = [_feedback_row(service_id, item, received_at) for item in request.feedback]
        self._write(card_feedback.insert(), rows)
        return len(rows)

    def report(self, start: datetime | None = None, end: datetime | None = None) -> list[TopicReport]:
        """Figures per topic for ``start <= time < end`` (either bound may be None), sorted by topic.

        Cards count by when they were shown, outcomes by their ``outcomeTimestamp``. Each
        feedback row counts once, even when a clinician acted on the same card twice: the
        specification asks clients to report every distinct interaction, and each override
        is a separate interruption. Feedback about a card this service never logged counts
        under the topic ``unknown``.
        """
        shown_query = _within(
            select(card_shown.c.topic, func.count()).group_by(card_shown.c.topic),
            card_shown.c.shown_at,
            start,
            end,
        )
        outcome_columns = (
            card_shown.c.topic,
            card_feedback.c.outcome,
            card_feedback.c.override_code,
            card_feedback.c.override_display,
        )
        outcome_query = _within(
            select(*outcome_columns, func.count())
            .select_from(
                card_feedback.outerjoin(card_shown, card_shown.c.card_uuid == card_feedback.c.card_uuid)
            )
            .group_by(*outcome_columns),
            card_feedback.c.outcome_timestamp,
            start,
            end,
        )
        with self._engine.connect() as connection:
            shown = {topic: count for topic, count in connection.execute(shown_query)}
            outcome_rows = connection.execute(outcome_query).all()

        outcomes: dict[str, Counter[str]] = {}
        reasons: dict[str, Counter[str]] = {}
        for topic, outcome, code, display, count in outcome_rows:
            topic = topic or UNKNOWN_TOPIC
            outcomes.setdefault(topic, Counter())[outcome] += count
            if outcome == "overridden":
                reasons.setdefault(topic, Counter())[code or display or NO_REASON_GIVEN] += count

        return [
            _topic_report(topic, shown.get(topic, 0), outcomes.get(topic, Counter()), reasons.get(topic))
            for topic in sorted(shown.keys() | outcomes.keys())
        ]

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def _write(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` in one transaction, retrying while another SQLite writer holds the lock."""

        def insert() -> None:
            with self._engine.begin() as connection:
                connection.execute(statement, rows)

        _with_retries(insert, _database_is_locked)


def init_app(app: Flask, settings: Settings) -> FeedbackStore:
    """Open the store named by ``settings.database_url`` for ``app``; see ``get_store``."""
    store = FeedbackStore(settings.database_url)
    app.extensions[_EXTENSION_KEY] = store
    return store


def get_store(app: Flask) -> FeedbackStore:
    """The store ``init_app`` opened for ``app``."""
    store: FeedbackStore = app.extensions[_EXTENSION_KEY]
    return store


def _create_engine(database_url: str) -> Engine:
    # hide_parameters: the values written (a caller's jti, feedback fields) stay out of SQLAlchemy's
    # statement log at any level and out of its error messages, which the service may log.
    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, hide_parameters=True)
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    raise ValueError(
        f"unsupported database {url.render_as_string(hide_password=True)}: use sqlite:/// or postgresql://"
    )


def _configure_sqlite_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    """Let readers and writers from many processes share the file without failing at once.

    The busy timeout is set first so that switching to WAL also waits for a lock.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def _with_retries(work: Callable[[], None], may_retry: Callable[[DBAPIError], bool]) -> None:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            work()
            return
        except DBAPIError as error:
            if attempt == _ATTEMPTS or not may_retry(error):
                raise
            time.sleep(_RETRY_PAUSE_SECONDS * attempt)


def _database_is_locked(error: DBAPIError) -> bool:
    """SQLite gave up waiting for another writer (the busy timeout ran out)."""
    return isinstance(error, OperationalError) and "database is locked" in str(error.orig)


def _lost_table_creation_race(error: DBAPIError) -> bool:
    """Workers starting together race to create the tables.

    The loser sees "already exists" (PostgreSQL may report it as a unique violation in its
    catalog) or a locked SQLite file; on the next try the tables are there and left alone.
    """
    return (
        isinstance(error, IntegrityError)
        or "already exists" in str(error.orig)
        or _database_is_locked(error)
    )


def _feedback_row(service_id: str, item: FeedbackItem, received_at: datetime) -> dict[str, Any]:
    override = item.override_reason
    reason = override.reason if override else None
    suggestions = item.accepted_suggestions
    return {
        "service_id": service_id,
        "card_uuid": item.card,
        "outcome": item.outcome,
        "accepted_suggestions": None if suggestions is None else json.dumps([s.id for s in suggestions]),
        "override_code": reason.code if reason else None,
        "override_system": reason.system if reason else None,
        "override_display": reason.display if reason else None,
        "user_comment": override.user_comment if override else None,
        "outcome_timestamp": item.outcome_timestamp,
        "received_at": received_at,
    }


def _within(
    query: Select[Any], column: Column[datetime], start: datetime | None, end: datetime | None
) -> Select[Any]:
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


def _topic_report(
    topic: str, shown: int, outcomes: Counter[str], reasons: Counter[str] | None
) -> TopicReport:
    accepted, overridden = outcomes["accepted"], outcomes["overridden"]
    decided = accepted + overridden
    return TopicReport(
        topic=topic,
        shown=shown,
        accepted=accepted,
        overridden=overridden,
        override_rate=overridden / decided if decided else None,
        override_reasons=sorted((reasons or Counter()).items(), key=lambda item: (-item[1], item[0])),
    )
