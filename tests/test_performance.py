"""Properties behind the benchmark (``python -m bench``), checked without timing anything: the content and
the rules are loaded once at start-up, never per call, and a patient with years of labs meets no wall."""

from __future__ import annotations

import tomllib
import uuid

import orjson
import pytest

from bench.patients import hook_request as generated_request
from cds_service import Settings
from cds_service import content as content_module
from cds_service import rules as rules_module
from cds_service.facts import utc_today
from cds_service.fixtures import hook_request, rolled_to
from cds_service.services import SERVICES


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{what} ran during a call; it belongs to start-up")

    return refuse


def test_content_and_rules_are_loaded_at_start_up_and_never_per_call(client, monkeypatch):
    monkeypatch.setattr(content_module, "load", _refuse("content.load"))
    monkeypatch.setattr(content_module, "_read_toml", _refuse("reading a cards/ file"))
    monkeypatch.setattr(tomllib, "load", _refuse("tomllib.load"))
    monkeypatch.setattr(tomllib, "loads", _refuse("tomllib.loads"))
    monkeypatch.setattr(rules_module, "load_rules", _refuse("load_rules"))
    monkeypatch.setattr(rules_module.importlib, "import_module", _refuse("importing a rule module"))

    assert client.get("/cds-services").status_code == 200
    shown = []
    for service in SERVICES:
        orders = [] if service.hook == "patient-view" else ["baricitinib-4mg"]
        patient = "sle-on-baricitinib" if service.hook == "patient-view" else "sle-baseline"
        body = rolled_to(hook_request(service.hook, patient, orders), utc_today())
        response = client.post(f"/cds-services/{service.id}", json=body)
        assert response.status_code == 200, response.get_json()
        shown += [(service.id, card["uuid"]) for card in response.get_json()["cards"]]
    assert shown, "the calls should have shown cards"
    service_id, card = shown[0]
    feedback = {
        "feedback": [{"card": card, "outcome": "accepted", "outcomeTimestamp": "2026-11-25T10:00:00Z"}]
    }
    assert client.post(f"/cds-services/{service_id}/feedback", json=feedback).status_code == 200


def test_the_default_body_limit_admits_50000_lab_results_and_stays_below_60_mb(client, content):
    limit = Settings().max_body_bytes
    assert limit < 60_000_000, "the default body limit must stay below 60 MB"
    body = orjson.dumps(generated_request(50_000, content, utc_today()) | {"hookInstance": str(uuid.uuid4())})
    assert len(body) <= limit
    response = client.post(
        "/cds-services/baricitinib-order-select", data=body, content_type="application/json"
    )
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("size", [100, 1_000])
def test_generated_patients_are_valid_r4b(content, size):
    """The benchmark's baseline validates every resource; the generator must not make invalid ones."""
    from bench.full_parse import validate_everything

    valid, invalid = validate_everything(orjson.dumps(generated_request(size, content, utc_today())))
    assert invalid == 0 and valid > size
