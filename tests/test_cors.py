"""CORS: the CDS Hooks sandbox and configured origins may call discovery, hooks and feedback from a
browser with Authorization and Content-Type; nothing wider. Preflights need no token."""

from __future__ import annotations

import pytest

from cds_service import Settings, create_app
from cds_service.cors import CorsOriginError
from tests.auth_helpers import ClientsFile, default_client

SANDBOX = "https://sandbox.cds-hooks.org"
PATHS = [
    "/cds-services",
    "/cds-services/baricitinib-order-select",
    "/cds-services/baricitinib-order-select/feedback",
]


def preflight(
    client,
    path: str,
    origin: str,
    method: str = "POST",
    headers: str = "authorization,content-type",
    private: bool = False,
):
    extra = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }
    if private:
        extra["Access-Control-Request-Private-Network"] = "true"
    return client.options(path, headers=extra)



@pytest.fixture(params=["open", "authenticated"])
def client(request, tmp_path):
    """Both modes: in authenticated mode the preflight must still pass without a token."""
    settings = {
        "database_url": f"sqlite:///{tmp_path / 'db'}",
        "cors_origins": "https://ehr.example.org, http://localhost:3000/",
    }
    if request.param == "authenticated":
        settings["trusted_clients"] = ClientsFile().add(**default_client()).write(tmp_path)
    return create_app(Settings(**settings)).test_client()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "origin", [SANDBOX, "https://ehr.example.org", "http://localhost:3000", "HTTPS://SANDBOX.CDS-HOOKS.ORG"]
)
def test_allowed_origins_get_a_preflight_answer_without_a_token(client, path, origin):
    response = preflight(client, path, origin)
    assert response.status_code == 204  # an "ok status" for CORS, and no body
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
    assert response.headers["Access-Control-Allow-Headers"].lower() == "authorization, content-type"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://attacker.example",
        "https://sandbox.cds-hooks.org.attacker.example",
        "http://sandbox.cds-hooks.org",
        "https://evil-sandbox.cds-hooks.org",
        "null",
    ],
)
def test_other_origins_get_no_cors_headers(client, origin):
    response = preflight(client, "/cds-services/baricitinib-order-select", origin, private=True)
    assert not any(h.startswith("Access-Control-") for h in response.headers.keys())


def test_health_and_openapi_get_no_cors_headers(client):
    for path in ("/healthz", "/readyz", "/openapi.json"):
        response = preflight(client, path, SANDBOX, method="GET")
        assert "Access-Control-Allow-Origin" not in response.headers, path


def test_other_request_headers_are_not_allowed(client):
    response = preflight(client, "/cds-services", SANDBOX, headers="authorization,x-forwarded-host,cookie")
    assert response.headers["Access-Control-Allow-Headers"].lower() == "authorization"


def test_other_methods_are_not_allowed(client):
    response = preflight(client, "/cds-services/baricitinib-order-select", SANDBOX, method="DELETE")
    assert "Access-Control-Allow-Methods" not in response.headers


def test_a_private_network_preflight_from_an_allowed_origin_is_answered(client):
    response = preflight(client, "/cds-services/baricitinib-order-select", SANDBOX, private=True)
    assert response.headers["Access-Control-Allow-Private-Network"] == "true"
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX


def test_the_actual_response_carries_the_origin_too(client):
    """Without it the browser would hide the answer (or the 401) from the page."""
    response = client.get("/cds-services", headers={"Origin": SANDBOX})
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX
    assert response.status_code in (200, 401)


def test_only_the_sandbox_by_default(tmp_path):
    client = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db'}")).test_client()
    assert preflight(client, "/cds-services", SANDBOX).headers["Access-Control-Allow-Origin"] == SANDBOX
    assert (
        "Access-Control-Allow-Origin"
        not in preflight(client, "/cds-services", "https://ehr.example.org").headers
    )


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "https://*.example.org",
        "https://ehr.example.org/path",
        "ehr.example.org",
        "https://user@ehr.example.org",
    ],
)
def test_a_cors_origin_that_is_not_a_plain_origin_stops_the_service(tmp_path, origin):
    with pytest.raises(CorsOriginError, match="is not an origin"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db'}", cors_origins=origin))
