"""A deadline on the database work a request waits for: the database is never allowed to hold a request.

Server-side timeouts cannot bound everything: a PostgreSQL that is frozen (stopped, or its host gone
without a reset) never answers, and no libpq setting ends a query already sent to it. So the work runs on
a short-lived daemon thread and the request waits for it only until the deadline; a thread that is still
stuck then holds one of a few slots, never the request, and ends when the database answers or the
process exits. When every slot is stuck, callers wait at most the deadline for one and are refused.

A write the request has given up on must not be committed after all: the client was told nothing was
kept and will send it again. The work is handed an event, set at the deadline, to check just before it
commits; only a commit already under way when the deadline passes can still land (a duplicate row).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, InternalError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

T = TypeVar("T")

# What an unreachable, hung, read-only or full database raises (PostgreSQL's read-only transaction is an
# InternalError); anything else is a fault of ours and must not be retried by a client forever.
OUTAGE_ERRORS = (OperationalError, InterfaceError, InternalError, PoolTimeout)


class StoreUnavailable(Exception):
    """The database did not do the work in time, or failed as an unreachable or read-only one does."""


class StoreDeadline:
    """Runs database work for request threads, each call bounded by ``seconds``; thread-safe."""

    def __init__(self, seconds: float, concurrent: int = 8) -> None:
        self.seconds = seconds
        self._slots = threading.BoundedSemaphore(concurrent)

    def run(self, work: Callable[[threading.Event], T]) -> T:
        """``work(abandoned)``'s result, or ``StoreUnavailable`` when it fails as an outage does or runs past
        the deadline; ``abandoned`` is set then, and ``work`` should roll back rather than commit."""
        deadline = time.monotonic() + self.seconds
        if not self._slots.acquire(timeout=self.seconds):
            raise StoreUnavailable("every database slot is held by work that has not finished")
        done, abandoned = threading.Event(), threading.Event()
        outcome: list[T] = []
        failure: list[BaseException] = []

        def attempt() -> None:
            try:
                outcome.append(work(abandoned))
            except BaseException as exc:  # handed to the waiting request thread below
                failure.append(exc)
            finally:
                self._slots.release()
                done.set()

        threading.Thread(target=attempt, name="store-deadline", daemon=True).start()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            abandoned.set()
            raise StoreUnavailable(f"the database did not answer within {self.seconds:g} s")
        if failure:
            if isinstance(failure[0], OUTAGE_ERRORS):
                raise StoreUnavailable(type(failure[0]).__name__) from failure[0]
            raise failure[0]
        return outcome[0]


def give_up_if(abandoned: threading.Event | None) -> None:
    """Inside a transaction, just before its commit: roll back a write its request no longer waits for."""
    if abandoned is not None and abandoned.is_set():
        raise StoreUnavailable("the request stopped waiting; rolled back")
