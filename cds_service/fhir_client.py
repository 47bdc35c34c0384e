"""The one way this service talks to an EHR's FHIR server: ``FhirClient.search``.

One pooled ``requests.Session`` per process (``fhir_session``), (connect, read) timeouts on every call
and one ``Deadline`` shared by all the queries of a hook call, name resolution included, the EHR's
bearer token sent only when there is one, searchset ``next`` links followed up to a bound and never off
the server's own origin, and a response size cap enforced while the body streams in. Every failure is
one exception, ``FhirUnavailable``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.response
from urllib3.util.ssl_ import is_ipaddress

from . import metrics

Json = dict[str, Any]


class FhirUnavailable(Exception):
    """The data could not be had. ``unreachable`` means the server could not be contacted at all."""

    def __init__(self, reason: str, *, unreachable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


class FhirTruncated(Exception):
    """A newest-first search stopped at the page bound: ``resources`` are the newest results, usable as such."""

    def __init__(self, resources: list[Json], reason: str):
        super().__init__(reason)
        self.resources = resources
        self.reason = reason


@dataclass(frozen=True)
class Deadline:
    """When one hook call stops waiting for its FHIR server (``time.monotonic()`` seconds)."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def missed(self, query: str) -> FhirUnavailable:
        return FhirUnavailable(f"{_what(query)}: no answer within the {self.seconds:g} s call deadline")


_NEWEST_FIRST = "_sort=-date"
# One socket read at most: a byte-a-second server is noticed once a second, and the cap is overrun by
# this much at most before the read stops.
_CHUNK = 64 * 1024


class FhirClient:
    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        access_token: str | None,
        *,
        timeout: tuple[float, float],
        max_pages: int,
        max_bytes: int,
        deadline: Deadline,
    ):
        self.session = session
        self.base_url = base_url.rstrip("/") + "/"
        self.access_token = access_token
        self.timeout = timeout
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self.deadline = deadline

    def search(self, query: str) -> list[Json]:
        """Resources answering ``query`` (a read such as ``Patient/1`` or a search), every page; timed and
        counted by resource type and outcome, for the operators' metrics."""
        started, outcome = time.monotonic(), "failed"
        try:
            resources = self._search(query)
            outcome = "ok"
            return resources
        except FhirTruncated:
            outcome = "truncated"
            raise
        except FhirUnavailable as exc:
            outcome = "unreachable" if exc.unreachable else "failed"
            raise
        finally:
            metrics.observe_fhir_query(_resource_type(query), time.monotonic() - started, outcome)

    def _search(self, query: str) -> list[Json]:
        url: str | None = urljoin(self.base_url, query.lstrip("/"))
        resources: list[Json] = []
        seen: set[str] = set()
        pages = 0
        while url:
            if url in seen:
                raise FhirUnavailable(f"{_what(query)}: the server's paging links loop")
            seen.add(url)
            pages += 1
            body = self._get(url, query)
            if body.get("resourceType") != "Bundle":
                if body.get("resourceType") == "OperationOutcome":
                    raise FhirUnavailable(f"{_what(query)}: the server answered with an OperationOutcome")
                return [body]
            resources += [
                e["resource"]
                for e in (body.get("entry") if isinstance(body.get("entry"), list) else ())
                if isinstance(e, dict) and isinstance(e.get("resource"), dict)
                and (e.get("search") or {}).get("mode") != "outcome"
            ]
            url = _next_link(body)
            if url and not self._same_origin(url):
                raise FhirUnavailable(f"{_what(query)}: a paging link points away from the FHIR server")
            if url and pages >= self.max_pages:
                if _NEWEST_FIRST in query:
                    raise FhirTruncated(resources, f"{_what(query)}: only the newest {len(resources)} results "
                                        f"were read ({self.max_pages} pages); older ones were not")  # fmt: skip
                raise FhirUnavailable(f"{_what(query)}: more than {self.max_pages} pages of results")
        return resources

    def _same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _get(self, url: str, query: str) -> Json:
        headers = {"Accept": "application/fhir+json"}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        remaining = self.deadline.remaining()
        if remaining <= 0:
            raise self.deadline.missed(query)
        # Every socket wait (name resolution, connect, each read) ends by the deadline at the latest.
        timeout = (min(self.timeout[0], remaining), min(self.timeout[1], remaining))
        try:
            with self.session.get(
                url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
            ) as response:
                if response.is_redirect:
                    raise FhirUnavailable(f"{_what(query)}: the server redirected (not followed)")
                if response.status_code != 200:
                    raise FhirUnavailable(f"{_what(query)}: the server answered HTTP {response.status_code}")
                raw = self._body(response.raw, query)
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
            if self.deadline.remaining() <= 0:
                raise self.deadline.missed(query) from None
            if isinstance(exc, requests.ConnectionError):  # a connect timeout: nothing answered at all
                raise FhirUnavailable("the FHIR server could not be reached", unreachable=True) from None
            raise FhirUnavailable(f"{_what(query)}: the server did not answer in time") from None
        except requests.ConnectionError:
            raise FhirUnavailable("the FHIR server could not be reached", unreachable=True) from None
        # Reading ``raw`` directly bypasses requests' wrapping: urllib3's own errors arrive as they are.
        except urllib3.exceptions.ProtocolError:
            raise FhirUnavailable(f"{_what(query)}: the response broke off") from None
        except urllib3.exceptions.DecodeError:
            raise FhirUnavailable(f"{_what(query)}: the response could not be decoded") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise FhirUnavailable(f"{_what(query)}: {type(exc).__name__}") from None
        try:
            # orjson parses without recursing in Python and refuses more than 1024 levels of nesting.
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc):
                raise FhirUnavailable(f"{_what(query)}: the response is too deeply nested") from None
            raise FhirUnavailable(f"{_what(query)}: the response is not JSON") from None
        if not isinstance(body, dict):
            raise FhirUnavailable(f"{_what(query)}: the response is not a FHIR resource")
        return body

    def _body(self, raw: urllib3.BaseHTTPResponse, query: str) -> bytearray:
        """The decoded body, read one socket read at a time: at most ``max_bytes`` plus one chunk is ever
        held, and the deadline is checked between reads (a trickling server sends each byte in time)."""
        body = bytearray()
        while chunk := raw.read1(_CHUNK, decode_content=True):
            body += chunk
            if len(body) > self.max_bytes:
                raise FhirUnavailable(f"{_what(query)}: the response is larger than {self.max_bytes} bytes")
            if self.deadline.remaining() <= 0:
                raise self.deadline.missed(query)
        return body


def _next_link(bundle: Json) -> str | None:
    for link in bundle.get("link") if isinstance(bundle.get("link"), list) else ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _resource_type(query: str) -> str:
    """The resource type a query asks for, never its parameters (which name the patient)."""
    return query.split("?")[0].split("/")[0]


def _what(query: str) -> str:
    return _resource_type(query) + " query"


# getaddrinfo cannot be interrupted, so it runs here and is waited for with the connect timeout (itself
# within the call deadline). A resolution that outlives its wait keeps one of these threads until the
# system resolver gives up; a wait that ends while its resolution is still queued cancels it. So slow
# name servers hold at most this many threads per process, and hook calls answer meanwhile.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fhir-dns")


class _WithinTimeouts(urllib3.connection.HTTPConnection):
    """A connection whose name resolution, and whose whole status line and headers, each take no longer
    than their timeout (which the client caps by the call deadline)."""

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]
        # http.client reads the headers in as many socket reads as the server cares to send them in: a
        # server trickling them a byte at a time would hold this thread however short each read's
        # timeout. So the socket is shut once the read timeout has passed in all.
        if not isinstance(self.timeout, (int, float)) or self.sock is None:
            return super().getresponse()
        sock, cut = self.sock, threading.Event()

        def cut_off() -> None:
            cut.set()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        guard = threading.Timer(self.timeout, cut_off)
        guard.name = "fhir-headers-timer"
        guard.start()
        try:
            return super().getresponse()
        except Exception:
            if cut.is_set():  # told apart from a server that hung up: urllib3 makes this a ReadTimeoutError
                raise TimeoutError("the headers did not arrive within the read timeout") from None
            raise
        finally:
            guard.cancel()

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        if is_ipaddress(name.strip("[]")):
            return super()._new_conn()
        started = time.monotonic()
        future = _RESOLVER.submit(socket.getaddrinfo, name, self.port, type=socket.SOCK_STREAM)
        try:
            found = future.result(timeout=self.timeout if isinstance(self.timeout, (int, float)) else None)
        except FutureTimeout:
            future.cancel()
            raise urllib3.exceptions.ConnectTimeoutError(self, "name resolution timed out") from None
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc
        connect_timeout = self.timeout
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        try:
            if isinstance(connect_timeout, (int, float)):  # what is left of it after resolving
                self.timeout = max(connect_timeout - (time.monotonic() - started), 0.001)
            for address in addresses[:-1]:  # in the resolver's order, as create_connection would
                self._dns_host = address
                try:
                    return super()._new_conn()
                except urllib3.exceptions.NewConnectionError:
                    pass
            self._dns_host = addresses[-1]
            return super()._new_conn()
        finally:
            self._dns_host, self.timeout = name, connect_timeout


class _HTTPSConnection(_WithinTimeouts, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WithinTimeouts


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def fhir_session() -> requests.Session:
    """The process's pooled session for FHIR servers, resolving names within each call's connect timeout."""
    session = requests.Session()
    adapter = _Adapter(pool_connections=8, pool_maxsize=32)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # the EHR's FHIR server is called directly, never through an env proxy
    return session
