"""Markers of patient data and secrets put into test requests, and the check that no log holds them.

Requests get a patient name and an MRN (``with_phi``) and a FHIR access token; after the test, every
log record (message, structured fields, exception text) is searched for them. ``every_logger_at_debug``
opens every logger, libraries' included (SQLAlchemy sets its own to WARNING), so that the check covers
what an operator who turns on DEBUG would see.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

PATIENT_NAME = "Erythemova"
MRN = "MRN-7731-0042"
ACCESS_TOKEN = "fhir-access-token-SECRET-42"
PATIENT_IDS = ("sle-baseline", "sle-on-baricitinib")  # the fixture patients' ids: in URLs, never in logs
MARKERS = (PATIENT_NAME, MRN, ACCESS_TOKEN, *PATIENT_IDS)


def with_phi(body: dict[str, Any], fhir_server: str | None = None) -> dict[str, Any]:
    """``body`` with a named, identified patient in prefetch and, given a server, a bearer token for it."""
    patient = (body.get("prefetch") or {}).get("patient")
    if isinstance(patient, dict):
        patient["name"] = [{"family": PATIENT_NAME, "given": ["Sally"]}]
        patient["identifier"] = [{"system": "urn:mrn", "value": MRN}]
    if fhir_server:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds",
        }
    return body


def logged_text(records: Iterable[logging.LogRecord]) -> str:
    return "\n".join(
        f"{r.getMessage()} {getattr(r, 'fields', '')} {r.exc_text or ''} {r.stack_info or ''}"
        for r in records
    )


@contextmanager
def every_logger_at_debug() -> Iterator[None]:
    """The root and every logger that exists now at DEBUG and enabled; their levels restored after."""
    names = list(logging.root.manager.loggerDict)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in names)]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    try:
        yield
    finally:
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


def assert_nothing_secret_logged(records: Iterable[logging.LogRecord], *secrets: str) -> None:
    text = logged_text(records)
    for secret in (*MARKERS, *secrets):
        assert secret not in text, f"{secret!r} reached a log"
