"""GET /metrics after real calls: what operators alert on, with no patient data in any label."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cds_service import Settings, create_app
from cds_service.facts import utc_today
from cds_service.feedback_store import get_store
from cds_service.fixtures import hook_request, rolled_to
from cds_service.metrics import observe_fhir_query, prepare_multiprocess_dir
from tests.auth_helpers import ClientsFile, default_client
from tests.db_helpers import sqlite_write_lock

SERVICE = "baricitinib-order-select"
PATIENT = "sle-baseline"


def samples(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def grew(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def low_anc_order() -> dict:
    body = rolled_to(hook_request("order-select", PATIENT, ["baricitinib-4mg"]), utc_today())
    body["prefetch"]["observations"]["entry"][0]["resource"]["valueQuantity"]["value"] = 0.5
    return body


@pytest.fixture
def app(tmp_path: Path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}", store_timeout=0.3))
    yield app
    get_store(app).dispose()


def test_metrics_count_calls_cards_fhir_queries_and_store_errors(app, tmp_path) -> None:
    client = app.test_client()
    before = samples(client)

    cards = client.post(f"/cds-services/{SERVICE}", json=low_anc_order()).get_json()["cards"]
    with sqlite_write_lock(tmp_path / "cds.sqlite3"):
        feedback = {"feedback": [{"card": cards[0]["uuid"], "outcome": "accepted",
                                  "outcomeTimestamp": "2026-11-25T10:00:00Z"}]}  # fmt: skip
        assert client.post(f"/cds-services/{SERVICE}/feedback", json=feedback).status_code == 503
    observe_fhir_query("Observation", 0.2, "timeout")
    observe_fhir_query(f"Patient/{PATIENT}", 0.1, "ok")  # a caller's slip: the id must not become a label

    after = samples(client)
    assert grew(before, after, "cds_hook_call_seconds_count", service=SERVICE, status="200") == 1
    lab_hold = next(c for c in cards if c["source"]["topic"]["code"] == "lab-hold")
    indicator = lab_hold["indicator"]
    assert grew(before, after, "cds_cards_returned_total", topic="lab-hold", indicator=indicator) == 1
    assert grew(before, after, "cds_store_errors_total", operation="feedback_write") == 1
    assert grew(before, after, "cds_fhir_query_seconds_count", kind="Observation", outcome="timeout") == 1
    assert grew(before, after, "cds_fhir_query_seconds_count", kind="other", outcome="ok") == 1
    assert all(PATIENT not in value for _, labels in after for _, value in labels)


def test_the_fhir_fallback_times_each_query_by_resource_type_and_outcome(app, fhir_server) -> None:
    base = "http://127.0.0.1:8090/fhir"
    fhir_server.serve_patient(base, PATIENT, fail={"Condition": 500})
    body = rolled_to(hook_request("order-select", PATIENT, ["baricitinib-2mg"]), utc_today())
    body.pop("prefetch")
    body["fhirServer"] = base
    client = app.test_client()
    before = samples(client)
    assert client.post(f"/cds-services/{SERVICE}", json=body).status_code == 200
    after = samples(client)
    assert grew(before, after, "cds_fhir_query_seconds_count", kind="Patient", outcome="ok") == 1
    assert grew(before, after, "cds_fhir_query_seconds_count", kind="Observation", outcome="ok") == 1
    assert grew(before, after, "cds_fhir_query_seconds_count", kind="Condition", outcome="failed") == 1


def test_card_log_rows_not_written_are_exposed(tmp_path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}", card_log_queue=1))
    client = app.test_client()
    before = samples(client)
    try:
        with sqlite_write_lock(tmp_path / "cds.sqlite3"):
            for _ in range(5):
                assert client.post(f"/cds-services/{SERVICE}", json=low_anc_order()).status_code == 200
            after = samples(client)
    finally:
        get_store(app).dispose()
    assert grew(before, after, "cds_card_log_rows_not_written_total", reason="queue_full") >= 1


def test_metrics_need_no_token_when_clients_are_trusted(tmp_path) -> None:
    clients = ClientsFile().add(**default_client()).write(tmp_path)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}", trusted_clients=clients))
    try:
        assert app.test_client().get("/metrics").status_code == 200
    finally:
        get_store(app).dispose()


def test_prepare_multiprocess_dir_empties_the_folder_and_names_it(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1234.db").write_bytes(b"left by an earlier run")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # restored after the test, as is the next one
    monkeypatch.setenv("CDS_METRICS_DIR", "")

    assert prepare_multiprocess_dir(Settings(metrics_dir=folder)) == folder

    assert list(folder.iterdir()) == []
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == os.environ["CDS_METRICS_DIR"] == str(folder)


# Two forked workers answer calls; the app in a third process serves /metrics with the sum of both, as
# gunicorn's workers do. prometheus_client picks its storage when first imported, so this runs in a
# fresh interpreter started with the variables `cds-service serve` sets.
WORKERS_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from cds_service import Settings, create_app
    from cds_service.fixtures import hook_request, rolled_to
    from cds_service.facts import utc_today
    from cds_service.metrics import child_exit

    app = create_app(Settings(database_url=sys.argv[1]))
    body = rolled_to(hook_request("order-select", "sle-baseline", ["baricitinib-4mg"]), utc_today())
    workers = []
    for calls in (2, 3):
        pid = os.fork()
        if pid == 0:
            client = app.test_client()
            codes = {client.post("/cds-services/baricitinib-order-select", json=body).status_code
                     for _ in range(calls)}
            os._exit(0 if codes == {200} else 1)
        workers.append(pid)
    for pid in workers:
        assert os.waitpid(pid, 0)[1] == 0
        child_exit(None, type("Worker", (), {"pid": pid}))
    sys.stdout.write(app.test_client().get("/metrics").get_data(as_text=True))
    """
)


def test_multiprocess_mode_adds_up_every_workers_calls(tmp_path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "CDS_METRICS_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", WORKERS_SCRIPT, f"sqlite:///{tmp_path / 'cds.sqlite3'}"],
        env=env, capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    counts = {
        sample.labels.get("status"): sample.value
        for family in text_string_to_metric_families(done.stdout)
        for sample in family.samples
        if sample.name == "cds_hook_call_seconds_count" and sample.labels.get("service") == SERVICE
    }
    assert counts == {"200": 5}
