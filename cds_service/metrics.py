"""Prometheus metrics: call latency per service, FHIR fallback queries, store errors, card-log rows not
written, cards returned per topic and indicator. Labels carry service ids, topics, indicators, resource
types and outcomes only: never a patient, a URL, a token or a value from a request.

Under gunicorn each worker is a process, so the counts live in files, one set per process, in the folder
``PROMETHEUS_MULTIPROC_DIR`` names; prometheus_client reads that variable when it is first imported, so
``prepare_multiprocess_dir`` must run before the app is loaded and before workers fork, and the master's
``child_exit`` hook must call ``child_exit`` so a dead worker's live gauges are dropped. Without the
variable (tests, ``flask run``, ``cds-service invoke``) the counts are kept in this process's memory.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from .services import SERVICES_BY_ID
from .settings import Settings

_MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_SETTINGS_VARIABLE = "CDS_METRICS_DIR"
_EXTENSION_KEY = "cds_metrics"
_HOOK_CALL_ENDPOINT = "cds.call_service"
# A label value that is not a plain word (a resource type, a topic) is reported as this, so a caller's
# mistake cannot put an id or a URL into a label.
OTHER = "other"
_PLAIN_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")

HOOK_CALL_SECONDS = Histogram(
    "cds_hook_call_seconds",
    "Time to answer a hook call, from the request to the response, by service and HTTP status.",
    ["service", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
FHIR_QUERY_SECONDS = Histogram(
    "cds_fhir_query_seconds",
    "Time of one FHIR fallback query (a prefetch the EHR did not send), by resource type and outcome; "
    "outcome other than ok counts failures.",
    ["kind", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
STORE_ERRORS = Counter(
    "cds_store_errors_total",
    "Database operations that failed or ran past CDS_STORE_TIMEOUT, by operation.",
    ["operation"],
)
CARD_LOG_ROWS_NOT_WRITTEN = Counter(
    "cds_card_log_rows_not_written_total",
    "Shown cards left out of the card log (the alert-fatigue report), by reason: queue_full, "
    "store_error, shutdown. The cards themselves were returned.",
    ["reason"],
)
CARDS_RETURNED = Counter(
    "cds_cards_returned_total",
    "Cards returned to CDS clients, by card topic and indicator.",
    ["topic", "indicator"],
)
REPLAY_MEMORY_CLAIMS = Counter(
    "cds_replay_cache_memory_claims_total",
    "JWT ids checked against this worker's memory because the shared replay cache was unreachable.",
)


def observe_fhir_query(kind: str, seconds: float, outcome: str) -> None:
    """Count one FHIR fallback query: ``kind`` its resource type or prefetch key, ``outcome`` a short
    word such as ok, timeout, http-error, too-large; neither may carry a patient id or URL."""
    FHIR_QUERY_SECONDS.labels(kind=_plain(kind), outcome=_plain(outcome)).observe(seconds)


def count_store_error(operation: str) -> None:
    STORE_ERRORS.labels(operation=operation).inc()


def count_rows_not_written(reason: str, rows: int) -> None:
    CARD_LOG_ROWS_NOT_WRITTEN.labels(reason=reason).inc(rows)


def count_cards(cards: list[tuple[str, str]]) -> None:
    """``cards``: the (topic, indicator) of each card one call returned."""
    for topic, indicator in cards:
        CARDS_RETURNED.labels(topic=_plain(topic), indicator=_plain(indicator)).inc()


def count_replay_memory_claim() -> None:
    REPLAY_MEMORY_CLAIMS.inc()


def prepare_multiprocess_dir(settings: Settings) -> Path:
    """Empty (or create) the folder where workers will keep their metrics, and name it to them.

    For ``cds-service serve`` before it starts gunicorn: ``CDS_METRICS_DIR``, else a new temporary folder.
    Files left by an earlier run would add its counts to this one's, so the folder is emptied.
    """
    folder = settings.metrics_dir or Path(tempfile.mkdtemp(prefix="cds-metrics-"))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.environ[_MULTIPROC_VARIABLE] = os.environ[_SETTINGS_VARIABLE] = str(folder)
    return folder


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` server hook (it runs in the master): forget a dead worker's live gauges."""
    multiprocess.mark_process_dead(worker.pid)


def init_app(app: Flask, settings: Settings) -> None:
    """Serve ``GET /metrics`` and time every hook call."""
    app.extensions[_EXTENSION_KEY] = settings.metrics_dir
    app.after_request(_time_hook_call)


def exposition(app: Flask) -> Response:
    """The text format Prometheus scrapes: every worker's counts when they are kept in files."""
    folder = app.extensions.get(_EXTENSION_KEY)
    registry = REGISTRY
    if folder is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(folder))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _time_hook_call(response: Response) -> Response:
    if request.endpoint == _HOOK_CALL_ENDPOINT and "started" in g:
        service_id = (request.view_args or {}).get("service_id")
        service = service_id if service_id in SERVICES_BY_ID else OTHER
        HOOK_CALL_SECONDS.labels(service=service, status=str(response.status_code)).observe(
            time.perf_counter() - g.started
        )
    return response


def _plain(value: str) -> str:
    return value if _PLAIN_LABEL.fullmatch(value) else OTHER
