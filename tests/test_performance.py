"""Properties behind the benchmark (``python -m bench``), checked without timing anything: the content and
the rules are loaded once at start-up, never per call, and a patient with years of labs meets no wall."""

from __future__ import annotations

import re
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


def test_the_benchmark_runs_and_states_each_target_it_measured(capsys):
    """A smoke run of ``python -m bench`` (one small size, no load run): it must not rot between the
    sessions that read its figures. The figures themselves are not checked: tests time nothing."""
    from bench.run import main

    assert main(["--quick", "--sizes", "100", "--skip", "fallback,rss,load"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^\| 100 \| [0-9.]+ MB \| [0-9.]+ / ", printed, re.MULTILINE), printed
    targets = printed.split("## Targets")[1]
    assert "fixed overhead (c, 100 Observations) < 5 ms" in targets
    assert "c/a at 10,000" not in targets, "a size that was not run has no verdict"


def test_a_missed_target_is_marked_as_missed():
    from bench.run import targets

    load_run = {"calls_per_s": 180.0, "p99_ms": 20.0}
    fallback = {"call_median_ms": 400.0, "query_ms": 100.0}
    rss = {"body_bytes": 10, "service_growth": 130, "json_growth": 60, "orjson_growth": 80}
    assert targets(None, fallback, rss, load_run) == [
        (
            "peak RSS growth a small multiple of the body (at most twice json.loads's)",
            "13.0 x (json.loads alone 6.0 x, orjson.loads alone 8.0 x)",
            False,
        ),
        ("fallback close to one query's latency", "400 ms vs 100 ms", False),
        ("load: >= 200 calls/s, p99 < 50 ms", "180 calls/s, p99 20.0 ms", False),
    ]
