"""Databases and sample data for the feedback store and report tests.

Every store test runs against a fresh SQLite file, and also against PostgreSQL when
``CDS_TEST_DATABASE_URL`` names a server (e.g. ``postgresql+psycopg://postgres@127.0.0.1/test``).
Each PostgreSQL test gets its own schema, dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from cds_service.feedback import FeedbackRequest, ShownCard
from cds_service.feedback_store import FeedbackStore

POSTGRES_URL = os.environ.get("CDS_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
SERVICE_ID = "baricitinib-sle"
# The store's deadline for tests of many writers at once, which check that none is lost, not how long
# one waits: past the deadline a write is refused (503 and retried), so a loaded machine must not reach it.
CONTENTION_TIMEOUT = 30.0


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """URL of an empty database; the SQLite file sits in a folder that does not exist yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'instance' / 'cds.sqlite3'}"
        return
    with postgres_schema() as url:
        yield url


# For the tests of faults only PostgreSQL has (a host that hangs or goes away): they run where the
# project's PostgreSQL is (CI sets CDS_TEST_DATABASE_URL), and say why not elsewhere.
needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="needs CDS_TEST_DATABASE_URL (a PostgreSQL server)")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a fresh schema on the test PostgreSQL, dropped afterwards."""
    assert POSTGRES_URL
    server = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    schema = f"test_{uuid.uuid4().hex}"
    admin = create_engine(server, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield server.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[FeedbackStore]:
    store = FeedbackStore(store_url)
    yield store
    store.dispose()


def read_rows(url: str, table: Table) -> list[dict[str, Any]]:
    """Every row of ``table``, read through a connection of its own, as the report would see it."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(select(table)).mappings()]
    finally:
        engine.dispose()


def shown_card(topic: str, at: datetime, indicator: str = "warning") -> ShownCard:
    return ShownCard(uuid=str(uuid.uuid4()), topic=topic, indicator=indicator, shown_at=at)


def accepted(card: str, at: datetime, *suggestions: str) -> dict[str, Any]:
    """A feedback item as a CDS Client sends it (camelCase JSON)."""
    return {
        "card": card,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion} for suggestion in suggestions],
        "outcomeTimestamp": at.isoformat(),
    }


def overridden(
    card: str, at: datetime, code: str | None = None, display: str | None = None, comment: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"card": card, "outcome": "overridden", "outcomeTimestamp": at.isoformat()}
    if code or comment:
        item["overrideReason"] = {}
        if code:
            reason = {"code": code, "system": "urn:test:reasons", "display": display}
            item["overrideReason"]["reason"] = reason
        if comment:
            item["overrideReason"]["userComment"] = comment
    return item


def feedback_request(*items: dict[str, Any]) -> FeedbackRequest:
    return FeedbackRequest.model_validate({"feedback": list(items)})


def write_from_process(url: str, start_together: Any, requests: int, at: datetime) -> None:
    """Body of one worker process: open the store (racing the others to create the tables), then
    log ``requests`` cards, each with one override."""
    start_together.wait(timeout=30)
    store = FeedbackStore(url, timeout=CONTENTION_TIMEOUT)
    try:
        for _ in range(requests):
            card = shown_card("process", at)
            store.record_cards(SERVICE_ID, [card])
            store.record_feedback(SERVICE_ID, feedback_request(overridden(card.uuid, at, code="busy")))
    finally:
        store.dispose()


# --- faults ---------------------------------------------------------------------------------------


@contextmanager
def read_only(database: Path) -> Iterator[None]:
    """Make a SQLite file (and its WAL files) read-only for the service, as a wrong mount or owner does.

    File modes do not stop root, so as root the files are made immutable (chattr +i), which does; where
    that is not possible either (no CAP_LINUX_IMMUTABLE, a file system without attributes) the test is
    skipped, since there is then no way to make a file read-only for this process.
    """
    files = [p for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm")) if p.exists()]
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in files}
        for path in files:
            path.chmod(0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    made = []
    try:
        for path in files:
            done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, timeout=10)
            if done.returncode != 0:
                pytest.skip(f"as root, and chattr +i failed ({done.stderr.strip()}): no read-only file")
            made.append(path)
        yield
    finally:
        for path in made:
            subprocess.run(["chattr", "-i", str(path)], check=True, timeout=10)


class TcpProxy:
    """A local TCP relay to ``target`` that a test can freeze or shut, as a PostgreSQL host that hangs
    (SIGSTOP, a dropped route) or goes away (a closed port), and then bring back on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._relaying = threading.Event()
        self._relaying.set()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._serve()

    def freeze(self) -> None:
        """Keep every connection open and accept new ones, but pass no byte either way."""
        self._relaying.clear()

    def thaw(self) -> None:
        self._relaying.set()

    def shut(self) -> None:
        """Close the port and every connection through it: connections are refused from now on."""
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                with suppress(OSError):  # shutdown, not close alone, wakes a thread blocked on the socket
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def reopen(self) -> None:
        """Listen again on the same port."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._serve()

    def close(self) -> None:
        self.thaw()
        self.shut()

    def _serve(self) -> None:
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._relaying.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            source.close()
            sink.close()


@pytest.fixture
def postgres_proxy() -> Iterator[tuple[str, TcpProxy]]:
    """A fresh PostgreSQL schema's URL rewritten to pass through a ``TcpProxy`` (tests marked ``needs_postgres``)."""
    with postgres_schema() as store_url:
        url = make_url(store_url)
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        try:
            yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
        finally:
            proxy.close()


@contextmanager
def sqlite_write_lock(database: Path) -> Iterator[None]:
    """Another writer's long transaction on the file: every other writer waits for its lock."""
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()
