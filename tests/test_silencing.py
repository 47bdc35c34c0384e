"""Consent recorded once: a clinician overrides the off-label card with "informed consent documented", and
the next call for the same patient on the same FHIR server does not show it again; the card log keeps a
keyed hash of server and patient, never the id. On SQLite, and on PostgreSQL when CDS_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from cds_service import Settings, create_app
from cds_service.content import ContentError, load
from cds_service.feedback_store import card_feedback, card_shown, get_store
from cds_service.fixtures import hook_request, rolled_to
from cds_service.rules import load_rules
from tests.db_helpers import read_rows, store, store_url  # noqa: F401  (pytest fixtures)

SECRET = "a-test-secret-of-at-least-thirty-two-characters"
SELECT = "/cds-services/baricitinib-order-select"
SIGN = "/cds-services/baricitinib-order-sign"
FHIR_SERVER = "https://ehr.example.org/fhir"
CONSENT = {"code": "informed-consent-documented",
           "system": "https://cds.example.org/baricitinib-sle/CodeSystem/override-reason"}  # fmt: skip


@pytest.fixture
def client(store_url):  # noqa: F811
    app = create_app(Settings(database_url=store_url, patient_key_secret=SECRET))
    yield app.test_client()
    get_store(app).dispose()


def order(hook: str = "order-select", patient: str = "sle-baseline", server: str | None = FHIR_SERVER) -> dict:
    """A new start with other cards beside the off-label one, for a patient of id ``patient``."""
    fixture = "new-start-no-workup-on-mycophenolate"  # its patient's id is sle-baseline
    body = rolled_to(hook_request(hook, fixture, ["baricitinib-2mg"]), datetime.now(UTC).date())
    body = json.loads(json.dumps(body).replace('"sle-baseline"', f'"{patient}"').replace("Patient/sle-baseline", f"Patient/{patient}"))
    if server:
        body["fhirServer"] = server
    return body


def off_label(client, body, path=SELECT) -> dict | None:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.get_json()
    found = [c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "off-label-use"]
    return found[0] if found else None


def override(client, card: dict, reason: dict, when: datetime | None = None) -> None:
    get_store(client.application).card_log.close()  # cards are logged behind the call: let the log catch up
    item = {"card": card["uuid"], "outcome": "overridden",
            "outcomeTimestamp": (when or datetime.now(UTC)).isoformat(), "overrideReason": {"reason": reason}}  # fmt: skip
    response = client.post(f"{SELECT}/feedback", json={"feedback": [item]})
    assert response.status_code == 200, response.get_json()


def test_consent_recorded_once_silences_the_off_label_card_for_that_patient_only(client, store_url):  # noqa: F811
    card = off_label(client, order())
    assert card is not None
    assert "informed-consent-documented" in [r["code"] for r in card["overrideReasons"]]
    override(client, card, CONSENT)

    assert off_label(client, order()) is None  # the same order, again
    assert off_label(client, order("order-sign"), SIGN) is None  # and when it is signed
    assert off_label(client, order(patient="another-patient")) is not None  # another patient
    assert off_label(client, order(server="https://other-ehr.example.org/fhir")) is not None  # another EHR's patient

    get_store(client.application).card_log.close()
    shown = read_rows(store_url, card_shown)
    keys = {r["patient_key"] for r in shown if r["topic"] == "off-label-use"}
    assert len(keys) == 3 and all(len(k) == 64 for k in keys)  # one per patient and server
    others = [r["patient_key"] for r in shown if r["topic"] != "off-label-use"]
    assert others and set(others) == {None}  # the key is kept for silenceable topics only
    everything = repr(shown) + repr(read_rows(store_url, card_feedback))
    for identifier in ("sle-baseline", "another-patient", "ehr.example.org"):
        assert identifier not in everything


def test_another_override_reason_does_not_silence_the_card(client):
    override(client, off_label(client, order()), {"code": "refractory-to-standard-therapy", "system": CONSENT["system"]})
    assert off_label(client, order()) is not None


def test_consent_is_asked_for_again_after_the_content_s_period(client):
    card = off_label(client, order())
    override(client, card, CONSENT, when=datetime.now(UTC) - timedelta(days=366))
    assert off_label(client, order()) is not None


def test_a_prefetch_only_call_is_silenced_by_consent_given_on_a_prefetch_only_call(client):
    override(client, off_label(client, order(server=None)), CONSENT)
    assert off_label(client, order(server=None)) is None


def test_when_the_store_cannot_answer_the_card_is_shown(client, store_url):  # noqa: F811
    override(client, off_label(client, order()), CONSENT)
    engine = create_engine(store_url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE card_feedback"))
    engine.dispose()
    assert off_label(client, order()) is not None


def test_the_patient_key_depends_on_the_secret(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    one = create_app(Settings(database_url=url, patient_key_secret=SECRET)).extensions["cds_silencing"]
    other = create_app(Settings(database_url=url, patient_key_secret=SECRET[::-1])).extensions["cds_silencing"]
    assert one.patient_key(FHIR_SERVER, "p1") == one.patient_key(FHIR_SERVER + "/", "p1")
    assert one.patient_key(FHIR_SERVER, "p1") != other.patient_key(FHIR_SERVER, "p1")
    assert one.patient_key(FHIR_SERVER, "p1") != one.patient_key(FHIR_SERVER, "p2")


def test_without_a_secret_setting_one_is_made_once_and_kept(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", patient_key_secret_file=tmp_path / "k" / "secret")
    first = create_app(settings).extensions["cds_silencing"].patient_key(None, "p1")
    assert (tmp_path / "k" / "secret").stat().st_mode & 0o777 == 0o600
    assert create_app(settings).extensions["cds_silencing"].patient_key(None, "p1") == first


def test_a_card_log_made_before_silencing_gains_the_column(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE card_shown (card_uuid VARCHAR PRIMARY KEY, service_id VARCHAR NOT NULL, "
                                "topic VARCHAR NOT NULL, indicator VARCHAR NOT NULL, shown_at DATETIME NOT NULL)"))  # fmt: skip
    client = create_app(Settings(database_url=url, patient_key_secret=SECRET)).test_client()
    override(client, off_label(client, order()), CONSENT)
    assert off_label(client, order()) is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [('topic = "off-label-use"', 'topic = "lab-hold"', "lab-hold: its cards can be critical"),
     ('reason = "informed-consent-documented"', 'reason = "consent"', "off-label-use: 'consent' is not one of its cards' override reasons")],
)  # fmt: skip
def test_content_refuses_silencing_a_critical_topic_or_an_unknown_reason(tmp_path, old, new, message):
    cards = tmp_path / "cards"
    shutil.copytree(Settings().content_dir, cards)
    path = cards / "silencing.toml"
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(ContentError, match=message):
        load(cards, load_rules())
