"""``/openapi.json`` is generated from the models, and every operation in it survives schemathesis.

The fuzz test sends schema-valid and schema-breaking requests (30 per operation) to the real app and
asserts: never a 5xx, always a JSON body, a documented status, and a body that matches the document.
FHIR calls never leave the process: ``responses`` answers every outgoing request with a refused connection.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cds_service import Settings, create_app, openapi
from cds_service.facts import utc_today
from cds_service.fixtures import hook_request, rolled_to
from cds_service.openapi import Discovery
from cds_service.services import SERVICES
from tests.auth_helpers import BASE_URL, ClientsFile, Signer, default_client

MAX_EXAMPLES = 30



@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    folder: Path = tmp_path_factory.mktemp("fuzz")
    with responses.RequestsMock(assert_all_requests_are_fired=False):  # any FHIR call: connection refused
        yield create_app(Settings(database_url=f"sqlite:///{folder / 'cds.sqlite3'}", fhir_read_timeout=1.0))


# The document the app serves in open mode (a test below checks they are the same), loaded at import so
# schemathesis can make one test per operation.
schema = schemathesis.openapi.from_dict(openapi.document(authenticated=False, public_base_url=None))
schema.config.generation.update(modes=["positive", "negative"], max_examples=MAX_EXAMPLES)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_every_operation_answers_json_and_never_fails(case, fuzz_app):
    response = case.call(app=fuzz_app)
    assert response.status_code < 500, response.text[:500]
    if case.method == "OPTIONS":  # schemathesis tries other methods too; a preflight answer has no body
        assert response.status_code == 204 and not response.content
        return
    assert response.headers["content-type"][0].startswith("application/json")
    json.loads(response.content)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


# --- the document itself -------------------------------------------------------------------------


def test_the_document_is_openapi_3_1_and_lists_every_endpoint(client):
    doc = client.get("/openapi.json").get_json()
    assert doc == json.loads(json.dumps(openapi.document(authenticated=False, public_base_url=None)))
    assert doc["openapi"] == "3.1.0"
    expected = {"/cds-services", "/healthz", "/readyz", "/openapi.json"}
    expected |= {f"/cds-services/{s.id}" for s in SERVICES} | {
        f"/cds-services/{s.id}/feedback" for s in SERVICES
    }
    assert set(doc["paths"]) == expected
    assert "securitySchemes" not in doc["components"]  # open mode: no token needed


def test_each_service_path_takes_its_own_hooks_request_model(client):
    doc = client.get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    for service in SERVICES:
        ref = doc["paths"][f"/cds-services/{service.id}"]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]["$ref"]
        model = schemas[ref.rsplit("/", 1)[1]]
        assert model["properties"]["hook"]["const"] == service.hook
    assert schemas["HookRequest"]["discriminator"]["propertyName"] == "hook"


def test_the_discovery_model_matches_what_discovery_serves(client):
    Discovery.model_validate(client.get("/cds-services").get_json())


def test_with_trusted_clients_the_document_names_the_bearer_scheme_and_the_open_endpoints(tmp_path):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db'}",
        public_base_url="https://cds.example.org",
        trusted_clients=ClientsFile().add(**default_client()).write(tmp_path),
    )
    doc = create_app(settings).test_client().get("/openapi.json").get_json()
    assert doc["components"]["securitySchemes"]["cdsClientJwt"]["scheme"] == "bearer"
    assert doc["security"] == [{"cdsClientJwt": []}]
    assert doc["servers"] == [{"url": "https://cds.example.org"}]
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert doc["paths"][path]["get"]["security"] == []
    assert "401" in doc["paths"]["/cds-services"]["get"]["responses"]


def test_a_real_request_validates_against_the_document(client):
    """The document accepts what the fixtures send (hookInstance is a uuid, fhirServer http(s))."""
    import jsonschema_rs as jsonschema  # comes with schemathesis

    doc = client.get("/openapi.json").get_json()
    body = rolled_to(hook_request("order-select", "sle-baseline", ["baricitinib-4mg"]), utc_today())
    body["fhirServer"] = "http://127.0.0.1:8090/fhir"
    schema = {"$ref": "#/components/schemas/OrderSelectRequest", "components": doc["components"]}
    jsonschema.validate(schema, body)


def test_authenticated_fuzzing_smoke(tmp_path):
    """With trusted clients, every operation that needs a token refuses a request without one as JSON."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db'}",
        trusted_clients=ClientsFile().add(**default_client()).write(tmp_path),
    )
    client = create_app(settings).test_client()
    doc = client.get("/openapi.json").get_json()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            response = client.open(path, method=method.upper(), json={})
            if operation.get("security") == []:
                assert response.status_code == 200, path
            else:
                assert response.status_code == 401 and response.get_json()["code"] == "unauthorized", path
                token = Signer().token(f"{BASE_URL}{path}")
                response = client.open(
                    path, method=method.upper(), json={}, headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code in (200, 400), path
