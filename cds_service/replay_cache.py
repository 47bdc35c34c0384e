"""The JWT replay cache: each ``(iss, jti)`` is accepted once while its token can still be used.

It lives in the feedback store's database, not in a worker's memory, so it holds across gunicorn workers
and across instances behind a load balancer: a token accepted by one is refused by every other. Claiming
a jti is one ``INSERT ... ON CONFLICT DO NOTHING`` on the primary key; the database decides the race
between two workers presenting the same token at the same moment, and exactly one of them wins. Rows are
kept until the token has expired (``exp`` plus the allowed clock skew); expired rows are purged now and
then by whichever worker notices first.

When that database cannot be reached in time, each worker falls back to remembering the jti values it
accepted in its own memory, until their tokens expire (``MemoryReplayCache``), and retries the database
``RETRY_STORE_AFTER_SECONDS`` later. A token replayed to another worker or instance during an outage is
then let in, within its short lifetime; refusing instead would stop every card, the clinical decision
support, because an auxiliary store is down. ``memory_fallback=False`` refuses (``StoreUnavailable``).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, Engine, MetaData, String, Table, delete
from sqlalchemy.dialects import postgresql, sqlite

from . import metrics
from .feedback_store import (
    DEFAULT_TIMEOUT_SECONDS,
    _database_is_locked,
    _lost_table_creation_race,
    _UtcDateTime,
    _with_retries,
    bound_statements,
)
from .store_deadline import StoreDeadline, StoreUnavailable, give_up_if

log = logging.getLogger(__name__)

_PURGE_EVERY_SECONDS = 60.0
MAX_JTI_LENGTH = 255
RETRY_STORE_AFTER_SECONDS = 5.0
# Tokens one worker accepts within a token lifetime during an outage (5 minutes at 150 calls/s);
# past it calls are refused rather than let the memory grow.
MEMORY_FALLBACK_CAPACITY = 50_000

metadata = MetaData()

jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("issuer", String(512), primary_key=True),
    Column("jti", String(MAX_JTI_LENGTH), primary_key=True),
    Column("expires_at", _UtcDateTime, nullable=False, index=True),
)


class MemoryReplayCache:
    """The jti values one process accepted while the shared cache was out of reach; thread-safe."""

    def __init__(self, capacity: int = MEMORY_FALLBACK_CAPACITY) -> None:
        self._capacity = capacity
        self._expiries: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def seen(self, issuer: str, jti: str) -> bool:
        """Whether ``(issuer, jti)`` was accepted here and its token has not expired."""
        with self._lock:
            expires_at = self._expiries.get((issuer, jti))
            return expires_at is not None and expires_at >= datetime.now(UTC)

    def claim(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """As ``ReplayCache.claim``; ``StoreUnavailable`` when full of live tokens."""
        now = datetime.now(UTC)
        with self._lock:
            known = self._expiries.get((issuer, jti))
            if known is not None and known >= now:
                return False
            if len(self._expiries) >= self._capacity:
                self._expiries = {key: at for key, at in self._expiries.items() if at >= now}
                if len(self._expiries) >= self._capacity:
                    raise StoreUnavailable("the in-memory replay cache is full")
            self._expiries[(issuer, jti)] = expires_at
            return True


class ReplayCache:
    """Safe to share between threads; one per process is enough."""

    def __init__(
        self, engine: Engine, *, timeout: float = DEFAULT_TIMEOUT_SECONDS, memory_fallback: bool = True
    ) -> None:
        """``timeout``: longest a call waits for the database; ``memory_fallback``: see the module."""
        self._engine = engine
        self._deadline = StoreDeadline(timeout)
        self._memory = MemoryReplayCache() if memory_fallback else None
        self._store_retry_at = 0.0
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
        """True the first time ``(issuer, jti)`` is presented, False on every later try (a replay).

        ``StoreUnavailable`` when the database is out of reach and there is no memory fallback.
        """
        if self._memory is not None and self._memory.seen(issuer, jti):
            return False  # accepted here during an outage: the database never heard of it
        if self._memory is not None and time.monotonic() < self._store_retry_at:
            return self._claim_in_memory(self._memory, issuer, jti, expires_at)
        try:
            return self._deadline.run(
                lambda abandoned: self._claim_in_store(issuer, jti, expires_at, abandoned)
            )
        except StoreUnavailable as exc:
            metrics.count_store_error("replay_claim")
            if self._memory is None:
                raise
            self._store_retry_at = time.monotonic() + RETRY_STORE_AFTER_SECONDS
            log.error(
                "replay cache unreachable (%s): jti values checked in this worker's memory for %g s",
                exc,
                RETRY_STORE_AFTER_SECONDS,
            )
            return self._claim_in_memory(self._memory, issuer, jti, expires_at)

    def _claim_in_memory(
        self, memory: MemoryReplayCache, issuer: str, jti: str, expires_at: datetime
    ) -> bool:
        metrics.count_replay_memory_claim()
        return memory.claim(issuer, jti, expires_at)

    def _claim_in_store(
        self, issuer: str, jti: str, expires_at: datetime, abandoned: threading.Event
    ) -> bool:
        self._purge_now_and_then()
        inserted = False

        def insert() -> None:
            nonlocal inserted
            with self._engine.begin() as connection:
                bound_statements(connection, self._deadline.seconds)
                row = connection.execute(
                    self._claim, {"issuer": issuer, "jti": jti, "expires_at": expires_at}
                ).first()
                inserted = row is not None
                give_up_if(abandoned)  # the caller has decided in memory meanwhile

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
