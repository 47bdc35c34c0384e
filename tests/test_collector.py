"""The collector pause around calls: back on when the last call ends; under calls that never stop
overlapping (a threaded server under load, a call waiting on a slow FHIR server), still run now and then."""

from __future__ import annotations

import gc
import threading

import pytest

from cds_service import collector
from cds_service.collector import CollectorPausedDuringCalls


class HeldCalls:
    """A WSGI app whose calls each wait until the test lets them go."""

    def __init__(self) -> None:
        self.release: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}

    def __call__(self, environ, start_response):
        name = environ["name"]
        self.started[name].set()
        self.release[name].wait(timeout=10)
        return [b"ok"]


def start(app: CollectorPausedDuringCalls, held: HeldCalls, name: str) -> threading.Thread:
    held.release[name], held.started[name] = threading.Event(), threading.Event()
    call = threading.Thread(target=app, args=({"name": name}, None))
    call.start()
    assert held.started[name].wait(timeout=10)
    return call


@pytest.fixture
def collections(monkeypatch) -> list[int]:
    ran: list[int] = []
    monkeypatch.setattr(collector.gc, "collect", lambda *args: ran.append(1) or 0)
    return ran


def test_the_collector_waits_while_calls_overlap_and_resumes_after_the_last(collections):
    held = HeldCalls()
    app = CollectorPausedDuringCalls(held)
    first, second = start(app, held, "first"), start(app, held, "second")
    assert not gc.isenabled()
    held.release["first"].set()
    first.join()
    assert not gc.isenabled() and collections == []  # the second call still runs, well inside the pause bound
    held.release["second"].set()
    second.join()
    assert gc.isenabled() and collections == []


def test_calls_that_never_stop_overlapping_still_let_the_collector_run(collections, monkeypatch):
    monkeypatch.setattr(collector, "MAX_PAUSE_SECONDS", 0.0)
    held = HeldCalls()
    app = CollectorPausedDuringCalls(held)
    waiting = start(app, held, "waiting on a slow FHIR server")
    ordinary = start(app, held, "ordinary")
    held.release["ordinary"].set()
    ordinary.join()
    assert collections == [1] and not gc.isenabled()
    held.release["waiting on a slow FHIR server"].set()
    waiting.join()
    assert gc.isenabled()
