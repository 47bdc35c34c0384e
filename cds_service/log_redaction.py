"""What the logs may say about URLs and exceptions: never a patient id, whatever the logger or level.

The FHIR fallback puts the patient in its URLs (``Condition?patient=123``, ``Patient/123``), and the HTTP
libraries log those URLs: urllib3 writes every request line at DEBUG and the URL of a response with broken
headers at WARNING; gunicorn writes the line of a request it cannot parse at WARNING (and every line, when
its access log is on). ``redact_library_logs`` installs a filter on those libraries' loggers, and on the
service's own, that keeps the scheme, host, port, FHIR resource types, operations and query parameter
names, and replaces ids and query values with ``[redacted]``:
``"GET /fhir/Condition?patient=[redacted]&_sort=[redacted] HTTP/1.1" 200``.

SQLAlchemy's engine log adds, at DEBUG, every result row, which holds what callers sent (a token's
``jti``, feedback): those records are dropped (its statement parameters are hidden by the engine's
``hide_parameters``). Exception messages can quote data (a resource value, a URL), so the service logs an
exception by its type and frames only (``exception_frames``).
"""

from __future__ import annotations

import logging
import re
import traceback

REDACTED = "[redacted]"
_URL = re.compile(
    r"""(?P<origin>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s"'?#]*)(?P<path>/[^\s"'?#]*)?(?P<rest>[?#][^\s"']*)?"""
    # a bare path: a slash at the start of a token (not the one in "HTTP/1.1")
    r"""|(?<![^\s"'(=])(?P<bare_path>/[^\s"'?#]*)(?P<bare_rest>[?#][^\s"']*)?"""
)
_RESOURCE_TYPE = re.compile(r"[A-Z][a-z][A-Za-z]*")


def redact_urls(text: str) -> str:
    """``text`` with each URL's ids, query values, fragment and user info replaced by ``[redacted]``."""
    return _URL.sub(_redacted_url, text)


def _redacted_url(match: re.Match[str]) -> str:
    origin = match["origin"] or ""
    if "@" in origin:
        scheme, _, authority = origin.partition("://")
        origin = f"{scheme}://{REDACTED}@{authority.rpartition('@')[2]}"
    path = match["path"] if match["origin"] else match["bare_path"]
    rest = match["rest"] if match["origin"] else match["bare_rest"]
    return origin + _redacted_path(path or "") + _redacted_query(rest or "")


def _redacted_path(path: str) -> str:
    """The segment after a resource type is its id (``Patient/123``); operations (``$everything``,
    ``_history``, ``_search``) are kept."""
    segments = path.split("/")
    after_type = False
    for number, segment in enumerate(segments):
        if after_type and segment and segment[0] not in "_$":
            segments[number] = REDACTED
            after_type = False
        else:
            after_type = bool(_RESOURCE_TYPE.fullmatch(segment))
    return "/".join(segments)


def _redacted_query(rest: str) -> str:
    query, _, fragment = rest.partition("#")
    if query.startswith("?"):
        names = (p.partition("=")[0] for p in query[1:].split("&"))
        query = "?" + "&".join(f"{name}={REDACTED}" for name in names)
    return query + (f"#{REDACTED}" if fragment or rest.startswith("#") else "")


class RedactUrls(logging.Filter):
    """Rewrites a record's message (and traceback) with its URLs redacted; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string must not break its caller
            message = f"a {record.name} record that could not be formatted (hidden)"
        record.msg, record.args = redact_urls(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_urls(logging.Formatter().formatException(record.exc_info))
        return True


class NoResultRows(logging.Filter):
    """Drops the DEBUG records of SQLAlchemy's engine log: at that level it adds only result rows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_REDACT_URLS = RedactUrls()
# Each logger named here, and every logger below it that exists, gets the filter.
_FILTERS: dict[str, logging.Filter] = {
    "urllib3": _REDACT_URLS,
    "gunicorn.error": _REDACT_URLS,  # quotes the request line of a request it cannot parse, at WARNING
    "gunicorn.access": _REDACT_URLS,
    "cds_service": _REDACT_URLS,  # the service's own lines name no URL with an id; this keeps it so
    "sqlalchemy.engine.Engine": NoResultRows(),  # made on the first engine; getLogger makes it now
}


def redact_library_logs() -> None:
    """Put the filters on their loggers (idempotent: once per logger).

    A filter on a parent logger does not see its children's records, so each module's logger gets it.
    """
    import urllib3  # noqa: F401 (its module loggers must exist to be found)

    for name in [*list(logging.root.manager.loggerDict), *_FILTERS]:
        library = next((lib for lib in _FILTERS if name == lib or name.startswith(lib + ".")), None)
        if library is None:
            continue
        logger = logging.getLogger(name)
        if _FILTERS[library] not in logger.filters:
            logger.addFilter(_FILTERS[library])


def exception_frames(exc: BaseException) -> str:
    """The exception's type and where it was raised, without its message (which can quote data)."""
    return f"{type(exc).__name__} at\n" + "".join(traceback.format_tb(exc.__traceback__))
