"""Step 1, HTTP: discovery, hook calls, feedback, health. Parses, calls the pipeline, serialises.

Knows no clinical word. Every error is a JSON body ``{"code": ..., "message": ...}`` with the right
status; nothing from the request (which may hold PHI) is echoed back or logged.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import metrics, openapi
from .auth import request_fhir_servers
from .cards import Card
from .facts import utc_today
from .feedback import FeedbackRequest, ShownCard
from .feedback_store import get_store
from .gather import PreconditionFailed
from .hook_request import HOOK_REQUEST
from .log_redaction import exception_frames
from .pipeline import Runtime, run
from .services import SERVICES, SERVICES_BY_ID, ServiceDeclaration
from .store_deadline import StoreUnavailable

bp = Blueprint("cds", __name__)
access_log = logging.getLogger("cds_service.access")
log = logging.getLogger(__name__)

# Seconds a client is asked to wait before retrying when the store is down: about a restart of PostgreSQL.
STORE_RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def runtime() -> Runtime:
    return current_app.extensions["cds_runtime"]


@bp.get("/cds-services")
def discovery() -> Response:
    content = runtime().content
    return json_response({"services": [s.discovery(content) for s in SERVICES]})


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    service = _service(service_id)
    g.log_fields.update(service=service.id, hook=service.hook)
    body = _json_body()
    hook = body.get("hook")
    if _is_uuid(body.get("hookInstance")):  # anything else might be PHI a client put in the wrong field
        g.log_fields["hookInstance"] = body["hookInstance"]
    if isinstance(hook, str) and hook != service.hook:
        raise ApiError(400, "hook-mismatch", f"service {service.id} answers the {service.hook} hook, not {hook[:40]!r}")
    try:
        hook_request = HOOK_REQUEST.validate_python(body)
    except ValidationError as exc:
        raise ApiError(400, "invalid-request", "the hook request is not valid CDS Hooks 2.0", _problems(exc)) from None
    try:
        response = run(service, hook_request, runtime(), utc_today(), request_fhir_servers())
    except PreconditionFailed as exc:
        g.log_fields["precondition"] = "failed"
        return json_response(_operation_outcome(str(exc)), 412)
    silencing = current_app.extensions["cds_silencing"]
    patient_key = silencing.patient_key(hook_request.fhir_server, hook_request.context.patient_id)
    response.cards = silencing.quiet(response.cards, patient_key, datetime.now(UTC))
    g.log_fields["cards"] = [c.topic for c in response.cards]
    _record_shown(service.id, response.cards, lambda card: patient_key if silencing.keeps_key(card.topic) else None)
    return json_response(response.to_json_dict())


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    service = _service(service_id)
    g.log_fields.update(service=service.id, endpoint="feedback")
    try:
        feedback_request = FeedbackRequest.model_validate(_json_body())
    except ValidationError as exc:
        raise ApiError(400, "invalid-feedback", "the feedback is not valid CDS Hooks 2.0 feedback", _problems(exc)) from None
    try:
        stored = get_store(current_app).record_feedback(service.id, feedback_request)
    except StoreUnavailable:
        metrics.count_store_error("feedback_write")
        raise
    g.log_fields["feedback_rows"] = stored
    return json_response({"received": stored})


@bp.get("/healthz")
def healthz() -> Response:
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when the store takes a write (a committed heartbeat) within ``CDS_STORE_TIMEOUT``."""
    checks = {"content": "loaded"}
    try:
        get_store(current_app).check_writable()
        checks["database"] = "writable"
        status = 200
    except StoreUnavailable as exc:
        metrics.count_store_error("readiness")
        log.warning("readiness: database not writable (%s)", exc)
        checks["database"] = "not-writable"
        status = 503
    return json_response({"status": "ready" if status == 200 else "not-ready", "checks": checks}, status)


@bp.get("/metrics", endpoint="metrics")
def metrics_exposition() -> Response:
    return metrics.exposition(current_app)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    settings = runtime().settings
    authenticated = current_app.extensions.get("cds_auth") is not None
    document = openapi.document(authenticated=authenticated, public_base_url=settings.public_base_url)
    return json_response(document)


def _service(service_id: str) -> ServiceDeclaration:
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise ApiError(404, "unknown-service", "no CDS service has this id; GET /cds-services lists them")
    return service


def _json_body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported-media-type", "send the body as application/json")
    raw = _body_bytes()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed-json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "malformed-json", "the body must be a JSON object")
    return body


def http_error_body(exc: HTTPException, message: str | None = None) -> dict[str, str]:
    """An HTTP error's JSON body; also written by the server for requests it refuses before the app runs."""
    code = (exc.name or "error").lower().replace(" ", "-")
    return {"code": code, "message": message or exc.description or code}


def _body_bytes() -> bytes:
    """The body, 413 past the limit however it is framed. A chunked body has no Content-Length to check
    first, and Werkzeug stops reading it at the limit without a word; reading one byte more tells a body
    over the limit from one that fits exactly."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    request.max_content_length = limit + 1
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    return raw


def _problems(exc: ValidationError) -> list[dict[str, str]]:
    """Where and what, never the offending value (it may be PHI)."""
    return [
        {"location": ".".join(str(p) for p in e["loc"]), "problem": _QUOTING_INPUT.get(e["type"], e["msg"])}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)[:20]
    ]


# pydantic messages that quote the offending value, replaced by ones that do not
_QUOTING_INPUT = {
    "union_tag_invalid": "the value does not name a known hook",
    "union_tag_not_found": "hook is missing",
}


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 45:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _operation_outcome(diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "incomplete", "diagnostics": diagnostics}],
    }


def _record_shown(service_id: str, cards: list[Card], patient_key: Callable[[Card], str | None]) -> None:
    """The alert-fatigue log, with the patient key of the cards a clinician can silence; queued: the
    database, slow or down, must not delay the clinician's cards."""
    shown_at = datetime.now(UTC)
    metrics.count_cards([(c.topic, c.indicator) for c in cards])
    get_store(current_app).card_log.submit(
        service_id, [ShownCard(c.uuid, c.topic, c.indicator, shown_at, patient_key(c)) for c in cards]
    )


def register(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        body: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details:
            body["details"] = exc.details
        return json_response(body, exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        messages = {413: f"the body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"}
        return json_response(http_error_body(exc, messages.get(exc.code or 0)), exc.code or 500)

    @app.errorhandler(StoreUnavailable)
    def _store_unavailable(exc: StoreUnavailable) -> Response:
        log.error("store unavailable (%s); the client is asked to retry", exc)
        message = "the store cannot take this now; nothing was kept, retry shortly"
        response = json_response({"code": "store-unavailable", "message": message}, 503)
        response.headers["Retry-After"] = str(STORE_RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Frames only: an exception's message can quote request data.
        log.error("unhandled %s", exception_frames(exc))
        return json_response({"code": "internal-error", "message": "the service failed; the error was logged"}, 500)

    @app.before_request
    def _start_clock() -> None:
        g.started = time.perf_counter()
        g.log_fields = {}

    @app.after_request
    def _options_have_no_body(response: Response) -> Response:
        """Flask's automatic OPTIONS answer is an empty text/html 200; say plainly there is no content."""
        if request.method == "OPTIONS" and response.status_code == 200 and not response.get_data():
            response.status_code = 204
            del response.headers["Content-Type"]
        return response

    @app.after_request
    def _access_log(response: Response) -> Response:
        fields = {
            "method": request.method,
            "path": request.url_rule.rule if request.url_rule else "unmatched",
            "status": response.status_code,
            "latency_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
            **g.get("log_fields", {}),
        }
        access_log.info("request", extra={"fields": fields})
        return response
