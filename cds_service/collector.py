"""Python's cyclic garbage collector waits while a hook call runs.

A hook request is a tree of JSON objects: for a patient with years of labs, millions of dicts and lists,
built in one go by the parser and freed by reference counting when the call returns. While it is being
built, the collector keeps walking it, over and over: a third to a half of the time of parsing a 6 MB
body (10,000 Observations; see the README's Performance), and it makes that time vary from call to call. The tree holds no reference
cycles, so pausing the collector for the call loses nothing; whatever cycles a call does leave behind
are collected once no call is running.

Calls overlap in ``cds-service serve``'s threaded workers; the collector resumes when the last running
call returns. Under steady load, or while a call waits on a slow FHIR server, some call may always be
running: then a call that ends after the collector has waited ``MAX_PAUSE_SECONDS`` runs one collection,
so cycles are still freed at that pace.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
MAX_PAUSE_SECONDS = 10.0


class CollectorPausedDuringCalls:
    """WSGI middleware: ``gc.disable()`` while at least one request runs, then back as it was."""

    def __init__(self, app: WsgiApp):
        self.app = app
        self._lock = threading.Lock()
        self._running = 0
        self._resume = False
        self._collected_at = 0.0  # when the collector last ran, or was paused

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            if self._running == 0:
                self._resume = gc.isenabled()
                self._collected_at = time.monotonic()
                gc.disable()
            self._running += 1
        try:
            return self.app(environ, start_response)
        finally:
            collect = False
            with self._lock:
                self._running -= 1
                if self._running == 0 and self._resume:
                    gc.enable()
                elif self._resume and time.monotonic() - self._collected_at >= MAX_PAUSE_SECONDS:
                    self._collected_at = time.monotonic()
                    collect = True
            if collect:
                gc.collect()
