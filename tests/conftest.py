"""Shared pytest fixtures: a fresh app per test on a temporary SQLite file, the content loaded once, and
``evaluate`` to run a named patient through the pipeline as of the fixtures' date (no HTTP)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
import requests

from cds_service import Settings, create_app
from cds_service import content as content_module
from cds_service.cards import Card, CdsResponse
from cds_service.fixtures import FIXTURE_DATE, hook_request
from cds_service.hook_request import HOOK_REQUEST
from cds_service.pipeline import Runtime, run
from cds_service.rules import load_rules
from cds_service.services import SERVICES

SERVICE_FOR_HOOK = {s.hook: s for s in SERVICES}


@pytest.fixture(scope="session")
def content() -> content_module.Content:
    return content_module.load(Settings().content_dir, load_rules())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}", fhir_read_timeout=2.0)


@pytest.fixture
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def runtime(content) -> Runtime:
    return Runtime(Settings(), content, requests.Session(), ThreadPoolExecutor(max_workers=8))


@pytest.fixture
def evaluate(runtime: Runtime):
    """evaluate(hook, patient, orders=[...], as_of=...) -> list of cards, through the real pipeline."""

    def _evaluate(
        hook: str, patient: str, orders: list[str] | None = None, *, as_of: date = FIXTURE_DATE,
        prefetch_keys: set[str] | None = None,
    ) -> list[Card]:  # fmt: skip
        body = hook_request(hook, patient, orders, prefetch_keys)
        request = HOOK_REQUEST.validate_python(body)
        response: CdsResponse = run(SERVICE_FOR_HOOK[hook], request, runtime, as_of)
        return response.cards

    return _evaluate


def topics(cards: list[Card]) -> list[str]:
    return sorted(c.topic for c in cards)


def only(cards: list[Card], topic: str) -> Card:
    found = [c for c in cards if c.topic == topic]
    assert len(found) == 1, f"expected one {topic} card, got {[c.topic for c in cards]}"
    return found[0]


TEST_DATABASE_URL = os.environ.get("CDS_TEST_DATABASE_URL")
