"""The JWT replay cache: each ``(iss, jti)`` is accepted once while its token can still be used.

It lives in the feedback store's database, not in a worker's memory, so it holds across gunicorn workers
and across instances behind a load balancer: a token accepted by one is refused by every other. Claiming
a jti is one ``INSERT ... ON CONFLICT DO NOTHING`` on the primary key; the database decides the race
between two workers presenting the same token at the same moment, and exactly one of them wins. Rows are
kept until the token has expired (``exp`` plus the allowed clock skew); expired rows are purged now and
then by whichever worker notices first.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, Engine, MetaData, String, Table, delete
from sqlalchemy.dialects import postgresql, sqlite

from .feedback_store import _database_is_locked, _lost_table_creation_race, _UtcDateTime, _with_retries

_PURGE_EVERY_SECONDS = 60.0
MAX_JTI_LENGTH = 255

metadata = MetaData()

jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("issuer", String(512), primary_key=True),
    Column("jti", String(MAX_JTI_LENGTH), primary_key=True),
    Column("expires_at", _UtcDateTime, nullable=False, index=True),
)


class ReplayCache:
    """Safe to share between threads; one per process is enough."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._claim = (
            insert(jwt_replay)
            .on_conflict_do_nothing(index_elements=[jwt_replay.c.issuer, jwt_replay.c.jti])
            .returning(jwt_replay.c.jti)  # a row back only when it was inserted (rowcount is unreliable here)
        )
        _with_retries(lambda: metadata.create_all(engine), _lost_table_creation_race)
        engine.dispose()  # no connection survives into forked workers
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def claim(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """True the first time ``(issuer, jti)`` is presented, False on every later try (a replay)."""
        self._purge_now_and_then()
        inserted = False

        def insert() -> None:
            nonlocal inserted
            with self._engine.begin() as connection:
                row = connection.execute(
                    self._claim, {"issuer": issuer, "jti": jti, "expires_at": expires_at}
                ).first()
                inserted = row is not None

        _with_retries(insert, _database_is_locked)
        return inserted

    def purge(self, now: datetime | None = None) -> int:
        """Delete the rows of tokens that have expired; return how many."""
        now = now or datetime.now(UTC)
        deleted = 0

        def run() -> None:
            nonlocal deleted
            with self._engine.begin() as connection:
                deleted = connection.execute(delete(jwt_replay).where(jwt_replay.c.expires_at < now)).rowcount

        _with_retries(run, _database_is_locked)
        return deleted

    def _purge_now_and_then(self) -> None:
        with self._lock:
            if time.monotonic() < self._next_purge:
                return
            self._next_purge = time.monotonic() + _PURGE_EVERY_SECONDS
        self.purge()


def expiry(exp: int, leeway_seconds: int) -> datetime:
    """When a token with this ``exp`` stops being acceptable, and its row may go."""
    return datetime.fromtimestamp(exp, UTC) + timedelta(seconds=leeway_seconds)
