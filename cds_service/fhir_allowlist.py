"""Which ``fhirServer`` URLs the service may call: the guard that keeps it from being used as a proxy.

A hook request names the FHIR server to fetch missing data from, and the service would call it with the
bearer token the request carries. Without a guard anyone who can call the service could make it send
requests (and tokens) to any host it can reach, cloud metadata endpoints and intranet servers included.
So ``fhirServer`` is used only when it is on an allowlist:

- with trusted clients configured, the authenticated client's own ``fhir_servers`` (loopback included:
  nothing is allowed that the client's entry does not name);
- in open mode (no trusted clients, loopback only), ``CDS_FHIR_SERVERS``, by default any http(s) server
  on 127.0.0.1, ::1 or localhost, so local demos and tests work.

An entry is a base URL. ``fhirServer`` matches it when scheme, host and port are the same and its path is
the entry's path or below it; a port written ``*`` matches any port. A server that is not allowed is never
contacted: ``NotAllowedFhirServer`` answers every query with ``FhirUnavailable``, so the service answers
from prefetch alone with a data-quality card, or 412 when required data is missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .fhir_client import FhirClient, FhirUnavailable

NOT_ALLOWED = "fhirServer is not on this client's allowlist"
OPEN_MODE_DEFAULT = (
    "http://127.0.0.1:*",
    "https://127.0.0.1:*",
    "http://[::1]:*",
    "https://[::1]:*",
    "http://localhost:*",
    "https://localhost:*",
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class AllowlistError(ValueError):
    """An allowlist entry that is not an http(s) base URL."""


@dataclass(frozen=True)
class _Entry:
    scheme: str
    host: str
    port: int | None  # None: any port
    path: str  # no trailing slash; "" for the root


@dataclass(frozen=True)
class FhirServerAllowlist:
    entries: tuple[_Entry, ...]

    @classmethod
    def of(cls, urls: Iterable[str]) -> FhirServerAllowlist:
        """Entries from base URLs; raises ``AllowlistError`` naming a bad one."""
        return cls(tuple(_entry(url) for url in urls))

    @classmethod
    def open_mode(cls, configured: Iterable[str]) -> FhirServerAllowlist:
        """``CDS_FHIR_SERVERS``, or loopback on any port when it is empty."""
        urls = list(configured)
        return cls.of(urls or OPEN_MODE_DEFAULT)

    def allows(self, url: str) -> bool:
        parsed = _parse(url)
        if parsed is None:
            return False
        scheme, host, port, path = parsed
        for entry in self.entries:
            if (entry.scheme, entry.host) != (scheme, host):
                continue
            if entry.port is not None and entry.port != port:
                continue
            if path == entry.path or path.startswith(entry.path + "/"):
                return True
        return False


class NotAllowedFhirServer(FhirClient):
    """Stands in for the FhirClient of a server that is not allowed: it never opens a connection."""

    def __init__(self) -> None:  # deliberately no session, URL or token: nothing to send them with
        pass

    def search(self, query: str) -> list[dict]:
        raise FhirUnavailable(NOT_ALLOWED)


def _parse(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) of an http(s) URL with no user info, or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/")


def _entry(url: str) -> _Entry:
    text = url.strip()
    any_port = False
    head, sep, tail = text.partition("://")
    if sep:
        netloc, slash, rest = tail.partition("/")
        if netloc.endswith(":*"):
            any_port = True
            text = f"{head}://{netloc[:-2]}{slash}{rest}"
    parsed = _parse(text)
    if parsed is None or urlsplit(text).query or urlsplit(text).fragment:
        raise AllowlistError(f"{url!r} is not an http(s) base URL")
    scheme, host, port, path = parsed
    return _Entry(scheme, host, None if any_port else port, path)
