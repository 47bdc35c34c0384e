"""Databases and sample data for the feedback store and report tests.

Every store test runs against a fresh SQLite file, and also against PostgreSQL when
``CDS_TEST_DATABASE_URL`` names a server (e.g. ``postgresql+psycopg://postgres@127.0.0.1/test``).
Each PostgreSQL test gets its own schema, dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
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


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """URL of an empty database; the SQLite file sits in a folder that does not exist yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'instance' / 'cds.sqlite3'}"
        return
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
    store = FeedbackStore(url)
    try:
        for _ in range(requests):
            card = shown_card("process", at)
            store.record_cards(SERVICE_ID, [card])
            store.record_feedback(SERVICE_ID, feedback_request(overridden(card.uuid, at, code="busy")))
    finally:
        store.dispose()
