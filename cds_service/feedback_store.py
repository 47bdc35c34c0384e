"""Durable log of the cards this service showed and of the feedback clinicians sent about them.

The log feeds the alert-fatigue report: how often each card topic is overridden, and why.
SQLite (one host, the default) and PostgreSQL (several hosts) run the same SQLAlchemy Core
code. Several gunicorn workers, each with several threads, write at once, and no write may be
lost: SQLite runs in WAL mode with a busy timeout and writes are retried while the file is
locked; PostgreSQL connections are checked before use so a restarted server costs no request.
"""

from __future__ import annotations

import functools
import json
import math
import threading
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
    bindparam,
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

from cds_service.card_log import CardLogWriter
from cds_service.feedback import (
    MAX_ACCEPTED_SUGGESTIONS,
    MAX_COMMENT_LENGTH,
    MAX_DISPLAY_LENGTH,
    MAX_ID_LENGTH,
    MAX_URI_LENGTH,
    FeedbackItem,
    FeedbackRequest,
    OverrideOnRecord,
    ShownCard,
)
from cds_service.store_deadline import StoreDeadline, give_up_if

if TYPE_CHECKING:
    from flask import Flask

    from cds_service.settings import Settings

UNKNOWN_TOPIC = "unknown"
NO_REASON_GIVEN = "no reason given"

_EXTENSION_KEY = "feedback_store"
DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_CARD_LOG_QUEUE = 1000
# Each accepted suggestion id as a JSON string: at most 6 characters per character (\u0001), 2 quotes
# and the ", " that follows; 2 brackets around the list.
_ACCEPTED_SUGGESTIONS_JSON_LENGTH = MAX_ACCEPTED_SUGGESTIONS * (6 * MAX_ID_LENGTH + 4) + 2
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
    Column("card_uuid", String(MAX_ID_LENGTH), primary_key=True),
    Column("service_id", String(MAX_ID_LENGTH), nullable=False),
    Column("topic", String(MAX_ID_LENGTH), nullable=False),
    Column("indicator", String(MAX_ID_LENGTH), nullable=False),
    Column("shown_at", _UtcDateTime, nullable=False, index=True),
    # HMAC-SHA256 of FHIR server and patient id, hex; only on cards a clinician can silence for a patient.
    Column("patient_key", String(64), index=True),
)

card_feedback = Table(
    "card_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(MAX_ID_LENGTH), nullable=False),
    Column("card_uuid", String(MAX_ID_LENGTH), nullable=False, index=True),
    Column("outcome", String(MAX_ID_LENGTH), nullable=False),
    Column(
        "accepted_suggestions",
        String(_ACCEPTED_SUGGESTIONS_JSON_LENGTH),
        comment="JSON array of accepted suggestion uuids",
    ),
    # Indexed: a silenced-card lookup starts from the few overrides with a silencing reason, not from
    # every card a patient was shown.
    Column("override_code", String(MAX_ID_LENGTH), index=True),
    Column("override_system", String(MAX_URI_LENGTH)),
    Column("override_display", String(MAX_DISPLAY_LENGTH)),
    Column("user_comment", String(MAX_COMMENT_LENGTH)),
    Column("outcome_timestamp", _UtcDateTime, nullable=False, index=True),
    Column("received_at", _UtcDateTime, nullable=False),
)

# One row, rewritten by each readiness check: a committed write is the only proof the store takes writes
# (a read-only or full SQLite file opens and reads as usual).
store_heartbeat = Table(
    "store_heartbeat",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("checked_at", _UtcDateTime, nullable=False),
)


# Whether a card of this topic was overridden for this patient with this reason since then (one row at most).
_SILENCED = (
    select(card_shown.c.topic)
    .select_from(card_feedback.join(card_shown, card_shown.c.card_uuid == card_feedback.c.card_uuid))
    .where(
        card_shown.c.patient_key == bindparam("key"),
        card_shown.c.topic == bindparam("topic"),
        card_feedback.c.outcome == "overridden",
        card_feedback.c.override_code == bindparam("code"),
        or_(card_feedback.c.override_system == bindparam("system"), card_feedback.c.override_system.is_(None)),
        card_feedback.c.outcome_timestamp >= bindparam("since", type_=_UtcDateTime()),
    )
    .limit(1)
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

    def __init__(
        self,
        database_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        card_log_queue: int = DEFAULT_CARD_LOG_QUEUE,
    ) -> None:
        """``timeout`` bounds each write a request waits for (see ``deadline``); ``card_log_queue`` is how
        many hook calls' cards may wait for the database before more are dropped."""
        self._engine = _create_engine(database_url, timeout)
        self.deadline = StoreDeadline(timeout)
        self.card_log = CardLogWriter(self.record_cards, card_log_queue, drain_seconds=timeout)
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        self._insert_shown_card = insert(card_shown).on_conflict_do_nothing(
            index_elements=[card_shown.c.card_uuid]
        )
        beat = insert(store_heartbeat)
        self._beat = beat.on_conflict_do_update(
            index_elements=[store_heartbeat.c.id], set_={"checked_at": beat.excluded.checked_at}
        )
        _with_retries(lambda: metadata.create_all(self._engine), _lost_table_creation_race)
        _with_retries(self._add_silencing_columns, _lost_table_creation_race)
        # Leave no open connection behind, so a server that forks after start-up does not
        # hand the same connection to several workers.
        self._engine.dispose()

    @property
    def engine(self) -> Engine:
        """The store's engine, shared by the other tables kept in the same database (the JWT replay cache)."""
        return self._engine

    def _add_silencing_columns(self) -> None:
        """A card log created before cards could be silenced gains the column and indexes (create_all adds
        tables, not columns or indexes to a table that exists)."""
        with self._engine.begin() as connection:
            if "patient_key" not in {c["name"] for c in inspect(connection).get_columns("card_shown")}:
                connection.execute(text("ALTER TABLE card_shown ADD COLUMN patient_key VARCHAR(64)"))
            connection.execute(text("CREATE INDEX IF NOT EXISTS ix_card_shown_patient_key ON card_shown (patient_key)"))
            connection.execute(
                text("CREATE INDEX IF NOT EXISTS ix_card_feedback_override_code ON card_feedback (override_code)")
            )

    def silenced_topics(self, patient_key: str, reasons: Sequence[OverrideOnRecord]) -> set[str]:
        """The topics among ``reasons`` whose card a clinician overrode for this patient with that reason,
        at or after its ``since``. Within the store's deadline: ``StoreUnavailable`` when it cannot answer."""
        if not reasons:
            return set()
        rows = [
            {"key": patient_key, "topic": r.topic, "code": r.code, "system": r.system, "since": r.since}
            for r in reasons
        ]

        def look_up(_abandoned: threading.Event) -> set[str]:
            with self._engine.connect() as connection:
                return {topic for row in rows for topic in connection.execute(_SILENCED, row).scalars()}

        # A SQLite read in WAL mode does not wait for writers, and the busy timeout bounds any other wait:
        # it needs no thread of its own, which would cost more than the read (it runs at every new start).
        if self._engine.dialect.name == "sqlite":
            return look_up(threading.Event())
        return self.deadline.run(look_up)

    def check_writable(self) -> None:
        """Commit one write, within the deadline; ``StoreUnavailable`` when the store cannot take it."""

        def beat(_abandoned: threading.Event) -> None:
            with self._engine.begin() as connection:
                bound_statements(connection, self.deadline.seconds)
                connection.execute(self._beat, {"id": 1, "checked_at": datetime.now(UTC)})

        self.deadline.run(beat)

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
        self.deadline.run(lambda abandoned: self._write(card_feedback.insert(), rows, abandoned))
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
        """Store the queued card-log rows (within the deadline), then close every pooled connection."""
        self.card_log.close()
        self._engine.dispose()

    def _write(
        self, statement: Any, rows: list[dict[str, Any]], abandoned: threading.Event | None = None
    ) -> None:
        """Insert ``rows`` in one transaction, retrying while another SQLite writer holds the lock; not
        committed once ``abandoned`` is set (see ``StoreDeadline``)."""

        def insert() -> None:
            with self._engine.begin() as connection:
                bound_statements(connection, self.deadline.seconds)
                connection.execute(statement, rows)
                give_up_if(abandoned)

        _with_retries(insert, _database_is_locked)


def init_app(app: Flask, settings: Settings) -> FeedbackStore:
    """Open the store named by ``settings.database_url`` for ``app``; see ``get_store``."""
    store = FeedbackStore(
        settings.database_url, timeout=settings.store_timeout, card_log_queue=settings.card_log_queue
    )
    app.extensions[_EXTENSION_KEY] = store
    return store


def get_store(app: Flask) -> FeedbackStore:
    """The store ``init_app`` opened for ``app``."""
    store: FeedbackStore = app.extensions[_EXTENSION_KEY]
    return store


def bound_statements(connection: Any, seconds: float) -> None:
    """Within this transaction, let PostgreSQL end a statement, or a wait for a lock, after ``seconds``.

    Per transaction, not per connection: the report's long reads share the engine and must not be cut.
    SQLite's waits are bounded by its busy timeout.
    """
    if connection.dialect.name == "postgresql":
        milliseconds = str(max(1, round(seconds * 1000)))
        connection.execute(
            text("SELECT set_config('statement_timeout', :ms, true), set_config('lock_timeout', :ms, true)"),
            {"ms": milliseconds},
        )


def _create_engine(database_url: str, timeout: float) -> Engine:
    # hide_parameters: the values written (a caller's jti, feedback fields) stay out of SQLAlchemy's
    # statement log at any level and out of its error messages, which the service may log.
    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend == "postgresql":
        # libpq counts connect_timeout in whole seconds and treats less than 2 as 2; pool_timeout bounds
        # the wait for a pooled connection when every one is busy.
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_timeout=timeout,
            hide_parameters=True,
            connect_args={"connect_timeout": max(2, math.ceil(timeout))},
        )
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_timeout=timeout, hide_parameters=True)
        # Half the deadline: a write waiting for another writer gives up (and is retried) before the
        # request waiting for it does.
        busy_timeout_ms = max(1, round(timeout * 500))
        event.listen(engine, "connect", functools.partial(_configure_sqlite_connection, busy_timeout_ms))
        event.listen(engine, "handle_error", _drop_connection_opened_read_only)
        return engine
    raise ValueError(
        f"unsupported database {url.render_as_string(hide_password=True)}: use sqlite:/// or postgresql://"
    )


def _configure_sqlite_connection(
    busy_timeout_ms: int, dbapi_connection: Any, _connection_record: Any
) -> None:
    """Let readers and writers from many processes share the file without failing at once.

    The busy timeout is set first so that switching to WAL also waits for a lock.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def _drop_connection_opened_read_only(context: Any) -> None:
    """A connection that found the file read-only (or met an I/O error) stays that way for its life, so
    it is thrown away: the next one opens the file afresh and works once the file is writable again."""
    name = getattr(context.original_exception, "sqlite_errorname", "")
    if name.startswith(("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")):
        context.is_disconnect = True


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
        "accepted_suggestions": None
        if suggestions is None
        else json.dumps([s.id for s in suggestions], ensure_ascii=False),  # fits its column
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
