"""Shared pytest fixtures: a fresh app per test on a temporary SQLite file, the content loaded once, and
``evaluate`` to run a named patient through the pipeline as of the fixtures' date (no HTTP)."""

from __future__ import annotations

import json
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from cds_service import Settings, create_app
from cds_service import content as content_module
from cds_service.cards import Card, CdsResponse
from cds_service.facts import utc_today
from cds_service.fixtures import FIXTURE_DATE, hook_request, patient_resources, rolled_to
from cds_service.hook_request import HOOK_REQUEST
from cds_service.pipeline import Runtime, run
from cds_service.rules import load_rules
from cds_service.services import SERVICES
from tests.auth_helpers import MINTED
from tests.log_checks import assert_nothing_secret_logged

SERVICE_FOR_HOOK = {s.hook: s for s in SERVICES}


@pytest.fixture(autouse=True)
def no_secret_in_any_log(caplog):
    """Every test, whatever it runs, leaves no token it minted and no patient marker in any log record."""
    MINTED.clear()
    caplog.set_level(logging.DEBUG)
    yield
    assert_nothing_secret_logged(caplog.records, *MINTED)


@pytest.fixture(scope="session")
def content() -> content_module.Content:
    return content_module.load(Settings().content_dir, load_rules())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}",
        fhir_read_timeout=2.0,
        patient_key_secret_file=tmp_path / "patient-key.secret",
    )


@pytest.fixture
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def runtime(content) -> Runtime:
    return Runtime(Settings(), content, requests.Session(), ThreadPoolExecutor(max_workers=8))


def evaluator(runtime: Runtime, bundled: bool):
    """evaluate(hook, patient, orders=[...], as_of=...) -> list of cards, through the real pipeline."""

    def _evaluate(
        hook: str, patient: str, orders: list[str] | None = None, *, as_of: date = FIXTURE_DATE,
        prefetch_keys: set[str] | None = None,
    ) -> list[Card]:  # fmt: skip
        body = hook_request(hook, patient, orders, prefetch_keys)
        request = HOOK_REQUEST.validate_python(body)
        response: CdsResponse = run(SERVICE_FOR_HOOK[hook], request, runtime, as_of, bundled=bundled)
        return response.cards

    return _evaluate


@pytest.fixture
def evaluate(runtime: Runtime):
    """The cards a clinician reads (bundled); tests/rules/ overrides it with every rule's own cards."""
    return evaluator(runtime, bundled=True)


def topics(cards: list[Card]) -> list[str]:
    return sorted(c.topic for c in cards)


def only(cards: list[Card], topic: str) -> Card:
    found = [c for c in cards if c.topic == topic]
    assert len(found) == 1, f"expected one {topic} card, got {[c.topic for c in cards]}"
    return found[0]


TEST_DATABASE_URL = os.environ.get("CDS_TEST_DATABASE_URL")


class FakeFhirServer:
    """A FHIR server mocked with ``responses``: reads and searches answered from a fixture patient."""

    def __init__(self, mock: responses.RequestsMock):
        self.mock = mock
        self.calls: list[requests.PreparedRequest] = []

    def serve_patient(self, base: str, patient_id: str, source: str = "sle-baseline", anc: float | None = None,
                      fail: dict[str, Any] | None = None, extra_pages: dict[str, int] | None = None) -> None:  # fmt: skip
        """Answer every query under ``base`` from fixture ``source`` (its Patient renamed ``patient_id``).

        ``fail`` maps a resource type to what its query gets instead: an int status, an exception
        instance, or a string body. ``extra_pages`` gives a search that many more (empty) pages."""
        resources = rolled_to(patient_resources(source), utc_today())
        for resource in resources:
            if resource["resourceType"] == "Patient":
                resource["id"] = patient_id
            for element in ("subject", "patient"):  # the renamed patient's own resources stay theirs
                if isinstance(resource.get(element), dict):
                    resource[element] = {"reference": f"Patient/{patient_id}"}
            if anc is not None and resource.get("id") == "anc":
                resource["valueQuantity"]["value"] = anc
        by_type: dict[str, list[dict]] = {}
        for resource in resources:
            by_type.setdefault(resource["resourceType"], []).append(resource)
        by_type.setdefault("MedicationRequest", []).extend(by_type.pop("Medication", []))
        failures = fail or {}

        def answer(request: requests.PreparedRequest):
            self.calls.append(request)
            kind = request.path_url.removeprefix(urlsplit(base).path).strip("/").split("/")[0].split("?")[0]
            if kind in failures:
                outcome = failures[kind]
                if isinstance(outcome, Exception):
                    raise outcome
                if isinstance(outcome, int):
                    return outcome, {}, json.dumps({"resourceType": "OperationOutcome"})
                return 200, {}, outcome
            if kind == "Patient":
                return 200, {}, json.dumps(by_type["Patient"][0])
            page = int(parse_qs(urlsplit(request.url).query).get("page", ["0"])[0])
            entries = [{"resource": r} for r in by_type.get(kind, [])] if page == 0 else []
            bundle = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
            if page < (extra_pages or {}).get(kind, 0):
                bundle["link"] = [{"relation": "next", "url": f"{base}/{kind}?_sort=-date&page={page + 1}"}]
            return 200, {}, json.dumps(bundle)

        self.mock.add_callback(responses.GET, re.compile(re.escape(base) + r"/.*"), callback=answer)


@pytest.fixture
def fhir_server():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeFhirServer(mock)
