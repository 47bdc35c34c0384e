"""The card log written behind the clinician's back: a hook call hands its shown cards to a queue and
answers at once; one writer thread per process stores them.

The log feeds the alert-fatigue report, which can miss a few rows; a clinician cannot miss a card. So
when the queue is full (the database is slow or down) a call's cards are dropped, never waited for, and
counted (``cds_card_log_rows_not_written_total``), as are the rows of a write that fails. At exit the
writer is given ``drain_seconds`` to store what is queued; what is left is counted as not written.

The thread is started on first use in each process, not at start-up: gunicorn loads the app once and
forks its workers, and a thread does not survive a fork.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence

from . import metrics
from .feedback import ShownCard

log = logging.getLogger(__name__)

Batch = tuple[str, Sequence[ShownCard]]
_STOP = None


class CardLogWriter:
    """Thread-safe; ``write(service_id, cards)`` is the store's synchronous card-log write."""

    def __init__(
        self, write: Callable[[str, Sequence[ShownCard]], None], capacity: int, drain_seconds: float
    ) -> None:
        self._write = write
        self._capacity = capacity
        self._drain_seconds = drain_seconds
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.Queue[Batch | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None

    def submit(self, service_id: str, cards: Sequence[ShownCard]) -> None:
        """Queue ``cards`` for the log without waiting; drop and count them when the queue is full."""
        if not cards:
            return
        self._start_in_this_process()
        try:
            self._queue.put_nowait((service_id, cards))
        except queue.Full:
            metrics.count_rows_not_written("queue_full", len(cards))

    def close(self) -> None:
        """Store what is queued, waiting at most ``drain_seconds``; count what is left as not written."""
        with self._lock:
            thread, self._thread, self._pid = self._thread, None, None
        if thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=self._drain_seconds)
        except queue.Full:
            pass
        thread.join(self._drain_seconds)
        left = 0
        while True:
            try:
                batch = self._queue.get_nowait()
            except queue.Empty:
                break
            left += len(batch[1]) if batch is not _STOP else 0
        if left:
            metrics.count_rows_not_written("shutdown", left)
            log.warning("card log: %d rows not written at exit", left)

    def _start_in_this_process(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            # After a fork the parent's queue may hold batches, and its lock may be held, by threads
            # that do not exist here: start afresh.
            self._queue = queue.Queue(self._capacity)
            self._thread = threading.Thread(
                target=self._run, args=(self._queue,), name="card-log", daemon=True
            )
            self._thread.start()
            self._pid = pid
        atexit.register(self.close)

    def _run(self, batches: queue.Queue[Batch | None]) -> None:
        while (batch := batches.get()) is not _STOP:
            service_id, cards = batch
            try:
                self._write(service_id, cards)
            except Exception as exc:  # the log is best-effort: whatever failed, the next batch is tried
                metrics.count_store_error("card_log_write")
                metrics.count_rows_not_written("store_error", len(cards))
                log.error("card log: %d rows not written (%s)", len(cards), type(exc).__name__)
