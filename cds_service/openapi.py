"""``GET /openapi.json``: an OpenAPI 3.1 document of this service's own endpoints, generated, not written.

Request and response bodies come from the same pydantic models the routes validate with (``HOOK_REQUEST``,
``CdsResponse``, ``FeedbackRequest``) and the discovery, error, health and OperationOutcome shapes below,
so the document cannot drift from the code; one path per declared service, each with its hook's request
model. The tests fuzz every operation against it with schemathesis.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from .cards import CdsResponse
from .feedback import FeedbackRequest
from .hook_request import HOOK_REQUEST
from .services import SERVICES
from .wire import WireModel

REF = "#/components/schemas/{model}"


class DiscoveryService(WireModel):
    """One CDS Service as listed by discovery (CDS Hooks 2.0 §Discovery)."""

    model_config = ConfigDict(extra="allow")

    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usage_requirements: str | None = None


class Discovery(WireModel):
    services: list[DiscoveryService]


class ProblemDetail(BaseModel):
    location: str
    problem: str


class ErrorBody(BaseModel):
    """Every error this service answers: a stable ``code`` and a message, never request data."""

    code: str
    message: str
    details: list[ProblemDetail] | None = None


class OperationOutcomeIssue(BaseModel):
    severity: str
    code: str
    diagnostics: str | None = None


class OperationOutcome(BaseModel):
    """The 412 body: required data could be neither prefetched nor fetched."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["OperationOutcome"]  # noqa: N815 (FHIR's name)
    issue: list[OperationOutcomeIssue] = Field(min_length=1)


class FeedbackReceived(BaseModel):
    received: int = Field(ge=0, description="Feedback items stored.")


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not-ready"]
    checks: dict[str, str]


_MODELS: list[tuple[str, JsonSchemaMode, TypeAdapter[Any]]] = [
    ("HookRequest", "validation", HOOK_REQUEST),
    ("FeedbackRequest", "validation", TypeAdapter(FeedbackRequest)),
    ("CdsResponse", "serialization", TypeAdapter(CdsResponse)),
    ("Discovery", "serialization", TypeAdapter(Discovery)),
    ("ErrorBody", "serialization", TypeAdapter(ErrorBody)),
    ("OperationOutcome", "serialization", TypeAdapter(OperationOutcome)),
    ("FeedbackReceived", "serialization", TypeAdapter(FeedbackReceived)),
    ("Health", "serialization", TypeAdapter(Health)),
    ("Readiness", "serialization", TypeAdapter(Readiness)),
]


@cache
def _schemas() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(components.schemas, top-level schema by name)."""
    tops, defs = TypeAdapter.json_schemas(_MODELS, by_alias=True, ref_template=REF)
    named = {key: schema for (key, _mode), schema in tops.items()}
    components = dict(defs.get("$defs", {}))
    components["HookRequest"] = named["HookRequest"]
    return components, named


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "Malformed JSON, or not a valid request (`details`: where and what, never the value)",
        401: "No valid bearer token from a trusted CDS client",
        404: "No service with this id",
        405: "Method not allowed",
        413: "Body larger than CDS_MAX_BODY_BYTES",
        415: "Body not sent as application/json",
    }
    return {str(s): _json({"$ref": REF.format(model="ErrorBody")}, texts[s]) for s in statuses}


def document(*, authenticated: bool, public_base_url: str | None) -> dict[str, Any]:
    components, named = _schemas()
    mapping = named["HookRequest"]["discriminator"]["mapping"]  # hook -> $ref of its request model
    secured = {"401": _errors(401)["401"]} if authenticated else {}
    paths: dict[str, Any] = {
        "/cds-services": {
            "get": {
                "operationId": "discovery",
                "summary": "The CDS Services this service offers",
                "responses": {"200": _json(named["Discovery"], "Discovery document"), **secured},
            }
        }
    }
    for service in SERVICES:
        body_errors = _errors(400, 413, 415)
        paths[f"/cds-services/{service.id}"] = {
            "post": {
                "operationId": f"call-{service.id}",
                "summary": service.title,
                "description": service.description,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": mapping[service.hook]}}},
                },
                "responses": {
                    "200": _json(named["CdsResponse"], "Cards"),
                    "412": _json(
                        named["OperationOutcome"], "Required data neither prefetched nor obtainable"
                    ),
                    **body_errors,
                    **secured,
                },
            }
        }
        paths[f"/cds-services/{service.id}/feedback"] = {
            "post": {
                "operationId": f"feedback-{service.id}",
                "summary": f"Feedback on the cards of {service.id}",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": named["FeedbackRequest"]}},
                },
                "responses": {"200": _json(named["FeedbackReceived"], "Stored"), **body_errors, **secured},
            }
        }
    open_op = {"security": []} if authenticated else {}
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness",
            **open_op,
            "responses": {"200": _json(named["Health"], "Alive")},
        }
    }
    paths["/readyz"] = {
        "get": {
            "operationId": "readyz",
            "summary": "Readiness: content loaded, database reachable",
            **open_op,
            "responses": {
                "200": _json(named["Readiness"], "Ready"),
                "503": _json(named["Readiness"], "Not ready"),
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            **open_op,
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document")},
        }
    }

    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Baricitinib-in-SLE CDS Hooks service",
            "version": "2.0",
            "description": "CDS Hooks 2.0 discovery, service and feedback endpoints, with health checks.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if public_base_url:
        doc["servers"] = [{"url": public_base_url}]
    if authenticated:
        doc["components"]["securitySchemes"] = {
            "cdsClientJwt": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "CDS Hooks 2.0 client JWT: signed by a trusted EHR, aud = the URL called",
            }
        }
        doc["security"] = [{"cdsClientJwt": []}]
    return doc
